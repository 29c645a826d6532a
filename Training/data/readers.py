"""Read images and masks into the network's (S, A, R) array exactly as inference does."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
from nibabel.orientations import apply_orientation, io_orientation

from VoxTellCore.errors import InputError
from VoxTellCore.io import read_volume


def read_network_image(path: Path) -> np.ndarray:
    """(S, A, R) float32, as ``Volume.to_network()`` gives it at inference."""
    return read_volume(path).to_network()


def read_network_labels(path: Path) -> np.ndarray:
    """Integer label map on the network grid (uint8, or uint16 for labels above 255)."""
    labels = np.rint(read_volume(path).to_network())
    if labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max:
        raise InputError(f"Label map {path} has values outside [0, 65535]. Labels must be non-negative integers.")
    return labels.astype(np.uint8 if labels.max() < 256 else np.uint16)


def read_network_channels(path: Path, n_channels: int) -> np.ndarray:
    """A multi-channel binary mask (one channel per finding) as (C, S, A, R) uint8.

    The channel axis may be NIfTI's 4th axis (X, Y, Z, C) or the first axis (C, X, Y, Z);
    the spatial axes are reoriented with the file's affine like the image.
    """
    image = nibabel.load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 3 and n_channels == 1:
        data = data[..., None]
    if data.ndim != 4 or n_channels not in (data.shape[0], data.shape[3]):
        raise InputError(
            f"Mask {path} has shape {data.shape}, but its scan lists {n_channels} finding(s): expected one "
            "channel per finding on the first or last axis. Check that the mask belongs to this scan."
        )
    channels = np.moveaxis(data, 3, 0) if data.shape[3] == n_channels else data
    orientation = io_orientation(image.affine)
    return np.stack([apply_orientation(c, orientation).T > 0 for c in channels]).astype(np.uint8)
