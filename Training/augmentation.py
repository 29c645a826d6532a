"""nnU-Net's default 3D augmentation (batchgeneratorsv2) without left-right mirroring.

Same transforms and probabilities as ``nnUNetTrainer.get_training_transforms`` for 3D
full-resolution data: rotation (+-30 deg, p 0.2) and scaling (0.7-1.4, p 0.2), Gaussian
noise, Gaussian blur, brightness, contrast, low-resolution simulation, gamma, then mirroring
(each allowed axis with p 0.5). As in the paper, mirroring leaves out the left-right axis: the
network array is (S, A, R), so a flip of axis 2 swaps the patient's left and right and would
make "left kidney" and "right kidney" the same question. The axes come from the config
(``mirror_axes``, default the other two). Rotations stay within +-30 degrees, so laterality
survives every augmentation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.random import RandomTransform
from batchgeneratorsv2.transforms.utils.remove_label import RemoveLabelTransform

MAX_ROTATION = math.radians(30)
SCALING = (0.7, 1.4)
LEFT_RIGHT_AXIS = 2  # of the network's (S, A, R) array
DEFAULT_MIRROR_AXES: tuple[int, ...] = (0, 1)  # superior-inferior, anterior-posterior


def training_transforms(patch_size: tuple[int, ...],
                        mirror_axes: tuple[int, ...] = DEFAULT_MIRROR_AXES) -> ComposeTransforms:
    intensity = [
        (GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True), 0.1),
        (GaussianBlurTransform(blur_sigma=(0.5, 1.0), synchronize_channels=False, synchronize_axes=False,
                               p_per_channel=0.5, benchmark=False), 0.2),
        (MultiplicativeBrightnessTransform(multiplier_range=BGContrast((0.75, 1.25)), synchronize_channels=False,
                                           p_per_channel=1), 0.15),
        (ContrastTransform(contrast_range=BGContrast((0.75, 1.25)), preserve_range=True, synchronize_channels=False,
                           p_per_channel=1), 0.15),
        (SimulateLowResolutionTransform(scale=(0.5, 1), synchronize_channels=False, synchronize_axes=True,
                                        ignore_axes=None, allowed_channels=None, p_per_channel=0.5), 0.25),
        (GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=1, synchronize_channels=False,
                        p_per_channel=1, p_retain_stats=1), 0.1),
        (GammaTransform(gamma=BGContrast((0.7, 1.5)), p_invert_image=0, synchronize_channels=False,
                        p_per_channel=1, p_retain_stats=1), 0.3),
    ]
    spatial = SpatialTransform(
        tuple(patch_size), patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0,
        p_rotation=0.2, rotation=(-MAX_ROTATION, MAX_ROTATION), p_scaling=0.2, scaling=SCALING,
        p_synchronize_scaling_across_axes=1, bg_style_seg_sampling=False, border_mode_seg="constant",
        padding_value_seg=-1,
    )
    mirroring = [MirrorTransform(allowed_axes=tuple(mirror_axes))] if mirror_axes else []
    return ComposeTransforms(
        [spatial, *(RandomTransform(t, apply_probability=p) for t, p in intensity), *mirroring,
         RemoveLabelTransform(-1, 0)]
    )


def input_patch_size(patch_size: tuple[int, ...], rotation: float = MAX_ROTATION, min_scale: float = 0.85) -> tuple[int, ...]:
    """The larger patch to crop before rotating/scaling so the final patch sees little fill-in,
    as nnU-Net's ``get_patch_size``: the patch's corner vector rotated by +-``rotation`` about
    each axis separately, the largest extent per axis, divided by ``min_scale``."""
    corner = np.array(patch_size, dtype=float)
    extent = corner.copy()
    c, s = math.cos(rotation), math.sin(rotation)
    for axis in range(3):
        a, b = [i for i in range(3) if i != axis]
        rotated = corner.copy()
        # the angle may have either sign: take the larger extent of both rotations
        rotated[a], rotated[b] = c * corner[a] + s * corner[b], s * corner[a] + c * corner[b]
        extent = np.maximum(extent, np.abs(rotated))
    return tuple(int(e) for e in extent / min_scale)


class Augmenter:
    """Augments one sample; the random draws come from ``seed`` only (global RNGs untouched)."""

    def __init__(self, patch_size: tuple[int, ...], mirror_axes: tuple[int, ...] = DEFAULT_MIRROR_AXES) -> None:
        self.patch_size = tuple(patch_size)
        self.input_size = input_patch_size(self.patch_size)
        self.transforms = training_transforms(self.patch_size, tuple(mirror_axes))

    def __call__(self, image: torch.Tensor, target: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            try:
                out = self.transforms(image=image, segmentation=target.to(torch.int16))
            finally:
                np.random.set_state(numpy_state)
        return out["image"].contiguous(), out["segmentation"].to(torch.uint8).contiguous()
