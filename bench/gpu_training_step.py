"""One full-size VoxTell training step on a GPU: time and peak memory, plain and under NCCL DDP.

    python bench/gpu_training_step.py [--steps 3] [--images 2] [--prompts 3] [--patch 192]
    python bench/gpu_training_step.py --cpu-self-check      (what bench/gpu_check.sh runs without CUDA)

The released network sizes (ResEnc-L encoder, 6-layer prompt decoder, Qwen3-4B embeddings of
2560), random weights and data, the trainer's recipe: never-used weights frozen, fp16 autocast +
GradScaler, SGD (Nesterov, momentum 0.99), deep-supervision Dice + BCE, gradient clipping at 12,
cudnn.benchmark, pinned inputs copied with non_blocking. Needs nothing from the internet.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from Training.loss import DeepSupervisionLoss, PromptSegmentationLoss  # noqa: E402
from Training.trainer import freeze_unused_parameters  # noqa: E402
from VoxTellCore.model import VoxTellConfig, VoxTellModel  # noqa: E402

A100_40GB_USABLE_GIB = 39.4 - 1.0  # total memory an A100 40GB reports, less ~1 GiB of CUDA context
DS_WEIGHTS = [1, 1 / 2, 1 / 4, 1 / 8, 1 / 16]


def _batch(images: int, prompts: int, patch: int, text_dim: int, device: torch.device):
    pin = device.type == "cuda"
    image = torch.randn(images, 1, patch, patch, patch)
    target = (torch.rand(images, prompts, patch, patch, patch) > 0.95).to(torch.uint8)
    target[:, -1] = 0  # the negative prompt: an empty target
    text = torch.randn(images, prompts, text_dim)
    weight = torch.ones(images, prompts)
    tensors = (image, target, text, weight)
    return [t.pin_memory().to(device, non_blocking=True) if pin else t for t in tensors]


def run_steps(network: torch.nn.Module, parameters: list[torch.nn.Parameter], batch: list[torch.Tensor], steps: int,
              device: torch.device) -> tuple[list[float], float, float]:
    """(seconds per step, peak allocated GiB, peak reserved GiB) of ``steps`` steps after one warm-up."""
    amp = device.type == "cuda"
    optimizer = torch.optim.SGD(parameters, lr=1e-4, momentum=0.99, nesterov=True, weight_decay=3e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_function = DeepSupervisionLoss(PromptSegmentationLoss(), DS_WEIGHTS)
    image, target, text, weight = batch
    times = []
    for step in range(steps + 1):
        if step == 1 and amp:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = loss_function(network(image, text), target, weight)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parameters, 12.0)
        scaler.step(optimizer)
        scaler.update()
        if amp:
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - began)
        assert torch.isfinite(loss), "non-finite loss"
    if not amp:
        return times, 0.0, 0.0
    return times, torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30


def build(config: VoxTellConfig, device: torch.device) -> VoxTellModel:
    torch.manual_seed(0)
    model = VoxTellModel(config, deep_supervision=True)
    model.initialize_weights()
    model.to(device)
    freeze_unused_parameters(model, config.text_embedding_dim)
    return model


def cpu_self_check() -> int:
    config = VoxTellConfig(patch_size=(32, 32, 32), features_per_stage=(2, 4, 8, 8, 8, 8),
                           strides=((1, 1, 1),) + ((2, 2, 2),) * 4 + ((1, 1, 1),), n_blocks_per_stage=(1,) * 6,
                           text_embedding_dim=16, text_hidden_dim=32, query_dim=32, prompt_decoder_layers=1,
                           prompt_decoder_heads=2, prompt_decoder_ffn_dim=32, fusion_channels=2,
                           mask_projection_hidden_dim=32)
    device = torch.device("cpu")
    model = build(config, device)
    times, _, _ = run_steps(model, [p for p in model.parameters() if p.requires_grad],
                            _batch(2, 3, 32, config.text_embedding_dim, device), 1, device)
    print(f"CPU self-check passed: a tiny VoxTell training step (2 images x 3 prompts x 32^3) in {times[0]:.2f} s, "
          f"torch {torch.__version__}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--patch", type=int, default=192)
    parser.add_argument("--cpu-self-check", action="store_true")
    args = parser.parse_args(argv)
    if args.cpu_self_check or not torch.cuda.is_available():
        return cpu_self_check()
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda", 0)
    config = VoxTellConfig(patch_size=(args.patch,) * 3)
    model = build(config, device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    batch = _batch(args.images, args.prompts, args.patch, config.text_embedding_dim, device)
    rows = [("one process", *run_steps(model, parameters, batch, args.steps, device))]

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(probe.getsockname()[1]))
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
    try:
        ddp = DistributedDataParallel(model, device_ids=[device])
        rows.append(("NCCL DDP, 1 process", *run_steps(ddp, parameters, batch, args.steps, device)))
    finally:
        dist.destroy_process_group()

    name = torch.cuda.get_device_name(device)
    total = torch.cuda.get_device_properties(device).total_memory / 2**30
    print(f"{name} ({total:.1f} GiB), torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}; "
          f"{args.images} images x {args.prompts} prompts x {args.patch}^3, fp16 autocast + GradScaler, "
          f"released sizes, {args.steps} timed steps after one warm-up")
    print(f"{'step':<22} {'median s/step':>14} {'peak allocated GiB':>19} {'peak reserved GiB':>18}")
    for label, times, allocated, reserved in rows:
        print(f"{label:<22} {statistics.median(times):>14.3f} {allocated:>19.2f} {reserved:>18.2f}")
    peak = max(row[3] for row in rows)
    verdict = "fits" if peak <= A100_40GB_USABLE_GIB else "does NOT fit"
    print(f"paper batch on a 40 GB A100: {verdict} (peak reserved {peak:.2f} GiB measured here vs "
          f"{A100_40GB_USABLE_GIB:.1f} GiB usable on an A100 40GB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
