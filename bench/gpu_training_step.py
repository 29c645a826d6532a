"""One full-size VoxTell training step on a GPU: time and peak memory, plain and under NCCL DDP,
then fed by the trainer's data loader.

    python bench/gpu_training_step.py [--steps 3] [--images 2] [--prompts 3] [--patch 192]
                                      [--loader-steps 12] [--loader-workers N] [--loader-work DIR]
    python bench/gpu_training_step.py --cpu-self-check      (what bench/gpu_check.sh runs without CUDA)

The loader run writes one CT-sized case into a real cache (``bench/loader.py``), measures one
worker's samples/s on it (warm), starts the workers the measured step needs
(ceil(images / (samples/s x s/step)), or ``--loader-workers``) and times steps whose batches come
from the trainer's ``batch_stream`` (crop, targets, augmentation, pinned memory), with the time each
step waited for its batch: the loader keeps up when that wait is under 5 % of the synthetic step.

The released network sizes (ResEnc-L encoder, 6-layer prompt decoder, Qwen3-4B embeddings of
2560), random weights and data, the trainer's recipe: never-used weights frozen, fp16 autocast +
GradScaler, SGD (Nesterov, momentum 0.99), deep-supervision Dice + BCE, gradient clipping at 12,
cudnn.benchmark, pinned inputs copied with non_blocking. Needs nothing from the internet.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from Training.augmentation import Augmenter  # noqa: E402
from Training.loss import DeepSupervisionLoss, PromptSegmentationLoss  # noqa: E402
from Training.sampling import BatchSampler  # noqa: E402
from Training.trainer import batch_stream, freeze_unused_parameters  # noqa: E402
from VoxTellCore.model import VoxTellConfig, VoxTellModel  # noqa: E402
from VoxTellCore.ports import free_port  # noqa: E402

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


def run_steps(network: torch.nn.Module, parameters: list[torch.nn.Parameter],
              next_batch: Callable[[], list[torch.Tensor]], steps: int,
              device: torch.device) -> tuple[list[float], float, float, list[float]]:
    """(seconds per step, peak allocated GiB, peak reserved GiB, seconds each step waited for its
    batch) of ``steps`` steps after one warm-up."""
    amp = device.type == "cuda"
    optimizer = torch.optim.SGD(parameters, lr=1e-4, momentum=0.99, nesterov=True, weight_decay=3e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_function = DeepSupervisionLoss(PromptSegmentationLoss(), DS_WEIGHTS)
    times, waits = [], []
    for step in range(steps + 1):
        if step == 1 and amp:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        began = time.perf_counter()
        image, target, text, weight = next_batch()
        waited = time.perf_counter() - began
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
            waits.append(waited)
        assert torch.isfinite(loss), "non-finite loss"
    if not amp:
        return times, 0.0, 0.0, waits
    return times, torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30, waits


def loader_batches(config: VoxTellConfig, images: int, prompts: int, workers: int, steps: int, work: Path,
                   shape: tuple[int, int, int], device: torch.device) -> tuple[Callable[[], list[torch.Tensor]], float]:
    """Batches from the trainer's loader on a CT-sized cached case, and one worker's samples/s (warm)."""
    from loader import make_case

    case = make_case(work, shape)
    sampler = BatchSampler([case], {}, patch_size=config.patch_size, batch_size=images, positives=prompts - 1,
                           negatives=1, default_name_probability=0.25, foreground_probability=0.85,
                           augmenter=Augmenter(config.patch_size), seed=0, rank=0)
    sampler.batch(0)  # warms the page cache
    began = time.perf_counter()
    sampler.batch(1)
    samples_per_second = images / (time.perf_counter() - began)
    stream = batch_stream(sampler, 0, steps + 1, workers, pin_memory=device.type == "cuda")
    text = torch.randn(images, prompts, config.text_embedding_dim, device=device)

    def next_batch() -> list[torch.Tensor]:
        batch = next(stream)
        return [batch.image.to(device, non_blocking=True), batch.target.to(device, non_blocking=True), text,
                batch.weight.to(device, non_blocking=True)]
    return next_batch, samples_per_second


def print_loader_row(synthetic: float, fed: tuple[list[float], float, float, list[float]], workers: int,
                     samples_per_second: float, images: int) -> None:
    needed = math.ceil(images / (samples_per_second * synthetic))
    times, _, _, waits = fed
    print(f"loader: one worker makes {samples_per_second:.2f} samples/s (warm) -> {needed} worker(s) for a "
          f"{synthetic:.3f} s step; ran with {workers}")
    print(f"{'step':<22} {'median s/step':>14} {'median s waiting for data':>26}")
    print(f"{'synthetic batch':<22} {synthetic:>14.3f} {0.0:>26.3f}")
    print(f"{'loader-fed':<22} {statistics.median(times):>14.3f} {statistics.median(waits):>26.3f}")
    keeps_up = statistics.median(waits) <= 0.05 * synthetic  # the GPU waits for data less than 5 % of a step
    verdict = "keeps up" if keeps_up else "does NOT keep up (add workers or CPUs)"
    print(f"the loader {verdict} with {workers} worker(s) per GPU")


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
    parameters = [p for p in model.parameters() if p.requires_grad]
    batch = _batch(2, 3, 32, config.text_embedding_dim, device)
    times = run_steps(model, parameters, lambda: batch, 1, device)[0]
    print(f"CPU self-check passed: a tiny VoxTell training step (2 images x 3 prompts x 32^3) in {times[0]:.2f} s, "
          f"torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as work:
        next_batch, rate = loader_batches(config, 2, 3, 1, 2, Path(work), (48, 64, 64), device)
        print_loader_row(times[0], run_steps(model, parameters, next_batch, 2, device), 1, rate, 2)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--patch", type=int, default=192)
    parser.add_argument("--loader-steps", type=int, default=12, help="steps fed by the data loader (0: none)")
    parser.add_argument("--loader-workers", type=int, help="loader workers (default: what the step needs)")
    parser.add_argument("--loader-work", type=Path, default=Path(tempfile.gettempdir()) / "voxtell_loader_bench")
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
    rows = [("one process", *run_steps(model, parameters, lambda: batch, args.steps, device)[:3])]

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=device)
    try:
        ddp = DistributedDataParallel(model, device_ids=[device])
        rows.append(("NCCL DDP, 1 process", *run_steps(ddp, parameters, lambda: batch, args.steps, device)[:3]))
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
    if args.loader_steps:
        synthetic = statistics.median(rows[0][1])
        _, rate = loader_batches(config, args.images, args.prompts, 0, 0, args.loader_work, (350, 512, 512), device)
        workers = args.loader_workers or min(math.ceil(args.images / (rate * synthetic)), os.cpu_count() or 1)
        next_batch, rate = loader_batches(config, args.images, args.prompts, workers, args.loader_steps,
                                          args.loader_work, (350, 512, 512), device)
        print_loader_row(synthetic, run_steps(model, parameters, next_batch, args.loader_steps, device), workers,
                         rate, args.images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
