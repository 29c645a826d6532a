"""Benchmark: VoxTellCore vs the released voxtell 0.1.2, same volume, same weights, one run.

    .venv/bin/python bench/bench_vs_release.py [--size released|light] [--shape 200 200 120]
        [--prompts 1 4] [--devices cpu cuda] [--precisions auto bf16]

Each (device, implementation, prompt count) runs in its own process so that peak memory is
its own. In that process the first call (model load included) segments the first N prompts;
then, as a user typing the next prompt, a second call on the same volume segments a new
prompt ("2nd": the release recomputes everything, VoxTellCore reuses the kept encoder
features); then VoxTellCore's first call is repeated and must give identical masks. Both
run as their command lines do (``predict_from_files`` / ``voxtell-core predict``'s batch
engine), files in and out; VoxTellCore once per ``--precisions`` entry (``ours`` is the
default ``auto``, ``ours bf16`` runs ``--precision bf16``). Prints time, peak RSS (and on CUDA windows/s, peak GPU memory
and the achieved TFLOP/s of the counted FLOPs), ratios and per-prompt mask Dice to the release.
Not part of CI: with the released sizes one 192^3 window takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import importlib.util
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
PROMPTS = ["liver", "left kidney", "spleen", "aorta", "pancreas"]
NEXT_PROMPT = "gallbladder"  # the second call's new prompt
ENCODER_TFLOP, DECODER_TFLOP = 3.30, 1.7  # counted per 192^3 window (released sizes): encoder, per prompt


def worker(impl: str, device: str, model: str, bank: str, image: str, out: str, n_prompts: int) -> None:
    """``impl``: ``release``, ``ours`` or ``ours <precision>``."""
    import torch

    prompts, out = PROMPTS[:n_prompts], Path(out)
    cuda = device == "cuda"
    if impl == "release":
        from voxtell.inference.predictor import VoxTellPredictor

        start = time.perf_counter()
        predictor = VoxTellPredictor(model_dir=model, device=torch.device(device), embedding_bank=bank)

        def run(names: list[str], folder: str) -> None:
            predictor.predict_from_files([image], out / folder, names)
    else:
        precision = impl.partition(" ")[2] or "auto"
        import VoxTellCore.commands.predict as command
        from VoxTellCore.cli import main

        # One predictor for all calls, keeping encoder features as the Slicer module's does.
        made, make = [], command.make_predictor
        command.make_predictor = lambda args: made[0] if made else made.append(make(args, None)) or made[0]
        start = time.perf_counter()

        def run(names: list[str], folder: str) -> None:
            args = ["predict", "-i", image, "-o", str(out / folder), "-p", *names, "-m", model, "--embeddings", bank]
            assert main([*args, "--device", device, "--precision", precision]) == 0

    def timed(names: list[str], folder: str, since: float | None = None) -> float:
        if cuda:
            torch.cuda.synchronize()
        begin = time.perf_counter() if since is None else since
        run(names, folder)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - begin

    result = {"seconds": timed(prompts, "first", since=start)}
    if cuda:
        result["gpu_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    result["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["second_seconds"] = timed([NEXT_PROMPT], "second")
    if impl.startswith("ours"):
        timed(prompts, "again")  # the same prompt list: 1 and several prompts take different decoder paths
        result["again_identical"] = all(np.array_equal(read_mask(out / "first", p), read_mask(out / "again", p))
                                        for p in prompts)
    print(json.dumps(result))


def read_mask(folder: Path, prompt: str) -> np.ndarray:
    from VoxTellCore.io.naming import prompt_output_name

    return np.asarray(nib.load(folder / prompt_output_name("bench_case", prompt, ".nii.gz")).dataobj) > 0


def make_inputs(work: Path, size: str, shape: tuple[int, int, int]) -> tuple[Path, Path, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from model_fixtures import RELEASE_COMPATIBLE, make_bank, make_model_folder
    from scipy.ndimage import gaussian_filter

    from VoxTellCore.model import VoxTellConfig

    config = VoxTellConfig() if size == "released" else RELEASE_COMPATIBLE
    model = work / f"model_{size}"
    if not (model / "plans.json").is_file():
        make_model_folder(model, config, seed=0)
    bank = make_bank(work / "bank.npz", [*PROMPTS, NEXT_PROMPT], config.text_embedding_dim)
    rng = np.random.default_rng(0)
    volume = (gaussian_filter(rng.standard_normal(shape, dtype=np.float32), 6) * 400 + 50).astype(np.float32)
    image = work / "bench_case.nii.gz"
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.diag([0.8, 0.8, 1.5, 1.0])
    nib.save(nib.Nifti1Image(volume[::-1, ::-1].copy(), lps), image)
    return model, bank, image


def window_count(shape: tuple[int, ...], patch: int = 192) -> int:
    """Windows of the release's sliding window over ``shape`` (padded to at least one patch)."""
    from VoxTellCore.inference.sliding_window import sliding_windows

    return len(sliding_windows(tuple(max(n, patch) for n in shape), (patch,) * len(shape)))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["released", "light"], default="released",
                        help="released: ResEnc-L as published; light: one block per encoder stage")
    parser.add_argument("--shape", type=int, nargs=3, default=[200, 200, 120])
    parser.add_argument("--prompts", type=int, nargs="+", default=[1, 4], choices=range(1, len(PROMPTS) + 1))
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"],
                        default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--precisions", nargs="+", default=["auto"], choices=["auto", "fp32", "bf16", "fp16"],
                        help="VoxTellCore's --precision values to run (default: auto)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, device, model, bank, image, out, n = args.worker
        return worker(impl, device, model, bank, image, out, int(n))

    work = args.workdir or Path(tempfile.mkdtemp(prefix="voxtell_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    model, bank, image = make_inputs(work, args.size, tuple(args.shape))
    windows = window_count(tuple(args.shape))
    ours = ["ours" if p == "auto" else f"ours {p}" for p in args.precisions]
    impls = ["release", *ours]
    if importlib.util.find_spec("voxtell") is None:
        print("The released voxtell package is not installed: VoxTellCore only.", file=sys.stderr)
        impls.remove("release")
    for device in args.devices:
        results = {}
        for n in args.prompts:
            for impl in impls:
                if device == "cpu" and impl.endswith("fp16"):
                    continue
                out = work / f"{device}_{impl.replace(' ', '_')}_{n}"
                cmd = [sys.executable, __file__, "--worker", impl, device, str(model), str(bank), str(image), str(out), str(n)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    sys.exit(f"{impl} on {device} with {n} prompt(s) failed:\n{proc.stderr[-3000:]}")
                results[impl, n] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"  {device} {impl:10s} {n} prompt(s): {results[impl, n]['seconds']:.1f} s", file=sys.stderr)
        print_table(args, device, windows, work, results, [o for o in ours if any(k[0] == o for k in results)])


def print_table(args: argparse.Namespace, device: str, windows: int, work: Path, results: dict, ours: list[str]) -> None:
    """One row per (VoxTellCore variant, prompt count); release columns show "-" when the release did not run."""
    def value(impl: str, n: int, key: str) -> float | None:
        return results.get((impl, n), {}).get(key)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    def tflops(impl: str, n: int) -> float | None:
        seconds = value(impl, n, "seconds")
        return None if seconds is None else windows * (ENCODER_TFLOP + DECODER_TFLOP * n) / seconds

    columns = [
        ("rel s", 6, ".1f", lambda o, n: value("release", n, "seconds")),
        ("ours s", 6, ".1f", lambda o, n: value(o, n, "seconds")),
        ("ours/rel", 8, ".2f", lambda o, n: ratio(value(o, n, "seconds"), value("release", n, "seconds"))),
        ("rel 2nd", 7, ".1f", lambda o, n: value("release", n, "second_seconds")),
        ("ours 2nd", 8, ".1f", lambda o, n: value(o, n, "second_seconds")),
        ("ours 2nd/1st", 12, ".2f", lambda o, n: ratio(value(o, n, "second_seconds"), value(o, n, "seconds"))),
        ("2nd ours/rel", 12, ".2f",
         lambda o, n: ratio(value(o, n, "second_seconds"), value("release", n, "second_seconds"))),
        ("rel GiB", 7, ".2f", lambda o, n: value("release", n, "peak_gib")),
        ("ours GiB", 8, ".2f", lambda o, n: value(o, n, "peak_gib")),
        ("mem o/r", 7, ".2f", lambda o, n: ratio(value(o, n, "peak_gib"), value("release", n, "peak_gib"))),
    ]
    if device == "cuda":
        columns += [
            ("rel GPU GiB", 11, ".2f", lambda o, n: value("release", n, "gpu_peak_gib")),
            ("ours GPU GiB", 12, ".2f", lambda o, n: value(o, n, "gpu_peak_gib")),
            ("rel win/s", 9, ".2f", lambda o, n: ratio(windows, value("release", n, "seconds"))),
            ("ours win/s", 10, ".2f", lambda o, n: ratio(windows, value(o, n, "seconds"))),
        ]
        if args.size == "released":
            columns += [("rel TFLOP/s", 11, ".1f", lambda o, n: tflops("release", n)),
                        ("ours TFLOP/s", 12, ".1f", lambda o, n: tflops(o, n))]
    columns += [("min Dice", 8, ".4f", lambda o, n: min_dice(work, device, o, n)),
                ("again identical", 15, "", lambda o, n: value(o, n, "again_identical"))]

    print(f"\nVoxTellCore vs voxtell 0.1.2 — {args.size} sizes, volume {tuple(args.shape)} ({windows} window(s)), "
          f"{device}, one run.\ns: first call, model load included; 2nd: then a new prompt on the same volume; "
          f"again identical: ours repeats the first prompt and gets the same mask")
    width = max(len(o) for o in ours)
    print(" | ".join([f"{'prompts':>7}", f"{'ours':<{width}}"] + [f"{name:>{w}}" for name, w, _, _ in columns]))
    for n in args.prompts:
        for o in ours:
            if (o, n) not in results:
                continue
            cells = [f"{n:>7}", f"{o:<{width}}"]
            for _, w, spec, get in columns:
                v = get(o, n)
                cells.append(f"{'-' if v is None else format(v, spec):>{w}}")
            print(" | ".join(cells))
    if 1 in args.prompts and len(args.prompts) > 1:
        n = max(args.prompts)
        for impl in ("release", *ours):
            if (impl, n) in results and (impl, 1) in results:
                times = results[impl, n]["seconds"] / (n * results[impl, 1]["seconds"])
                print(f"{impl}: one call with {n} prompts takes {times:.2f}x the time of {n} one-prompt calls")


def min_dice(work: Path, device: str, impl: str, n: int) -> float | None:
    """The lowest per-prompt Dice between ``impl`` and the release (first call's prompts and the 2nd prompt)."""
    release, ours = work / f"{device}_release_{n}", work / f"{device}_{impl.replace(' ', '_')}_{n}"
    if not release.is_dir():
        return None
    pairs = [("first", p) for p in PROMPTS[:n]] + [("second", NEXT_PROMPT)]
    from VoxTellCore.evaluation.metrics import dice

    return min(dice(read_mask(release / call, p), read_mask(ours / call, p)) for call, p in pairs)

if __name__ == "__main__":
    main()
