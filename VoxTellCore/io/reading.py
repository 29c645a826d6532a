"""Read a 3D image file or DICOM series folder into a validated ``Volume``.

The reader is picked from the registry (``VoxTellCore.io.formats``) by the path: NIfTI goes
through nibabel exactly as the release reads it (same affine, same scaling arithmetic), so
the network array is bit-identical to the release's; NRRD, MetaImage and DICOM go through
SimpleITK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.io.formats import image_suffixes, reader_for
from VoxTellCore.io.formats.base import SUPPORTED
from VoxTellCore.io.formats.nifti import SUFFIXES as NIFTI_SUFFIXES
from VoxTellCore.io.formats.seg_nrrd import WRITER as SEG_NRRD
from VoxTellCore.io.volume import Volume

IMAGE_SUFFIXES = image_suffixes()

__all__ = ["IMAGE_SUFFIXES", "NIFTI_SUFFIXES", "SUPPORTED", "check_voxels", "is_image_file", "read_volume"]


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file name with an image extension a reader knows; Slicer segmentations
    (.seg.nrrd, VoxTell's own output format) are not images to segment."""
    name = str(path).lower()
    return name.endswith(image_suffixes()) and not name.endswith(SEG_NRRD.suffix)


def read_volume(path: str | os.PathLike, series_uid: Optional[str] = None) -> Volume:
    """Read a 3D scalar image (NIfTI, NRRD, MetaImage file or DICOM series folder).

    ``series_uid`` picks a series of a DICOM folder holding several (see
    ``VoxTellCore.io.formats.dicom``); file readers ignore it. Raises InputError for a
    missing or unreadable file and for images VoxTell cannot segment: 2D, single-slice,
    4D or multi-component images and NaN/inf voxels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Image not found: {path}. Check the path (relative paths start at {Path.cwd()}).")
    reader = reader_for(path)
    if reader is None:
        raise InputError(f"Cannot read {path}: it is neither a file nor a folder. Pass a 3D image: {SUPPORTED}.")
    volume = reader.read(path, series_uid)
    check_voxels(volume)
    return volume


def check_voxels(volume: Volume) -> None:
    """InputError for a volume VoxTell cannot segment: a single slice, NaN or infinite voxels."""
    shape = volume.array.shape
    if min(shape) < 2:
        raise InputError(
            f"{volume.source} has a single slice (KJI shape {shape}); VoxTell needs a 3D volume with "
            "at least 2 voxels along every axis. Pass the whole volume (for DICOM, the folder of the series)."
        )
    bad = np.count_nonzero(~np.isfinite(volume.array))
    if bad:
        raise InputError(
            f"{volume.source} contains {bad} NaN or infinite voxel value(s). "
            "Replace them with a finite value (e.g. the background intensity) and try again."
        )
