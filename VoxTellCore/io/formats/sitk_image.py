"""Images that SimpleITK reads and writes (the NRRD and MetaImage formats build on this)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from VoxTellCore.io.formats.base import LabelMapWriter, check_dimensions, matching_suffix, unreadable
from VoxTellCore.io.volume import Volume, set_sitk_geometry, volume_from_sitk


class SitkReader:
    """Reads files with the given extensions; with none, any file (the last resort)."""

    def __init__(self, name: str, suffixes: Tuple[str, ...] = ()):
        self.name = name
        self.suffixes = suffixes

    def can_read(self, path: Path) -> bool:
        return path.is_file() and (not self.suffixes or matching_suffix(path, self.suffixes) is not None)

    def read(self, path: Path, series_uid: Optional[str] = None) -> Volume:
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as error:
            raise unreadable(path, error) from error
        check_dimensions(path, image.GetDimension(), image.GetNumberOfComponentsPerPixel())
        return volume_from_sitk(image, source=str(path))

    def read_shape(self, path: Path, series_uid: Optional[str] = None) -> Tuple[int, ...]:
        header = read_header(path)
        check_dimensions(path, header.GetDimension(), header.GetNumberOfComponents())
        return tuple(header.GetSize())


def read_header(path: Path) -> sitk.ImageFileReader:
    """A reader that has read ``path``'s header (size, dimension, channels, tags) only."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise unreadable(path, error) from error
    return reader


class SitkWriter(LabelMapWriter):
    def __init__(self, name: str, suffixes: Tuple[str, ...]):
        self.name = name
        self.suffix = suffixes[0]
        self.suffixes = suffixes

    def save(self, labels: np.ndarray, reference: Volume, filename: str, fields: Dict[str, str]) -> None:
        image = sitk.GetImageFromArray(labels)
        set_sitk_geometry(image, reference.ijk_to_ras)
        for key, value in fields.items():  # NRRD "key:=value" lines, MetaImage "key = value" lines
            image.SetMetaData(key, value)
        sitk.WriteImage(image, filename, useCompression=True)
