"""Seconds per training step of the demo model's recipe, side by side, on this machine.

    python bench/training_step.py [--config configs/demo.json] [--steps 8] [--device cpu]

Variants differ in the memory layout (channels-first or channels-last convolutions), in
whether the prompts of a batch share the skip half of each decoder convolution, and in how
the decoder's features are projected onto the prompt vectors (the release's einsum, whose
matmul returns channels-first maps, or our layout-preserving order). Random data of the
config's batch, patch and prompt counts; the steps of the variants are interleaved so that
machine noise falls on all of them alike. Prints a table with each variant's ratio to the
first row (the release's way).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import VoxTellCore.model.image_decoder as image_decoder
from Training.config import TrainingConfig
from Training.loss import DeepSupervisionLoss, PromptSegmentationLoss
from VoxTellCore.model import VoxTellModel

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [  # (name, channels_last, shared skip half, layout-preserving projection)
    ("channels-first, per-prompt decoder, einsum (release)", False, False, False),
    ("channels-first, shared skip half, layout-preserving", False, True, True),
    ("channels-last, per-prompt decoder, einsum", True, False, False),
    ("channels-last, shared skip half, einsum", True, True, False),
    ("channels-last, shared skip half, layout-preserving (ours)", True, True, True),
]


def _einsum_projection(x: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bchwd,bnc->bnhwd", x, vectors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.json")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    config = TrainingConfig.from_file(args.config)
    network_config = config.network_config()
    device = torch.device(args.device)
    prompts = config.positives_per_image + config.negatives_per_image
    batch, patch = config.batch_size_per_process, tuple(network_config.patch_size)
    loss_function = DeepSupervisionLoss(PromptSegmentationLoss(), config.deep_supervision_weights)

    torch.manual_seed(0)
    reference = VoxTellModel(network_config, deep_supervision=True)
    reference.initialize_weights()
    image = torch.randn(batch, 1, *patch, device=device)
    text = torch.randn(batch, prompts, network_config.text_embedding_dim, device=device)
    target = (torch.rand(batch, prompts, *patch, device=device) > 0.9).float()
    weight = torch.ones(batch, prompts, device=device)

    runs = []
    for name, channels_last, shared, layout_preserving in VARIANTS:
        fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
        model = VoxTellModel(network_config, deep_supervision=True)
        model.load_state_dict(reference.state_dict())
        model.to(device, memory_format=fmt).train()
        if not shared:
            model.decoder.skip_terms = lambda skips: None  # every prompt convolves the whole concatenation
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        runs.append((name, model, optimizer, image.contiguous(memory_format=fmt), layout_preserving, []))

    own_projection = image_decoder._project
    try:
        for step in range(args.steps + 2):  # two warm-up rounds
            for name, model, optimizer, image_in, layout_preserving, times in runs:
                image_decoder._project = own_projection if layout_preserving else _einsum_projection
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                loss_function(model(image_in, text), target, weight).backward()
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if step >= 2:
                    times.append(time.perf_counter() - start)
    finally:
        image_decoder._project = own_projection

    baseline = statistics.median(runs[0][5])
    print(f"{batch} images x {prompts} prompts, patch {patch}, {args.steps} steps each, device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'variant':<60} {'median s/step':>14} {'ratio':>7}")
    for name, *_, times in runs:
        median = statistics.median(times)
        print(f"{name:<60} {median:>14.3f} {median / baseline:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
