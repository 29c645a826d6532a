"""Image input/output: ``Volume`` (KJI array + IJK->RAS, DICOM references), reading, atomic
mask writing, the format registry (``formats``) and the release's network orientation.

The names below are imported on first use (PEP 562): ``VoxTellCore.io.volume`` alone needs
only numpy and SimpleITK, which Slicer's Python ships, while the readers and writers need
nibabel, slicerio, highdicom... (the Slicer module's self-test builds Volumes without them).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "VoxTellCore.io.formats": ("MaskWriter", "ModelInfo", "SegmentInfo", "SeriesInfo", "list_dicom_series",
                               "register_reader", "register_writer", "segment_infos", "writer_for", "writer_names"),
    "VoxTellCore.io.reading": ("IMAGE_SUFFIXES", "NIFTI_SUFFIXES", "is_image_file", "read_volume"),
    "VoxTellCore.io.volume": ("DicomSource", "Volume", "ijk_to_ras_from_sitk", "kji_to_network", "network_shape",
                              "network_to_kji", "set_sitk_geometry", "volume_from_sitk", "volume_to_sitk"),
    "VoxTellCore.io.writing": ("MASK_SUFFIXES", "label_dtype", "mask_suffix", "write_mask"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value
