"""The training loss: soft Dice per image and prompt (checked against MONAI), negatives, weights."""

from __future__ import annotations

import pytest
import torch
from monai.losses import DiceLoss

from Training.loss import DeepSupervisionLoss, PromptSegmentationLoss, soft_dice_loss


def _logits_and_targets(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 8, 8, 8, generator=generator) * 3
    target = (torch.rand(2, 3, 8, 8, 8, generator=generator) > 0.7).float()
    return logits, target


def test_soft_dice_matches_monai_per_image_and_prompt():
    logits, target = _logits_and_targets()
    ours = soft_dice_loss(logits, target)
    monai = DiceLoss(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5, reduction="none")(logits, target)
    torch.testing.assert_close(ours, monai.reshape(2, 3))


def _negative_loss_and_gradient(empty_smooth: float, predicted_voxels: int) -> tuple[float, float]:
    """Loss of an empty target when ``predicted_voxels`` voxels are predicted with p = 0.95, and
    the gradient on one of those voxels' logits."""
    logits = torch.full((1, 1, 10, 10, 10), -30.0)
    logits.view(-1)[:predicted_voxels] = 2.944  # sigmoid = 0.95
    logits.requires_grad_(True)
    loss = soft_dice_loss(logits, torch.zeros_like(logits), empty_smooth=empty_smooth)[0, 0]
    loss.backward()
    return float(loss.detach()), float(logits.grad.view(-1)[0])


def test_a_negative_prompt_is_pushed_back_only_with_empty_target_smooth():
    loss, gradient = _negative_loss_and_gradient(0.0, 80)  # a nodule's worth of false positives
    assert loss == pytest.approx(1.0, abs=1e-6) and abs(gradient) < 1e-8  # nnU-Net's smooth: saturated
    loss, gradient = _negative_loss_and_gradient(100.0, 80)
    volume = 80 * 0.95
    assert loss == pytest.approx(volume / (volume + 100), rel=1e-4)
    assert gradient == pytest.approx(100 / (volume + 100) ** 2 * 0.95 * 0.05, rel=1e-3)  # dL/dV * dp/dlogit
    # fewer false positives, lower loss; none, no loss
    assert _negative_loss_and_gradient(100.0, 10)[0] < loss
    assert _negative_loss_and_gradient(100.0, 0)[0] == pytest.approx(0.0, abs=1e-6)


def test_empty_target_smooth_leaves_positive_prompts_unchanged():
    logits, target = _logits_and_targets(1)
    target[0, 2] = 0  # one negative slot
    plain, with_empty = soft_dice_loss(logits, target), soft_dice_loss(logits, target, empty_smooth=100.0)
    positives = target.flatten(2).sum(2) > 0
    torch.testing.assert_close(plain[positives], with_empty[positives])
    assert with_empty[0, 2] < plain[0, 2]


def test_zero_weight_slots_are_ignored_and_scales_are_weighted():
    logits, target = _logits_and_targets(2)
    loss = PromptSegmentationLoss()
    weight = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    changed = logits.clone()
    changed[:, 2] = -changed[:, 2]  # only the ignored slot differs
    assert float(loss(logits, target, weight)) == pytest.approx(float(loss(changed, target, weight)))
    every = torch.ones(2, 3)
    assert float(loss(logits, target, every)) != pytest.approx(float(loss(changed, target, every)))
    coarse = logits[:, :, ::2, ::2, ::2]
    deep = DeepSupervisionLoss(loss, [1, 0.5])
    coarse_target = target[:, :, 1::2, 1::2, 1::2]  # what nearest-exact downsampling picks
    expected = (loss(logits, target, weight) + 0.5 * loss(coarse, coarse_target, weight)) / 1.5
    torch.testing.assert_close(deep([logits, coarse], target, weight), expected)
