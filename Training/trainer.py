"""The training loop: one process per GPU (or one CPU process), DDP across processes.

Each process draws its own batches (seeded by rank), DDP averages the gradients, so all
processes hold identical weights after every step. Only rank 0 writes logs, the training
state and the final model folder. Dropout is seeded per (seed, rank, iteration), like the
batches, which makes a resumed run continue exactly as an uninterrupted one.

A file ``OUTPUT/fold_0/STOP`` (the SLURM script creates it when the job's time is nearly up)
makes every rank save the state and exit within ``SYNC_EVERY`` iterations, ready for ``--resume``.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Iterator

import blosc2
import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellModel
from Training.augmentation import Augmenter
from Training.checkpointing import BackgroundWriter, load_training_state, save_final_model, save_training_state
from Training.config import TrainingConfig
from Training.data.manifest import build_manifest, read_manifest
from Training.data.prepare import PreparedData, prepare_data
from Training.data.vocabulary import Vocabulary
from Training.distributed import DistributedContext, initialise, shutdown
from Training.embeddings import PromptTable
from Training.loss import DeepSupervisionLoss, PromptSegmentationLoss
from Training.optim import build_optimizer, poly_lr, set_lr
from Training.progress import TrainingLog
from Training.sampling import Batch, BatchSampler

BANK_COPY = "embedding_bank.npz"
STOP_FILE = "STOP"  # in fold_0: save and exit at the next flush
SYNC_EVERY = 10  # iterations whose losses are read (one host sync, one all-reduce) together, and STOP checked


class _BatchStream(IterableDataset):
    """Batches ``start..stop-1``; worker w of n makes those with index % n == w, and the
    DataLoader returns them in index order."""

    def __init__(self, sampler: BatchSampler, start: int, stop: int) -> None:
        self.sampler, self.start, self.stop = sampler, start, stop

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if info:
            torch.set_num_threads(1)  # many workers per GPU: one thread each
            blosc2.set_nthreads(1)
        for index in range(self.start + worker, self.stop, workers):
            yield self.sampler.batch(index)


def batch_stream(sampler: BatchSampler, start: int, stop: int, num_workers: int,
                 pin_memory: bool = False) -> Iterator[Batch]:
    """The batches in order; ``pin_memory`` (CUDA) returns them in page-locked memory."""
    stream = _BatchStream(sampler, start, stop)
    if num_workers == 0:
        return (batch.pin_memory() for batch in stream) if pin_memory else iter(stream)
    return iter(DataLoader(stream, batch_size=None, num_workers=num_workers, collate_fn=_as_is, prefetch_factor=2,
                           pin_memory=pin_memory))


def _as_is(batch: Batch) -> Batch:  # a module-level function: picklable for any start method
    return batch


def freeze_unused_parameters(model: VoxTellModel, text_dim: int) -> list[str]:
    """Freeze what the forward never uses (the release builds self-attention and norm1 in
    every prompt-decoder layer and a last deep-supervision head, none of them used), so DDP
    need not search for unused parameters every step. Found with one probe backward pass."""
    device = next(model.parameters()).device
    image = torch.zeros(1, 1, *model.config.patch_size, device=device)
    model.train()
    autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), autocast:
        outputs = model(image, torch.zeros(1, 1, text_dim, device=device))
        sum(o.float().sum() for o in outputs).backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    for name, parameter in model.named_parameters():
        parameter.grad = None
        if name in unused:
            parameter.requires_grad_(False)
    return unused


def shared_manifest(config: TrainingConfig, ctx: DistributedContext) -> dict:
    """Rank 0 reads the cache once and writes its manifest (unless a current one exists); every
    other rank waits for it and reads only that file."""
    names = [spec.get("name") for spec in config.datasets]
    error = None
    if ctx.is_main and read_manifest(config.preprocessed_dir, names, check_files=True) is None:
        try:
            build_manifest(config.preprocessed_dir, names)
        except InputError as exc:  # raised after the barrier, so the other ranks do not wait for rank 0
            error = exc
    ctx.barrier()
    manifest = read_manifest(config.preprocessed_dir, names)
    if error is not None or manifest is None:
        raise error or InputError(f"Rank {ctx.rank}: no current manifest in {config.preprocessed_dir} (rank 0 "
                                  "could not write it; its error says why).")
    return manifest


def _seed(*values: int) -> int:
    return int(np.random.default_rng(list(values)).integers(2**62))


class Trainer:
    def __init__(self, config: TrainingConfig, output_dir: Path, ctx: DistributedContext) -> None:
        self.config, self.output_dir, self.ctx = config, output_dir, ctx
        self.fold_dir = output_dir / "fold_0"
        self.network_config = config.network_config()
        vocabulary = Vocabulary.load(config.vocabulary)
        self.data: PreparedData = prepare_data(config.datasets, vocabulary, config.preprocessed_dir,
                                               config.val_fraction, config.seed, shared_manifest(config, ctx))
        self.prompts = PromptTable.from_bank(config.embedding_bank, self.data.prompt_names(),
                                             self.network_config.text_embedding_dim).to(ctx.device)
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.model = VoxTellModel(self.network_config, deep_supervision=True)
        self.model.initialize_weights()
        self.memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
        self.model.to(ctx.device, memory_format=self.memory_format)
        self.frozen = freeze_unused_parameters(self.model, self.network_config.text_embedding_dim)
        wrapped = (DistributedDataParallel(self.model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
                   if ctx.enabled else self.model)
        # compiled around DDP, so that DDP's hooks still overlap the gradient all-reduce with the backward
        self.network = torch.compile(wrapped) if config.compile else wrapped  # shares self.model's weights
        self.optimizer = build_optimizer(self.model, config.initial_lr, config.momentum, config.weight_decay,
                                         config.optimizer)
        self.use_amp = config.mixed_precision and ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        segmentation_loss = PromptSegmentationLoss(config.dice_weight, config.bce_weight,
                                                   empty_smooth=config.empty_target_smooth)
        self.loss = DeepSupervisionLoss(segmentation_loss, config.deep_supervision_weights)
        self.train_sampler = self._sampler(self.data.train, augment=config.augmentation, stream=0,
                                           negatives_from=config.negatives_start_epoch * config.iterations_per_epoch)
        self.val_sampler = self._sampler(self.data.val, augment=False, stream=1) if self.data.val else None
        self.iteration = 0
        self.writer = BackgroundWriter()
        self.last_saved = time.monotonic()
        self.saved_iteration: int | None = None

    def _sampler(self, cases, augment: bool, stream: int, negatives_from: int = 0) -> BatchSampler:
        c = self.config
        return BatchSampler(
            cases, self.data.fallback_negatives, patch_size=tuple(c.patch_size),
            batch_size=c.batch_size_per_process, positives=c.positives_per_image, negatives=c.negatives_per_image,
            default_name_probability=c.default_name_probability, foreground_probability=c.foreground_probability,
            augmenter=Augmenter(tuple(c.patch_size), tuple(c.mirror_axes)) if augment else None,
            seed=_seed(c.seed, stream),
            rank=self.ctx.rank, balance_prompts=c.balance_prompts, negatives_from_iteration=negatives_from,
            hard_negative_probability=c.hard_negative_probability,
        )

    # ------------------------------------------------------------------ state
    def resume(self) -> None:
        state = load_training_state(self.output_dir, warn=lambda text: print(f"rank {self.ctx.rank}: {text}"))
        try:
            self.model.load_state_dict(state["network_weights"])
        except RuntimeError as exc:
            raise InputError(
                f"--resume: the checkpoint in {self.output_dir} was trained with other model sizes "
                f"({str(exc).splitlines()[-1].strip()}). Resume with the run's own config, or train into a new --output."
            ) from exc
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.scaler.load_state_dict(state["grad_scaler_state"])
        self.iteration = self.saved_iteration = int(state["iteration"])

    def save_state(self) -> None:
        """Rank 0 snapshots the state and writes it in the background; the other ranks go on at once.
        A state already on disk is not written again (it would push the one before it out)."""
        self.last_saved = time.monotonic()
        if self.ctx.is_main and self.iteration != self.saved_iteration:
            self.saved_iteration = self.iteration
            save_training_state(self.output_dir, self.model, self.optimizer, self.scaler, self.iteration,
                                self.config.to_dict(), self.writer)

    def checkpoint_due(self) -> bool:
        """Rank 0: ``checkpoint_every_minutes`` have passed since the last saved state (or the start)."""
        minutes = self.config.checkpoint_every_minutes
        return self.ctx.is_main and minutes > 0 and time.monotonic() - self.last_saved >= 60 * minutes

    def stop_requested(self) -> bool:
        return (self.fold_dir / STOP_FILE).exists()

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()

    def _forward(self, batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Deep-supervision logits and the loss of one batch."""
        device = self.ctx.device
        target = batch.target.to(device, non_blocking=True)
        image = batch.image.to(device, non_blocking=True).contiguous(memory_format=self.memory_format)
        weight = batch.weight.to(device, non_blocking=True)
        with self._autocast():
            outputs = self.network(image, self.prompts.lookup(batch.prompts))
        return outputs, self.loss(outputs, target, weight)

    def _flush(self, pending: list[tuple[dict, torch.Tensor, int]]) -> tuple[list[dict], bool]:
        """The pending iterations' records with their loss (mean over ranks) and skipped negative
        slots (sum over ranks), and whether rank 0 saw the STOP file: one host sync and one
        all-reduce for ``SYNC_EVERY`` iterations."""
        losses = torch.stack([loss for _, loss, _ in pending]).float().tolist()
        stop_vote = float(self.ctx.is_main and self.stop_requested())
        totals = self.ctx.sum_floats(losses + [skipped for _, _, skipped in pending] + [stop_vote])
        n = len(pending)
        records = [dict(record, loss=loss / self.ctx.world_size, skipped_negatives=int(skipped))
                   for (record, _, _), loss, skipped in zip(pending, totals[:n], totals[n:2 * n])]
        return records, bool(totals[-1])

    def train_step(self, batch: Batch) -> torch.Tensor:
        self.network.train()
        torch.manual_seed(_seed(self.config.seed, self.ctx.rank, self.iteration, 2))  # dropout
        self.optimizer.zero_grad(set_to_none=True)
        _, loss = self._forward(batch)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()  # read in _flush: no host sync per step

    @torch.no_grad()
    def validate(self, epoch: int) -> tuple[float | None, float | None]:
        """Mean loss and pseudo Dice (hard masks, full resolution, all slots pooled) on held-out cases."""
        if self.val_sampler is None or self.config.val_iterations <= 0:
            return None, None
        self.network.eval()
        count = -(-self.config.val_iterations // self.ctx.world_size)
        losses, overlap = [], np.zeros(3)  # tp, fp, fn
        for j in range(count):
            batch = self.val_sampler.batch(epoch * count + j)
            outputs, loss = self._forward(batch)
            losses.append(loss.item())
            predicted = outputs[0] > 0
            target = batch.target.to(self.ctx.device).bool()
            mask = (batch.weight > 0).to(self.ctx.device)[:, :, None, None, None]
            overlap += [float((predicted & target & mask).sum()), float((predicted & ~target & mask).sum()),
                        float((~predicted & target & mask).sum())]
        totals = np.sum(self.ctx.all_gather_floats([float(np.mean(losses)), *overlap]), axis=0)
        tp, fp, fn = totals[1:]
        return totals[0] / self.ctx.world_size, float(2 * tp / max(2 * tp + fp + fn, 1.0))

    def _checksum(self) -> list[float]:
        values = [p.detach().double() for p in self.model.parameters()]
        return [float(sum(v.sum() for v in values)), float(sum((v * v).sum() for v in values))]

    # ------------------------------------------------------------------ loop
    def fit(self) -> Path | None:
        c, ctx = self.config, self.ctx
        log = TrainingLog(self.fold_dir, self.iteration, c.iterations_per_epoch) if ctx.is_main else None
        if log:
            log.message(f"{ctx.world_size} process(es) on {ctx.device}; {len(self.data.train)} training and "
                        f"{len(self.data.val)} validation cases; starting at iteration {self.iteration} "
                        f"of {c.total_iterations}; {len(self.frozen)} never-used parameter tensors frozen")
            for dataset, failed in self.data.excluded.items():
                log.message(f"{dataset}: {len(failed)} case(s) excluded, preprocessing failed on them (e.g. "
                            f"{next(iter(failed.items()))}; all in {c.preprocessed_dir}/manifest.json)")
            for dataset, case_ids in self.data.unpromptable.items():
                log.message(f"{dataset}: {len(case_ids)} case(s) left out, no structure present and no safe "
                            f"negative (e.g. {case_ids[:3]})")
            for dataset, (without, total) in self.data.cases_without_negatives().items():
                if without and c.negatives_per_image:
                    log.message(f"{dataset}: {without} of {total} training cases have no safe negative prompt "
                                "(nothing labelled absent, partially labelled, or no vocabulary concept outside "
                                "its 'region'); their negative slots get loss weight 0")
        stop = c.total_iterations
        if c.stop_after_iterations:
            stop = min(stop, c.stop_after_iterations)
        # after a resume mid-epoch, the epoch's mean loss still covers the whole epoch
        epoch_losses = log.losses_since(self.iteration - self.iteration % c.iterations_per_epoch) if log else []
        epoch_start, epoch_skipped = time.time(), 0
        stop_requested, pending = False, []
        for batch in batch_stream(self.train_sampler, self.iteration, stop, c.num_workers,
                                  pin_memory=ctx.device.type == "cuda"):
            epoch = self.iteration // c.iterations_per_epoch
            lr = poly_lr(c.initial_lr, epoch, c.num_epochs, c.poly_exponent)
            set_lr(self.optimizer, lr)
            record = {"iteration": self.iteration, "epoch": epoch, "lr": lr,
                      "foreground": sum(batch.foreground) / len(batch.foreground)}
            pending.append((record, self.train_step(batch), batch.skipped_negatives))
            if c.record_checksums:
                record["checksums"] = ctx.all_gather_floats(self._checksum())
            self.iteration += 1
            end_of_epoch = self.iteration % c.iterations_per_epoch == 0
            if end_of_epoch or len(pending) == SYNC_EVERY or self.iteration == stop:
                records, stop_requested = self._flush(pending)
                pending = []
                epoch_losses += [r["loss"] for r in records]
                epoch_skipped += sum(r["skipped_negatives"] for r in records)
                for r in records if log else []:
                    log.iteration(r)
            if end_of_epoch:
                val_loss, val_dice = self.validate(epoch)
                if log:
                    log.epoch({"epoch": epoch, "iteration": self.iteration, "train_loss": float(np.mean(epoch_losses)),
                               "val_loss": val_loss, "val_dice": val_dice, "lr": lr,
                               "epoch_time_s": round(time.time() - epoch_start, 2),
                               "skipped_negatives": epoch_skipped})
                epoch_losses, epoch_start, epoch_skipped = [], time.time(), 0
                if (epoch + 1) % c.checkpoint_every_epochs == 0 or self.iteration == c.total_iterations:
                    self.save_state()
            if self.checkpoint_due():
                self.save_state()
            if stop_requested:
                break
        if self.iteration < c.total_iterations:  # stopped early on request: keep the state to resume
            self.save_state()
            self.writer.wait()
            if log and stop_requested:
                log.message(f"{STOP_FILE} found: state saved at iteration {self.iteration}; continue with --resume")
            return None
        model_dir = self.save_model() if ctx.is_main else None
        self.writer.wait()
        return model_dir

    def save_model(self) -> Path:
        info_config = self.config.to_dict()
        if self.config.embedding_bank:
            shutil.copyfile(self.config.embedding_bank, self.output_dir / BANK_COPY)
            info_config["embedding_bank"] = BANK_COPY  # relative to the model folder
        return save_final_model(self.output_dir, self.model, info_config, self.iteration)


def train(config: TrainingConfig, output_dir: str | Path | None = None, resume: bool = False) -> Path | None:
    """Run (or resume) a training; returns the model folder on rank 0 when training finished."""
    ctx = initialise()
    try:
        out = Path(output_dir or config.output_dir).resolve()
        trainer = Trainer(config, out, ctx)  # data, bank and model checked: a failed start writes nothing
        if resume:
            trainer.resume()
        if ctx.is_main:
            (out / "fold_0").mkdir(parents=True, exist_ok=True)
            (out / "fold_0" / STOP_FILE).unlink(missing_ok=True)  # a request that the last run already served
            (out / "fold_0" / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        ctx.barrier()
        model_dir = trainer.fit()
        # Rank 0 may still be writing the final model: tear the process group down together, or a
        # rank that leaves early aborts in gloo's teardown ("terminate called without an active exception").
        ctx.barrier()
        return model_dir
    finally:
        shutdown()

