"""Image readers and mask writers as a registry (as nnU-Net's ``reader_writer_registry``).

One module per format beside this file defines ``READER`` and/or ``WRITER`` (or ``WRITERS``,
variants of one format); adding a
format is one new module plus its name in ``FORMAT_MODULES``. Readers are asked in
registration order (the first whose ``can_read`` says yes reads the path); writers are
picked by name (``--format``) or by the input's type.

A writer (``MaskWriter``) has ``name``, ``suffix``, ``label_map``, ``check_input(volume)``
(raises InputError before inference, e.g. dicom-seg without a DICOM input) and
``write(masks, segments, reference, path, model)``: masks (N, K, J, I) on the reference's
grid, written atomically. Label-map formats (``label_map`` True) write one binary mask for
N == 1, else one label map (label i + 1 = prompt i, later prompts win overlaps); the other
formats write every prompt as a segment of one file.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import List, Optional, Protocol, Sequence

import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.io.formats.base import ModelInfo, SegmentInfo, matching_suffix
from VoxTellCore.io.formats.dicom import SeriesInfo, list_dicom_series
from VoxTellCore.io.volume import Volume
from VoxTellCore.terminology import segment_info

# Readers are asked in this order; "sitk_fallback" last reads any other file SimpleITK knows.
FORMAT_MODULES = ("nifti", "nrrd", "mha", "seg_nrrd", "dicom", "dicom_seg", "rtstruct")
# The writer for an input without --format, by the input's extension; anything else -> nifti.
WRITER_BY_INPUT_SUFFIX = {".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "mha", ".mhd": "mha"}

__all__ = ["FORMAT_MODULES", "ImageReader", "MaskWriter", "ModelInfo", "SegmentInfo", "SeriesInfo",
           "image_suffixes", "list_dicom_series", "reader_for", "register_reader", "register_writer",
           "segment_infos", "writer_for", "writer_names", "writers"]


class ImageReader(Protocol):
    name: str
    suffixes: Sequence[str]  # file extensions it reads ((): folders, or any file for a fallback)

    def can_read(self, path: Path) -> bool: ...

    def read(self, path: Path, series_uid: Optional[str] = None) -> Volume: ...


class MaskWriter(Protocol):
    name: str
    suffix: str
    label_map: bool

    def check_input(self, volume: Volume) -> None: ...

    def write(self, masks: np.ndarray, segments: Sequence[SegmentInfo], reference: Volume, path: Path,
              model: ModelInfo) -> None: ...


_READERS: List[ImageReader] = []
_WRITERS: dict = {}


def register_reader(reader: ImageReader) -> None:
    """Add a reader; it is asked after the ones registered before it."""
    _READERS.append(reader)


def register_writer(writer: MaskWriter) -> None:
    """Add a writer under ``writer.name`` (replacing one of the same name)."""
    _WRITERS[writer.name] = writer


def writer_names() -> List[str]:
    return list(_WRITERS)


def writers() -> List[MaskWriter]:
    return list(_WRITERS.values())


def image_suffixes() -> tuple:
    """Every file extension a registered reader reads."""
    return tuple(dict.fromkeys(suffix for reader in _READERS for suffix in reader.suffixes))


def reader_for(path: str | os.PathLike) -> Optional[ImageReader]:
    """The first registered reader that reads ``path`` (an existing file or folder), else None."""
    path = Path(path)
    return next((reader for reader in _READERS if reader.can_read(path)), None)


def writer_for(format: Optional[str], image_path: Optional[str | os.PathLike] = None) -> MaskWriter:
    """The writer named ``format``; without one, the input's own type (NRRD in -> NRRD out,
    MHA/MHD -> MHA, NIfTI, DICOM and anything else -> NIfTI, as the release)."""
    if format is None:
        suffix = matching_suffix(image_path or "", tuple(WRITER_BY_INPUT_SUFFIX))
        format = WRITER_BY_INPUT_SUFFIX.get(suffix or "", "nifti")
    writer = _WRITERS.get(format.strip().lower())
    if writer is None:
        raise InputError(f"Unknown output format {format!r}. Choose one of: {', '.join(writer_names())}.")
    return writer


def segment_infos(prompts: Sequence[str]) -> List[SegmentInfo]:
    """Name, colour and terminology of each prompt's segment, as the Slicer module gives them."""
    return [segment_info(prompt) for prompt in prompts]


def _register_builtin() -> None:
    from VoxTellCore.io.formats.sitk_image import SitkReader

    for name in FORMAT_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "READER"):
            register_reader(module.READER)
        for writer in getattr(module, "WRITERS", (module.WRITER,) if hasattr(module, "WRITER") else ()):
            register_writer(writer)
    register_reader(SitkReader("sitk_fallback"))


_register_builtin()
