"""Dice + BCE per prompt channel, deep-supervised over the decoder's five scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def downsample_targets(target: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
    """Nearest-neighbour targets for each output scale (nnU-Net's choice for deep supervision)."""
    target = target.float()
    return [target if tuple(s) == tuple(target.shape[2:]) else F.interpolate(target, size=tuple(s), mode="nearest-exact")
            for s in shapes]


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5,
                   empty_smooth: float = 0.0) -> torch.Tensor:
    """1 - soft Dice of sigmoid(logits) per image and prompt: (B, K).

    For an empty target (a negative prompt) this is V / (V + smooth), V the predicted volume
    in voxels. With nnU-Net's tiny ``smooth`` that is 1 as soon as a few voxels are predicted,
    and its gradient, smooth / V², vanishes: a negative that segments a nodule elsewhere is
    not pushed back. ``empty_smooth`` (> 0) replaces ``smooth`` for empty targets, so the
    loss falls smoothly with V (0.5 at V = empty_smooth); positives keep ``smooth``.
    """
    probabilities = torch.sigmoid(logits).flatten(2)
    target = target.flatten(2)
    intersection = (probabilities * target).sum(2)
    target_volume = target.sum(2)
    total = probabilities.sum(2) + target_volume
    if empty_smooth > 0:
        smooth = torch.where(target_volume > 0, smooth, empty_smooth)
    return 1 - (2 * intersection + smooth) / (total + smooth).clamp_min(1e-8)


class PromptSegmentationLoss(nn.Module):
    """Soft Dice (per image and prompt) plus BCE with logits, averaged over the prompt
    slots with their weights (0 for slots the loss must ignore)."""

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0, smooth: float = 1e-5,
                 empty_smooth: float = 0.0) -> None:
        super().__init__()
        self.dice_weight, self.bce_weight, self.smooth = dice_weight, bce_weight, smooth
        self.empty_smooth = empty_smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        dice = soft_dice_loss(logits, target, self.smooth, self.empty_smooth)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(2).mean(2)
        per_slot = self.dice_weight * dice + self.bce_weight * bce
        return (per_slot * weight).sum() / weight.sum().clamp_min(1e-8)


class DeepSupervisionLoss(nn.Module):
    """Weighted sum over scales, weights normalised to sum to one (1, 1/2, ..., 1/16 by default)."""

    def __init__(self, loss: nn.Module, weights: list[float]) -> None:
        super().__init__()
        total = float(sum(weights))
        self.loss = loss
        self.weights = [w / total for w in weights]

    def forward(self, outputs: list[torch.Tensor], target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if len(outputs) != len(self.weights):
            raise ValueError(f"{len(outputs)} outputs but {len(self.weights)} deep supervision weights")
        targets = downsample_targets(target, [o.shape[2:] for o in outputs])
        return sum(w * self.loss(o, t, weight) for w, o, t in zip(self.weights, outputs, targets) if w)
