"""The release's image preprocessing as small numpy functions.

VoxTell 0.1.2 crops the network array to its nonzero region (holes filled), z-scores the
crop over all of its voxels, and pads to the patch size with zeros (the mean after
z-scoring) only inside sliding-window inference. Bounding boxes are half open:
``[[start, stop], ...]`` per spatial axis, as in nnU-Net.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_fill_holes

BBox = list[list[int]]


def nonzero_bbox(mask: np.ndarray) -> BBox:
    """Half-open bounding box of the True voxels; the whole array if there are none."""
    bbox = []
    for axis in range(mask.ndim):
        other_axes = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other_axes))
        bbox.append([int(hits[0]), int(hits[-1]) + 1] if hits.size else [0, mask.shape[axis]])
    return bbox


def bbox_slices(bbox: BBox) -> tuple[slice, ...]:
    return tuple(slice(start, stop) for start, stop in bbox)


def crop_to_nonzero(data: np.ndarray) -> tuple[np.ndarray, BBox]:
    """Crop (C, *spatial) data to the box around voxels nonzero in any channel, with the
    holes of that region filled (which cannot change the box, as in nnU-Net). Returns a view."""
    nonzero = binary_fill_holes(np.any(data != 0, axis=0))
    bbox = nonzero_bbox(nonzero)
    return data[(slice(None), *bbox_slices(bbox))], bbox


def zscore(data: np.ndarray) -> np.ndarray:
    """``(x - mean) / max(std, 1e-8)`` over all voxels, float32, population std.

    The statistics are computed on ``data`` as given (numpy's float32 summation order
    depends on the memory layout), then a new array is returned.
    """
    data = data.astype(np.float32, copy=False)
    mean = data.mean()
    std = data.std()
    normalized = data - mean
    normalized /= max(std, 1e-8)
    return normalized


def pad_to_patch(data: np.ndarray, patch_size: Sequence[int]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zero-pad the last ``len(patch_size)`` axes up to ``patch_size`` where smaller, centred
    (below = d // 2, above = d - d // 2). Returns the padded array and the slices (one per
    axis of ``data``) that cut the original back out."""
    leading = data.ndim - len(patch_size)
    target = list(data.shape[:leading]) + [max(p, s) for p, s in zip(patch_size, data.shape[leading:])]
    missing = [t - s for t, s in zip(target, data.shape)]
    widths = [(d // 2, d - d // 2) for d in missing]
    padded = np.pad(data, widths, mode="constant", constant_values=0) if any(missing) else data
    unpad = tuple(slice(below, below + size) for (below, _), size in zip(widths, data.shape))
    return padded, unpad


def preprocess(network_array: np.ndarray) -> tuple[np.ndarray, BBox, tuple[int, ...]]:
    """The release's ``VoxTellPredictor.preprocess``: (S, A, R) or (1, S, A, R) ->
    (z-scored crop (1, S', A', R') float32, bbox, original spatial shape)."""
    data = network_array if network_array.ndim == 4 else network_array[None]
    data = data.astype(np.float32)  # a fresh contiguous copy, as in the release
    cropped, bbox = crop_to_nonzero(data)
    return zscore(cropped), bbox, tuple(data.shape[1:])


def insert_crop(crop: np.ndarray, bbox: BBox, full_shape: Sequence[int]) -> np.ndarray:
    """Zeros of shape (*crop's leading axes, *full_shape) with ``crop`` placed at ``bbox``."""
    leading = crop.shape[: crop.ndim - len(bbox)]
    full = np.zeros((*leading, *full_shape), dtype=crop.dtype)
    full[(..., *bbox_slices(bbox))] = crop
    return full
