"""Image input/output: ``Volume`` (KJI array + IJK->RAS), reading, atomic mask writing and
the release's network orientation."""

from VoxTellCore.io.reading import IMAGE_SUFFIXES, NIFTI_SUFFIXES, is_image_file, read_volume
from VoxTellCore.io.volume import (
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
    "Volume",
    "ijk_to_ras_from_sitk",
    "is_image_file",
    "kji_to_network",
    "label_dtype",
    "mask_suffix",
    "network_shape",
    "network_to_kji",
    "read_volume",
    "set_sitk_geometry",
    "volume_from_sitk",
    "volume_to_sitk",
    "write_mask",
]
