"""Image input/output: ``Volume`` (KJI array + IJK->RAS, DICOM references), reading, atomic
mask writing, the format registry (``formats``) and the release's network orientation."""

from VoxTellCore.io.formats import (
    MaskWriter,
    ModelInfo,
    SegmentInfo,
    SeriesInfo,
    list_dicom_series,
    register_reader,
    register_writer,
    segment_infos,
    writer_for,
    writer_names,
)
from VoxTellCore.io.reading import IMAGE_SUFFIXES, NIFTI_SUFFIXES, check_image, is_image_file, read_volume
from VoxTellCore.io.volume import (
    DicomSource,
    Volume,
    ijk_to_ras_from_sitk,
    kji_to_network,
    network_shape,
    network_to_kji,
    set_sitk_geometry,
    volume_from_sitk,
    volume_to_sitk,
)
from VoxTellCore.io.writing import MASK_SUFFIXES, label_dtype, mask_suffix, write_mask

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "NIFTI_SUFFIXES",
    "DicomSource",
    "check_image",
    "MaskWriter",
    "ModelInfo",
    "SegmentInfo",
    "SeriesInfo",
    "Volume",
    "ijk_to_ras_from_sitk",
    "is_image_file",
    "kji_to_network",
    "label_dtype",
    "list_dicom_series",
    "mask_suffix",
    "network_shape",
    "network_to_kji",
    "read_volume",
    "register_reader",
    "register_writer",
    "segment_infos",
    "set_sitk_geometry",
    "volume_from_sitk",
    "volume_to_sitk",
    "write_mask",
    "writer_for",
    "writer_names",
]
