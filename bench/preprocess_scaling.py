"""Throughput of ``voxtell-train preprocess`` per process, and its scaling from 1 to 2 processes.

    python bench/preprocess_scaling.py [--work bench_preprocess] [--cases 8] [--shape 160 320 320]

Synthetic CT phantoms (nnU-Net raw layout, every label) are preprocessed into an empty cache
once by one process and once by two processes at once (``--parts 2 --part 0|1``, as two nodes
or array tasks would run). Prints cases/s and CPU-s per case of each process and the speed-up.
On a shared machine, compare the ratio rather than the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_parts(config: Path, cache: Path, parts: int) -> tuple[float, list[float]]:
    """(wall seconds, CPU seconds of each process) of ``parts`` processes started together."""
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    began = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "Training.cli", "preprocess", str(config), "--set",
                                   f'preprocessed_dir="{cache}"', "--parts", str(parts), "--part", str(part),
                                   "--no-progress"], env=env, stdout=subprocess.DEVNULL)
                 for part in range(parts)]
    cpu = []
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        assert status == 0, f"preprocess part failed ({status})"
        cpu.append(usage.ru_utime + usage.ru_stime)
    return time.perf_counter() - began, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench_preprocess"))
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=(160, 320, 320), help="(K, J, I) of each phantom")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from VoxTellCore.phantoms.dataset import DATASET_NAME, write_phantom_dataset

    dataset = args.work / DATASET_NAME
    if not (dataset / "dataset.json").is_file():
        write_phantom_dataset(dataset, n_cases=args.cases, seed=0, shape=tuple(args.shape), workers=2)
    config = args.work / "config.json"
    config.write_text(json.dumps({"datasets": [{"name": DATASET_NAME, "path": str(dataset.resolve())}]}))
    cache = args.work / "cache"
    print(f"{args.cases} phantoms of {tuple(args.shape)} voxels; {os.cpu_count()} CPU cores on this machine")
    print(f"{'processes':>9} {'wall s':>8} {'cases/s':>8} {'cases/s per process':>20} {'CPU-s per case':>15} "
          f"{'speed-up':>9}")
    baseline = None
    for parts in (1, 2):
        wall, cpu = run_parts(config, cache.resolve(), parts)
        rate = args.cases / wall
        baseline = baseline or rate
        print(f"{parts:>9} {wall:>8.1f} {rate:>8.3f} {rate / parts:>20.3f} {sum(cpu) / args.cases:>15.2f} "
              f"{rate / baseline:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
