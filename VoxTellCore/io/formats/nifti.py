"""NIfTI through nibabel, exactly as the release reads and writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import nibabel
import numpy as np
from nibabel.funcs import squeeze_image
from nibabel.orientations import io_orientation

from VoxTellCore.errors import InputError
from VoxTellCore.io.formats.base import LabelMapWriter, check_dimensions, matching_suffix, unreadable
from VoxTellCore.io.volume import Volume, network_to_kji

SUFFIXES = (".nii.gz", ".nii")


class NiftiReader:
    name = "nifti"
    suffixes = SUFFIXES

    def can_read(self, path: Path) -> bool:
        return path.is_file() and matching_suffix(path, self.suffixes) is not None

    def read(self, path: Path, series_uid: Optional[str] = None) -> Volume:
        try:
            image = nibabel.load(path)
        except Exception as error:
            raise unreadable(path, error) from error
        return volume_from_nifti(image, path)


def volume_from_nifti(image: nibabel.Nifti1Image, source: Path) -> Volume:
    """A Volume from a loaded NIfTI image (a file, or bytes a server received), as the release reads it."""
    try:
        if image.ndim > 3:
            image = squeeze_image(image)  # drops trailing length-1 axes, e.g. (X, Y, Z, 1)
        check_dimensions(source, image.ndim, components=1)
        # The release's reader: reorient to the closest RAS axes, get_fdata, transpose.
        affine = image.affine
        reoriented = image.as_reoriented(io_orientation(affine))
        network = reoriented.get_fdata().T.astype(np.float32)
    except InputError:
        raise
    except Exception as error:
        raise unreadable(source, error) from error
    return Volume(array=network_to_kji(network, affine), ijk_to_ras=np.array(affine, dtype=np.float64),
                  source=str(source))


class NiftiWriter(LabelMapWriter):
    name = "nifti"
    suffix = ".nii.gz"
    suffixes = SUFFIXES

    def save(self, labels: np.ndarray, reference: Volume, filename: str) -> None:
        # Like the release: a plain Nifti1Image on the affine (sform), (i, j, k) data order.
        affine = np.asarray(reference.ijk_to_ras, dtype=np.float64)
        nibabel.save(nibabel.Nifti1Image(labels.T, affine), filename)


READER = NiftiReader()
WRITER = NiftiWriter()
