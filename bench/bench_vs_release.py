"""Benchmark: VoxTellCore vs the released voxtell 0.1.2, same volume, same weights, one run.

    .venv/bin/python bench/bench_vs_release.py [--size released|light] [--shape 200 200 120]

Each (implementation, prompt count) runs in its own process so that peak memory is its
own. Prints a table with time, peak RSS, ratios ours/release and per-prompt mask Dice.
Not part of CI: with the released sizes one 192^3 window takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["liver", "left kidney", "spleen", "aorta"]


def worker(impl: str, model: str, bank: str, image: str, out: str, n_prompts: int) -> None:
    import torch

    prompts = PROMPTS[:n_prompts]
    if impl == "release":
        from voxtell.inference.predictor import VoxTellPredictor

        predictor = VoxTellPredictor(model_dir=model, device=torch.device("cpu"), embedding_bank=bank)
        start = time.perf_counter()
        predictor.predict_from_files([image], out, prompts)
    else:
        from VoxTellCore.cli import main

        start = time.perf_counter()
        assert main(["predict", "-i", image, "-o", out, "-p", *prompts, "-m", model, "--embeddings", bank, "--device", "cpu"]) == 0
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "peak_gib": peak_gib}))


def make_inputs(work: Path, size: str, shape: tuple[int, int, int]) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from model_fixtures import RELEASE_COMPATIBLE, make_bank, make_model_folder
    from scipy.ndimage import gaussian_filter

    from VoxTellCore.model import VoxTellConfig

    config = VoxTellConfig() if size == "released" else RELEASE_COMPATIBLE
    model = work / f"model_{size}"
    if not (model / "plans.json").is_file():
        make_model_folder(model, config, seed=0)
    bank = make_bank(work / "bank.npz", PROMPTS, config.text_embedding_dim)
    rng = np.random.default_rng(0)
    volume = (gaussian_filter(rng.standard_normal(shape), 6) * 400 + 50).astype(np.float32)
    image = work / "bench_case.nii.gz"
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.diag([0.8, 0.8, 1.5, 1.0])
    nib.save(nib.Nifti1Image(volume[::-1, ::-1].copy(), lps), image)
    return model, bank, image


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["released", "light"], default="released",
                        help="released: ResEnc-L as published; light: one block per encoder stage")
    parser.add_argument("--shape", type=int, nargs=3, default=[200, 200, 120])
    parser.add_argument("--prompts", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, model, bank, image, out, n = args.worker
        return worker(impl, model, bank, image, out, int(n))

    work = args.workdir or Path(tempfile.mkdtemp(prefix="voxtell_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    model, bank, image = make_inputs(work, args.size, tuple(args.shape))
    results = {}
    for n in args.prompts:
        for impl in ("release", "ours"):
            out = work / f"{impl}_{n}"
            cmd = [sys.executable, __file__, "--worker", impl, str(model), str(bank), str(image), str(out), str(n)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[impl, n] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {impl:8s} {n} prompt(s): {results[impl, n]['seconds']:.1f} s", file=sys.stderr)

    print(f"\nVoxTellCore vs voxtell 0.1.2 — {args.size} sizes, volume {tuple(args.shape)}, CPU, one run")
    print(f"{'prompts':>7} | {'release s':>9} | {'ours s':>7} | {'time ours/rel':>13} | {'rel GiB':>7} | "
          f"{'ours GiB':>8} | {'mem ours/rel':>12} | min Dice")
    for n in args.prompts:
        rel, our = results["release", n], results["ours", n]
        dices = []
        for prompt in PROMPTS[:n]:
            name = f"bench_case_{prompt.replace(' ', '_')}.nii.gz"
            a = np.asarray(nib.load(work / f"release_{n}" / name).dataobj) > 0
            b = np.asarray(nib.load(work / f"ours_{n}" / name).dataobj) > 0
            dices.append(dice(a, b))
        print(f"{n:>7} | {rel['seconds']:9.1f} | {our['seconds']:7.1f} | {our['seconds'] / rel['seconds']:13.2f} | "
              f"{rel['peak_gib']:7.2f} | {our['peak_gib']:8.2f} | {our['peak_gib'] / rel['peak_gib']:12.2f} | {min(dices):.4f}")
    if 1 in args.prompts and len(args.prompts) > 1:
        n = max(args.prompts)
        for impl in ("release", "ours"):
            ratio = results[impl, n]["seconds"] / (n * results[impl, 1]["seconds"])
            print(f"{impl}: one call with {n} prompts takes {ratio:.2f}x the time of {n} one-prompt calls")


if __name__ == "__main__":
    main()
