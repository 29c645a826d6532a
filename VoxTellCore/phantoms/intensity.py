"""Hounsfield units from a tissue map: per-case tissue values, texture, partial volume, noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .anatomy import Tissue

# tissue: ((low, high) HU without contrast, (low, high) HU with contrast, texture amplitude HU)
_HU: dict[Tissue, tuple[tuple[float, float], tuple[float, float], float]] = {
    Tissue.OUTSIDE_AIR: ((-1000, -1000), (-1000, -1000), 0),
    Tissue.FAT: ((-115, -85), (-115, -85), 8),
    Tissue.MUSCLE: ((35, 55), (45, 65), 6),
    Tissue.VISCERA: ((-70, -30), (-60, -20), 35),
    Tissue.LUNG: ((-880, -820), (-880, -820), 20),
    Tissue.LUNG_VESSEL: ((20, 50), (100, 200), 10),
    Tissue.MYOCARDIUM: ((35, 50), (80, 110), 6),
    Tissue.BLOOD_POOL: ((35, 50), (150, 250), 8),
    Tissue.AORTA: ((35, 50), (180, 300), 8),
    Tissue.LIVER: ((50, 70), (90, 130), 8),
    Tissue.SPLEEN: ((40, 55), (100, 140), 6),
    Tissue.KIDNEY: ((28, 40), (150, 220), 10),
    Tissue.CANCELLOUS_BONE: ((250, 400), (250, 400), 40),
    Tissue.CORTICAL_BONE: ((700, 1000), (700, 1000), 60),
    Tissue.CSF: ((5, 20), (5, 20), 4),
    Tissue.AIRWAY: ((-1000, -960), (-1000, -960), 5),
    Tissue.STOMACH_FLUID: ((5, 30), (5, 30), 5),
    Tissue.BOWEL_GAS: ((-1000, -950), (-1000, -950), 5),
    Tissue.EFFUSION: ((0, 20), (0, 20), 5),
    Tissue.NODULE: ((10, 60), (20, 80), 8),
    Tissue.FISSURE: ((-760, -660), (-760, -660), 15),
    Tissue.RIB: ((300, 600), (300, 600), 50),
}


def smooth_texture(shape: tuple[int, ...], rng: np.random.Generator, cells: int = 10) -> np.ndarray:
    """Zero-mean, unit-ish variance random field varying over about a tenth of the volume:
    coarse noise linearly interpolated one axis at a time."""
    field = rng.standard_normal((cells,) * len(shape)).astype(np.float32)
    for axis, n in enumerate(shape):
        position = np.linspace(0, cells - 1, n)
        weights = np.maximum(0, 1 - np.abs(position[:, None] - np.arange(cells)[None, :])).astype(np.float32)
        field = np.moveaxis(np.tensordot(weights, field, axes=([1], [axis])), 0, axis)
    return field


def render_ct(tissue: np.ndarray, rng: np.random.Generator, contrast: bool, noise_hu: float,
              blur_voxels: float, noise_correlation_voxels: float) -> np.ndarray:
    """(K, J, I) uint8 tissue map -> float32 HU image."""
    base = np.zeros(len(Tissue), np.float32)
    texture_amplitude = np.zeros(len(Tissue), np.float32)
    for kind, (plain, enhanced, amplitude) in _HU.items():
        base[kind] = rng.uniform(*(enhanced if contrast else plain))
        texture_amplitude[kind] = amplitude
    image = base[tissue] + texture_amplitude[tissue] * smooth_texture(tissue.shape, rng)
    if blur_voxels > 0:  # partial volume at the boundaries
        image = ndimage.gaussian_filter(image, blur_voxels, truncate=3.0)
    noise = rng.standard_normal(tissue.shape, dtype=np.float32)
    if noise_correlation_voxels > 0:
        noise = ndimage.gaussian_filter(noise, noise_correlation_voxels, truncate=3.0)
    image += noise * np.float32(noise_hu / max(float(noise.std()), 1e-6))
    return np.clip(image, -1024, 3071).astype(np.float32)
