"""What every format module shares: the reader and writer interfaces, who made the masks,
the label map of several prompts, and the checks and messages of reading."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import InputError
from VoxTellCore.io.volume import Volume
from VoxTellCore.terminology import SegmentInfo

SUPPORTED = "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) or a folder with a DICOM series"

__all__ = ["SUPPORTED", "LabelMapWriter", "ModelInfo", "SegmentInfo", "check_dimensions", "check_shape", "header_fields", "label_map",
           "matching_suffix", "short_description", "unreadable"]


@dataclass(frozen=True)
class ModelInfo:
    """Who made the masks (DICOM SEG algorithm identification, reports)."""

    name: str  # e.g. "VoxTell v1.1 (official)", "demo model (synthetic training data, not for clinical images)"
    version: str  # this package's version
    is_demo: bool = False


def header_fields(model: Optional[ModelInfo] = None, legend: Sequence[str] = ()) -> Dict[str, str]:
    """Key-value header fields (NRRD, MetaImage, .seg.nrrd): who made the masks and, for a label
    map of several prompts, which prompt each label value is."""
    fields = {}
    if model is not None:
        fields = {"VoxTell_Model": model.name, "VoxTell_Version": model.version,
                  "VoxTell_Demo": "yes" if model.is_demo else "no"}
    fields.update({f"VoxTell_Label_{label}": prompt for label, prompt in enumerate(legend, start=1)})
    return fields


def short_description(fields: Dict[str, str], limit: int = 80) -> str:
    """One line of at most ``limit`` bytes (NIfTI's ``descrip``) naming the model of ``fields``."""
    if "VoxTell_Model" not in fields:
        return ""
    model = "DEMO model, not for clinical use" if fields["VoxTell_Demo"] == "yes" else fields["VoxTell_Model"]
    return f"VoxTell {fields['VoxTell_Version']}: {model}".encode("utf-8")[:limit].decode("utf-8", "ignore")


def matching_suffix(path: str | os.PathLike, suffixes: Sequence[str]) -> Optional[str]:
    """The first of ``suffixes`` that the file name ends with (case-insensitive), else None."""
    name = str(path).lower()
    return next((suffix for suffix in suffixes if name.endswith(suffix)), None)


def label_map(masks: np.ndarray) -> np.ndarray:
    """(N, K, J, I) binary masks -> one KJI array: the mask itself for N == 1, else label i + 1
    for prompt i, later prompts winning overlaps; uint16 from 255 prompts on."""
    masks = np.asarray(masks)
    if masks.ndim != 4 or masks.shape[0] == 0:
        raise ValueError(f"expected masks shaped (N, K, J, I) with N >= 1, got {masks.shape}")
    if masks.shape[0] == 1:
        return (masks[0] > 0).astype(np.uint8)
    labels = np.zeros(masks.shape[1:], dtype=np.uint8 if masks.shape[0] < 255 else np.uint16)
    for label, mask in enumerate(masks, start=1):
        labels[mask > 0] = label
    return labels


class LabelMapWriter:
    """A format that stores one label map per file (the release's layout)."""

    name = ""
    suffix = ""
    suffixes: Tuple[str, ...] = ()  # every extension it writes (``suffix`` first)
    label_map = True

    def check_input(self, volume: Volume) -> None:
        """Any input volume can be written as a label map."""

    def write(self, masks: np.ndarray, segments: Sequence[SegmentInfo], reference: Volume, path: Path,
              model: ModelInfo) -> None:
        legend = [segment.prompt for segment in segments] if len(segments) > 1 else []
        self.write_labels(label_map(masks), reference, path, header_fields(model, legend))

    def write_labels(self, labels: np.ndarray, reference: Volume, path: str | os.PathLike,
                     fields: Optional[Dict[str, str]] = None) -> None:
        """Write a KJI label map on ``reference``'s grid, atomically, with its dtype and the
        ``header_fields`` (where the format has room for them)."""
        if labels.shape != reference.array.shape:
            raise ValueError(f"mask shape {labels.shape} differs from the reference's {reference.array.shape}")
        # The temporary file keeps the real extension: the libraries pick the format from it.
        suffix = matching_suffix(path, self.suffixes) or self.suffix
        atomic_write(path, lambda temporary: self.save(labels, reference, temporary, fields or {}), suffix)

    def save(self, labels: np.ndarray, reference: Volume, filename: str, fields: Dict[str, str]) -> None:
        raise NotImplementedError


def check_dimensions(path: Path, ndim: int, components: int) -> None:
    if ndim < 3:
        raise InputError(
            f"{path} is a {ndim}D image; VoxTell segments 3D volumes. Pass a 3D image (CT, MR, PET); "
            "for DICOM, pass the folder that holds the whole series."
        )
    if ndim > 3:
        raise InputError(
            f"{path} is a {ndim}D image (time series or several volumes in one file). "
            "Extract one 3D volume and pass that."
        )
    if components != 1:
        raise InputError(
            f"{path} has {components} values per voxel (color or vector image). "
            "Convert it to a single-channel (scalar) 3D volume."
        )


def check_shape(source: str | os.PathLike, shape: Sequence[int]) -> None:
    """A 3D volume with at least 2 voxels along every axis (a header's or an array's shape)."""
    if min(shape) < 2:
        raise InputError(
            f"{source} has a single slice (shape {tuple(int(n) for n in shape)}); VoxTell needs a 3D volume with "
            "at least 2 voxels along every axis. Pass the whole volume (for DICOM, the folder of the series)."
        )


def unreadable(path: Path, error: Exception) -> InputError:
    reason = str(error).strip().splitlines()
    detail = f" ({reason[-1].strip()})" if reason else ""
    return InputError(f"Could not read {path} as an image{detail}. Pass a 3D image: {SUPPORTED}.")
