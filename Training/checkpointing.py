"""Training state (``fold_0/checkpoint_latest.pth``) and the final model folder.

The state holds only tensors and plain data, so it loads with ``weights_only=True``.
All randomness of a run is derived from (seed, rank, iteration) (see sampling.py and
trainer.py), so the seed and the iteration restore every rank's random streams exactly.
The state is copied to the CPU at once and written by a background thread
(``BackgroundWriter``), so rank 0 does not hold the other ranks up while gigabytes reach disk.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import torch

from VoxTellCore.atomic import atomic_write
from VoxTellCore.checkpoint import CHECKPOINT_FILE, cpu_weights, save_model_folder
from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellModel

LATEST = "checkpoint_latest.pth"


def latest_path(output_dir: Path) -> Path:
    return output_dir / CHECKPOINT_FILE.parent / LATEST


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
        return atomic_write(path, lambda tmp: torch.save(state, tmp))
    writer.submit(lambda: atomic_write(path, lambda tmp: torch.save(state, tmp)))
    return path


def load_training_state(output_dir: Path) -> dict[str, Any]:
    path = latest_path(output_dir)
    if not path.is_file():
        raise InputError(f"--resume: {path} does not exist. Start without --resume, or pass the run's --output.")
    return torch.load(path, map_location="cpu", weights_only=True)


def save_final_model(output_dir: Path, model: VoxTellModel, config: dict[str, Any], iteration: int) -> Path:
    """The release's layout (plans.json + fold_0/checkpoint_final.pth) that VoxTellCore loads."""
    info = {
        "description": "VoxTell model trained with voxtell-train",
        "text_encoder": config.get("text_encoder") or None,
        "embedding_bank": config.get("embedding_bank") or None,
        "training": {"iterations": iteration, "epochs": config["num_epochs"], "seed": config["seed"]},
    }
    return save_model_folder(model, output_dir, info=info, extra={"iteration": iteration, "trainer": "voxtell-train"})
