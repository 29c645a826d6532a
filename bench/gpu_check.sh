#!/usr/bin/env bash
# GPU check, one command, no internet needed:   bash bench/gpu_check.sh
# On a CUDA machine it measures one full-size training step and inference (issue #13);
# on a CPU-only machine it says so, runs a short CPU self-check and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA device here (torch $("$python" -c 'import torch; print(torch.__version__)')); CPU self-check only."
  "$python" bench/gpu_training_step.py --cpu-self-check
  "$python" -m pytest -q -p no:cacheprovider tests/test_feature_cache.py  # inference: kept features, same masks
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# ---- training (issue #15): 2 images x 3 prompts x 192^3, fp16 + GradScaler, plain and NCCL DDP ----
"$python" bench/gpu_training_step.py --steps 3

# ---- inference (issue #13): CUDA tests, then ours vs the release on a 512x512x300 CT, 1 and 5 prompts ----
"$python" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
"$python" bench/bench_vs_release.py --devices cuda --size released --shape 512 512 300 --prompts 1 5 \
  --workdir "${TMPDIR:-/tmp}/voxtell_gpu_bench"

# ---- server (issue #21): first and second prompt through voxtell-core serve vs the release's server ----
"$python" bench/bench_server.py --device cuda --shape 300 512 512 --timing-only
