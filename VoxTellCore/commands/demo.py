"""`voxtell-core demo`: segment a synthetic CT phantom with the built-in demo model.

Generates a phantom (Training.phantoms), segments organ and finding prompts, writes the
image, the masks and a PNG overlay, and prints a per-prompt Dice table with the mean last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from VoxTellCore.evaluation.metrics import dice
from VoxTellCore.io import Volume, volume_to_sitk, write_mask
from VoxTellCore.visualization import overview_png

ORGAN_PROMPTS = (
    "left lung", "right lung", "heart", "aorta", "liver", "spleen", "left kidney", "right kidney", "vertebrae",
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo", help="segment a synthetic CT phantom with the built-in demo model",
        description="Generate a synthetic CT phantom, segment it with the demo model, write masks and a "
                    "PNG overlay, and print a per-prompt Dice table (mean on the last line).")
    parser.add_argument("-o", "--output", default="voxtell_demo", help="output folder (default: voxtell_demo)")
    parser.add_argument("--seed", type=int, default=2026, help="phantom seed (default 2026)")
    parser.add_argument("-m", "--model", default="demo", help="model folder (default: the built-in demo model)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    return parser


def demo_prompts(phantom) -> list[str]:
    findings = [f["prompt"] for f in phantom.findings]
    return list(ORGAN_PROMPTS) + sorted(set(findings))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from Training.phantoms import generate_phantom
    from VoxTellCore.inference.predictor import VoxTellPredictor

    predictor = VoxTellPredictor(model=args.model, device=args.device)
    print(f"Model: {predictor.description}", file=sys.stderr)
    phantom = generate_phantom(seed=args.seed)
    volume = Volume(phantom.image.astype(np.float32), phantom.ijk_to_ras, source=f"phantom seed {args.seed}")
    prompts = demo_prompts(phantom)
    with tqdm(desc="windows", unit="window", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        masks = predictor.predict_volume(volume, prompts, progress=progress)

    out = Path(args.output)
    case = f"phantom_{args.seed}"
    write_image(volume, out / f"{case}.nii.gz")
    rows = []
    for prompt, mask in zip(prompts, masks):
        write_mask(mask, volume, out / f"{case}_{prompt.replace(' ', '_')}.nii.gz")
        rows.append((prompt, dice(mask > 0, phantom.labels[prompt]), int(mask.sum()), int(phantom.labels[prompt].sum())))
    overlay = overview_png(volume, masks, prompts, out / f"{case}_overlay.png",
                           "VoxTell demo model (synthetic training data, not for clinical images)")
    print_table(rows)
    print(f"Wrote {len(prompts)} masks, the phantom image and {overlay} to {out}/", file=sys.stderr)
    return 0


def write_image(volume: Volume, path: Path) -> None:
    import SimpleITK as sitk

    tmp = path.with_name(f".{path.name}.tmp.nii.gz")
    sitk.WriteImage(volume_to_sitk(volume), str(tmp), useCompression=True)
    tmp.replace(path)


def print_table(rows: list[tuple[str, float, int, int]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'prompt':<{width}} | {'Dice':>6} | {'predicted':>9} | {'truth':>9}")
    for prompt, score, predicted, truth in rows:
        print(f"{prompt:<{width}} | {score:6.3f} | {predicted:9d} | {truth:9d}")
    print(f"{'mean Dice':<{width}} | {np.mean([r[1] for r in rows]):6.3f}")
