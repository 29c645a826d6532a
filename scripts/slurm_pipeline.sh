#!/bin/bash
# The whole training pipeline on a SLURM cluster, in the order it must run:
#   1. preprocess (array job)  ->  2. embedding bank (1 GPU)  ->  3. training (8 nodes x 8 GPUs)
# Each step starts only when the previous one succeeded (--dependency=afterok).
#
#   bash scripts/slurm_pipeline.sh configs/default.json runs/voxtell [ARRAY_TASKS]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/default.json}
OUTPUT=${2:-runs/voxtell}
TASKS=${3:-32}
BANK=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["embedding_bank"])' "$CONFIG")

preprocess=$(sbatch --parsable --array=0-$((TASKS - 1)) scripts/slurm_preprocess.sbatch "$CONFIG")
bank=$(sbatch --parsable --dependency=afterok:"$preprocess" scripts/slurm_bank.sbatch "$CONFIG" "$BANK")
training=$(sbatch --parsable --dependency=afterok:"$bank" scripts/slurm_8x8.sbatch "$CONFIG" "$OUTPUT")
echo "preprocess $preprocess -> bank $bank -> training $training"
