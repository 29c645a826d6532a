"""What the loss does with a negative prompt's empty target, measured on the demo model.

    python bench/empty_target_loss.py [--model Resources/DemoModel] [--cases 6]

The demo model segments held-out phantoms (seeds it never saw). For every absent nodule or
effusion location (the hard negatives: "nodule in the left lower lobe" where the phantom's
nodules lie elsewhere), for the failure such a negative must be trained out of (the logits of a
present nodule or effusion prompt against an empty target: a negative that segments the finding
of another location) and, for scale, every present organ, it reports the predicted volume V
(sum of probabilities, and voxels with logit > 0), the soft Dice term and the size of its gradient
on the logits (L2 norm), with nnU-Net's smooth of 1e-5 (the paper's loss, ``empty_target_smooth``
0) and with ``empty_target_smooth`` 100 (configs/demo.json), and the BCE term's gradient.
Printed: medians per kind.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from Training.loss import soft_dice_loss  # noqa: E402
from Training.sampling import crop_with_padding  # noqa: E402
from VoxTellCore.checkpoint import load_model  # noqa: E402
from VoxTellCore.io.volume import Volume  # noqa: E402
from VoxTellCore.phantoms import generate_phantom  # noqa: E402
from VoxTellCore.phantoms.evaluation import EFFUSION_SIDES, NODULE_SIDES, ORGAN_PROMPTS  # noqa: E402
from VoxTellCore.preprocessing import bbox_slices, preprocess  # noqa: E402
from VoxTellCore.text.bank import EmbeddingBank  # noqa: E402

SMOOTHS = {"1e-5 (paper)": 0.0, "100 (demo)": 100.0}


def gradient_norm(loss_of: callable, logits: torch.Tensor) -> tuple[float, float]:
    """(loss value, L2 norm of its gradient on the logits)."""
    leaf = logits.detach().requires_grad_(True)
    loss = loss_of(leaf)
    (gradient,) = torch.autograd.grad(loss, leaf)
    return float(loss.detach()), float(gradient.norm())


def measure(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """One prompt: logits and target of shape (1, 1, S, A, R)."""
    row = {"V (sum p)": float(torch.sigmoid(logits).sum()), "voxels > 0": float((logits > 0).sum())}
    for label, empty_smooth in SMOOTHS.items():
        dice, grad = gradient_norm(lambda x: soft_dice_loss(x, target, empty_smooth=empty_smooth).sum(), logits)
        row[f"Dice {label}"], row[f"|grad| Dice {label}"] = dice, grad
    row["|grad| BCE"] = gradient_norm(lambda x: F.binary_cross_entropy_with_logits(x, target), logits)[1]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("Resources/DemoModel"))
    parser.add_argument("--cases", type=int, default=6)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(True)
    model = load_model(args.model).eval()
    bank = EmbeddingBank.load(args.model / "embedding_bank.npz")
    patch = tuple(model.config.patch_size)
    rows: dict[str, list[dict[str, float]]] = {"absent location (negative)": [], "negative on a nodule/effusion": [],
                                               "present organ (positive)": []}
    for seed in range(900_000, 900_000 + args.cases):
        phantom = generate_phantom(seed=seed, shape=patch)
        image, bbox, _ = preprocess(phantom.to_volume().to_network())
        start = np.zeros(3, dtype=int)
        image = crop_with_padding(image, start, patch)
        absent = [p for p in (*NODULE_SIDES, *EFFUSION_SIDES) if p not in phantom.labels]
        present = [p for p in ORGAN_PROMPTS if p in phantom.labels]
        findings = [p for p in (*NODULE_SIDES, *EFFUSION_SIDES) if p in phantom.labels]
        prompts = absent + present + findings
        text = torch.from_numpy(np.stack([bank.get(p) for p in prompts]).astype(np.float32))[None]
        with torch.no_grad():
            logits = model(torch.from_numpy(image)[None], text)  # (1, prompts, *patch)
        for k, prompt in enumerate(prompts):
            mask = np.zeros(phantom.image.shape, np.float32) if prompt in absent else \
                phantom.labels[prompt].astype(np.float32)
            network = Volume(mask, phantom.ijk_to_ras).to_network()[None][(slice(None), *bbox_slices(bbox))]
            target = torch.from_numpy(crop_with_padding(network, start, patch))[None]
            if prompt in findings:  # what a negative that segments this finding elsewhere gets
                rows["negative on a nodule/effusion"].append(measure(logits[:, k:k + 1], torch.zeros_like(target)))
                continue
            kind = "absent location (negative)" if prompt in absent else "present organ (positive)"
            rows[kind].append(measure(logits[:, k:k + 1], target))
    columns = list(next(iter(rows.values()))[0])
    print(f"demo model {args.model}, {args.cases} held-out phantoms {patch}; medians over prompts")
    print(f"{'prompt kind':<28} {'n':>4} " + " ".join(f"{c:>22}" for c in columns))
    for kind, entries in rows.items():
        print(f"{kind:<28} {len(entries):>4} " + " ".join(f"{statistics.median(e[c] for e in entries):>22.3g}"
                                                         for c in columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
