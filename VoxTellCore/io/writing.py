"""Write a label map on a reference volume's exact geometry, atomically, in the format that
the file's extension names (the label-map writers of ``VoxTellCore.io.formats``)."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.io.formats import writers
from VoxTellCore.io.formats.base import LabelMapWriter, ModelInfo, header_fields, matching_suffix
from VoxTellCore.io.volume import Volume


def _label_map_writers() -> list:
    return [writer for writer in writers() if isinstance(writer, LabelMapWriter)]


MASK_SUFFIXES = tuple(suffix for writer in _label_map_writers() for suffix in writer.suffixes)


def mask_suffix(path: str | os.PathLike) -> str:
    """The supported output extension of ``path`` (raises InputError if there is none)."""
    suffix = matching_suffix(path, MASK_SUFFIXES)
    if suffix is None:
        raise InputError(f"Cannot write a mask to {path}: use one of the extensions {', '.join(MASK_SUFFIXES)}.")
    return suffix


def label_dtype(labels: np.ndarray) -> np.dtype:
    """uint8, or uint16 when the largest label is 255 or more (as the release does)."""
    smallest, largest = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    if smallest < 0 or largest > np.iinfo(np.uint16).max:
        raise ValueError(f"labels must lie in [0, 65535], got [{smallest}, {largest}]")
    return np.dtype(np.uint8 if largest < 255 else np.uint16)


def write_mask(mask_kji: np.ndarray, reference: Volume, path: str | os.PathLike,
               model: Optional[ModelInfo] = None) -> None:
    """Write a KJI label map on ``reference``'s grid; the format follows the extension.

    The file appears complete or not at all: it is written to a temporary file in the
    same folder (same extension, so the right writer is picked) and renamed over ``path``.
    ``model`` is recorded in the header where the format has room (see ``header_fields``).
    """
    mask = np.asarray(mask_kji)
    if mask.shape != reference.array.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the reference's {reference.array.shape}")
    suffix = mask_suffix(path)
    writer = next(writer for writer in _label_map_writers() if suffix in writer.suffixes)
    writer.write_labels(mask.astype(label_dtype(mask), copy=False), reference, path, header_fields(model))
