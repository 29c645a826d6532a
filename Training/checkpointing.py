"""Training state (``fold_0/checkpoint_latest.pth``) and the final model folder.

The state holds only tensors and plain data, so it loads with ``weights_only=True``.
All randomness of a run is derived from (seed, rank, iteration) (see sampling.py and
trainer.py), so the seed and the iteration restore every rank's random streams exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from VoxTellCore.atomic import atomic_write
from VoxTellCore.checkpoint import CHECKPOINT_FILE, cpu_weights, save_model_folder
from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellModel

LATEST = "checkpoint_latest.pth"


def latest_path(output_dir: Path) -> Path:
    return output_dir / CHECKPOINT_FILE.parent / LATEST


def save_training_state(output_dir: Path, model: VoxTellModel, optimizer: torch.optim.Optimizer,
                        scaler: torch.amp.GradScaler, iteration: int, config: dict[str, Any]) -> Path:
    state = {
        "network_weights": cpu_weights(model),
        "optimizer_state": optimizer.state_dict(),
        "grad_scaler_state": scaler.state_dict(),
        "iteration": iteration,
        "sampler_state": {"seed": config["seed"], "next_iteration": iteration},
        "rng": {"seed": config["seed"], "derived_from": "(seed, rank, iteration)"},
        "config": config,
    }
    return atomic_write(latest_path(output_dir), lambda tmp: torch.save(state, tmp))


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
