"""nnU-Net's optimiser (SGD with Nesterov momentum, the paper's) or AdamW, with a polynomial
learning-rate decay. AdamW is for short trainings from scratch, such as the CPU demo model."""

from __future__ import annotations

import torch
from torch import nn


OPTIMIZERS = ("sgd", "adamw")


def build_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float,
                    name: str = "sgd") -> torch.optim.Optimizer:
    parameters = [p for p in model.parameters() if p.requires_grad]
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)


def poly_lr(initial_lr: float, epoch: int, num_epochs: int, exponent: float = 0.9) -> float:
    """Constant within an epoch, as nnU-Net's PolyLRScheduler stepped once per epoch."""
    return initial_lr * (1 - min(epoch, num_epochs) / num_epochs) ** exponent


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
