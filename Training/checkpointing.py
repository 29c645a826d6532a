"""Training state (``fold_0/checkpoint_latest.pth`` and the one before it,
``fold_0/checkpoint_previous.pth``) and the final model folder.

A state reaches disk before it replaces anything: it is written to a temporary file and
fsynced, the latest state is renamed to the previous one, the new file to the latest, and the
folder is fsynced. A crash at any point leaves at least one complete state; ``--resume``
takes the newest one that loads.

The state holds only tensors and plain data, so it loads with ``weights_only=True``.
All randomness of a run is derived from (seed, rank, iteration) (see sampling.py and
trainer.py), so the seed and the iteration restore every rank's random streams exactly.
The state is copied to the CPU at once and written by a background thread
(``BackgroundWriter``), so rank 0 does not hold the other ranks up while gigabytes reach disk.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

import torch

from VoxTellCore.atomic import atomic_write
from VoxTellCore.checkpoint import CHECKPOINT_FILE, cpu_weights, save_model_folder
from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellModel

LATEST = "checkpoint_latest.pth"
PREVIOUS = "checkpoint_previous.pth"
STATE_KEYS = ("network_weights", "optimizer_state", "grad_scaler_state", "iteration")


def latest_path(output_dir: Path) -> Path:
    return output_dir / CHECKPOINT_FILE.parent / LATEST


def previous_path(output_dir: Path) -> Path:
    return output_dir / CHECKPOINT_FILE.parent / PREVIOUS


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_state_durably(path: Path, state: dict[str, Any]) -> Path:
    """``state`` at ``path``, the file there before it kept as ``checkpoint_previous.pth``."""
    def write_and_sync(temporary: str) -> None:
        torch.save(state, temporary)
        _fsync(Path(temporary))
        if path.exists():  # renamed only once the new state is on disk
            os.replace(path, path.with_name(PREVIOUS))

    atomic_write(path, write_and_sync)
    _fsync(path.parent)  # the renames themselves
    return path


class BackgroundWriter:
    """Runs one write at a time in a thread; ``wait`` joins it and re-raises its error."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], Any]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(write,), name="checkpoint-writer")
        self._thread.start()

    def _run(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except BaseException as error:  # re-raised in the training thread by wait()
            self._error = error

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def cpu_copy(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``value`` with every tensor copied to the CPU (never shared with the live one; aliases stay aliases)."""
    memo = {} if memo is None else memo
    if isinstance(value, torch.Tensor):
        if id(value) not in memo:
            memo[id(value)] = value.detach().to("cpu", copy=True)
        return memo[id(value)]
    if isinstance(value, dict):
        return {k: cpu_copy(v, memo) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(v, memo) for v in value)
    return value


def save_training_state(output_dir: Path, model: VoxTellModel, optimizer: torch.optim.Optimizer,
                        scaler: torch.amp.GradScaler, iteration: int, config: dict[str, Any],
                        writer: BackgroundWriter | None = None) -> Path:
    """Snapshot the state now; write it now, or in ``writer``'s thread while training goes on."""
    state = cpu_copy({
        "network_weights": cpu_weights(model),
        "optimizer_state": optimizer.state_dict(),
        "grad_scaler_state": scaler.state_dict(),
        "iteration": iteration,
        "sampler_state": {"seed": config["seed"], "next_iteration": iteration},
        "rng": {"seed": config["seed"], "derived_from": "(seed, rank, iteration)"},
        "config": config,
    })
    path = latest_path(output_dir)
    if writer is None:
        return write_state_durably(path, state)
    writer.submit(lambda: write_state_durably(path, state))
    return path


def load_training_state(output_dir: Path, warn: Callable[[str], None] = print) -> dict[str, Any]:
    """The newest state that loads completely: the latest, else the previous one (``warn`` says why)."""
    paths = [p for p in (latest_path(output_dir), previous_path(output_dir)) if p.is_file()]
    if not paths:
        raise InputError(f"--resume: {latest_path(output_dir)} does not exist. Start without --resume, or pass "
                         "the run's --output.")
    problems = []
    for path in paths:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or any(key not in state for key in STATE_KEYS):
                raise ValueError(f"it lacks {[k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]}")
        except Exception as error:  # truncated, corrupted or foreign file: try the one before
            problems.append(f"{path.name}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            continue
        if problems:
            warn(f"--resume: skipped an incomplete state ({'; '.join(problems)}); resuming from {path.name} "
                 f"at iteration {state['iteration']}")
        return state
    raise InputError(f"--resume: no training state in {paths[0].parent} loads ({'; '.join(problems)}). "
                     "Start without --resume into a new --output.")


def save_final_model(output_dir: Path, model: VoxTellModel, config: dict[str, Any], iteration: int) -> Path:
    """The release's layout (plans.json + fold_0/checkpoint_final.pth) that VoxTellCore loads."""
    info = {
        "description": "VoxTell model trained with voxtell-train",
        "text_encoder": config.get("text_encoder") or None,
        "embedding_bank": config.get("embedding_bank") or None,
        "training": {"iterations": iteration, "epochs": config["num_epochs"], "seed": config["seed"]},
    }
    return save_model_folder(model, output_dir, info=info, extra={"iteration": iteration, "trainer": "voxtell-train"})
