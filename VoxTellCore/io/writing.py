"""Write a label map on a reference volume's exact geometry, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel
import numpy as np
import SimpleITK as sitk

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import InputError
from VoxTellCore.io.volume import Volume, set_sitk_geometry

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def mask_suffix(path: str | os.PathLike) -> str:
    """The supported output extension of ``path`` (raises InputError if there is none)."""
    name = str(path).lower()
    for suffix in MASK_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError(f"Cannot write a mask to {path}: use one of the extensions {', '.join(MASK_SUFFIXES)}.")


def label_dtype(labels: np.ndarray) -> np.dtype:
    """uint8, or uint16 when the largest label is 255 or more (as the release does)."""
    smallest, largest = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    if smallest < 0 or largest > np.iinfo(np.uint16).max:
        raise ValueError(f"labels must lie in [0, 65535], got [{smallest}, {largest}]")
    return np.dtype(np.uint8 if largest < 255 else np.uint16)


def write_mask(mask_kji: np.ndarray, reference: Volume, path: str | os.PathLike) -> None:
    """Write a KJI label map on ``reference``'s grid; the format follows the extension.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder (same extension, so the right writer is picked) and renamed over ``path``.
    """
    mask = np.asarray(mask_kji)
    if mask.shape != reference.array.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the reference's {reference.array.shape}")
    mask = mask.astype(label_dtype(mask), copy=False)
    path = Path(path)
    suffix = mask_suffix(path)

    def write(temporary: str) -> None:
        if suffix in (".nii.gz", ".nii"):
            # Like the release: a plain Nifti1Image on the affine (sform), (i, j, k) data order.
            nibabel.save(nibabel.Nifti1Image(mask.T, np.asarray(reference.ijk_to_ras, dtype=np.float64)), temporary)
        else:
            image = sitk.GetImageFromArray(mask)
            set_sitk_geometry(image, reference.ijk_to_ras)
            sitk.WriteImage(image, temporary, useCompression=True)

    atomic_write(path, write, suffix)
