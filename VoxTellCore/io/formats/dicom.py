"""DICOM series folders: list the series, pick one, read it with its source references.

Which series a folder means: the one ``series_uid`` names; else the folder's only series;
else its only CT, MR or PET series that is not a localizer (scout). Those are the volumes
VoxTell was trained on; the other series a study folder holds (localizers, SEG, RTSTRUCT,
SR, dose reports, screenshots) are not volumes to segment, so they are not counted. Two or
more such volumes (e.g. PET/CT, several MR sequences) are ambiguous: the error lists every
series and asks for ``--series UID``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import SimpleITK as sitk

from VoxTellCore.errors import InputError
from VoxTellCore.io.formats.base import SUPPORTED, check_dimensions, unreadable
from VoxTellCore.io.volume import DicomSource, Volume, volume_from_sitk

VOLUME_MODALITIES = ("CT", "MR", "PT")
TAGS = {
    "modality": "0008|0060",
    "description": "0008|103e",
    "image_type": "0008|0008",
    "study_uid": "0020|000d",
    "frame_of_reference_uid": "0020|0052",
    "sop_class_uid": "0008|0016",
    "sop_instance_uid": "0008|0018",
}


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series of a folder; ``files`` sorted along the slice normal (GDCM's order)."""

    uid: str
    modality: str
    description: str
    files: Tuple[str, ...]
    is_localizer: bool = False
    instances: Optional[int] = None  # a series listed by a PACS, whose files are not here

    @property
    def number_of_files(self) -> int:
        return len(self.files) if self.instances is None else self.instances

    def line(self) -> str:
        description = f'"{self.description}"' if self.description else "(no description)"
        return f"{self.uid}  {self.modality or '?'}  {description}  {self.number_of_files} file(s)"


def list_dicom_series(folder: str | Path) -> List[SeriesInfo]:
    """Every DICOM series in ``folder`` (not its subfolders), in GDCM's order."""
    folder = Path(folder)
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns on stderr for non-DICOM files
    try:
        series = []
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
            files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
            tags = _header(files[0]) if files else {}
            series.append(SeriesInfo(
                uid=uid, modality=tags.get("modality", ""), description=tags.get("description", ""), files=files,
                is_localizer="LOCALIZER" in tags.get("image_type", "").upper(),
            ))
        return series
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)


def choose_series(folder: Path | str, series: Sequence[SeriesInfo], series_uid: Optional[str]) -> SeriesInfo:
    """The series ``series_uid`` names, else the only one, else the only CT/MR/PET volume.
    ``folder`` may also be a text such as "Study 1.2.3 on http://pacs/dicom-web"."""
    place = f"Folder {folder}" if isinstance(folder, Path) else folder
    if not series:
        raise InputError(
            f"No DICOM series found in folder {folder}. Pass a folder that holds the DICOM files "
            f"of a series, or an image file: {SUPPORTED}."
        )
    listing = "\n".join("  " + item.line() for item in series)
    if series_uid is not None:
        for item in series:
            if item.uid == series_uid.strip():
                return item
        raise InputError(f"{place} has no DICOM series with UID {series_uid}. Its series:\n{listing}\n"
                         "Pass one of these UIDs with --series.")
    if len(series) == 1:
        return series[0]
    volumes = [item for item in series if item.modality.upper() in VOLUME_MODALITIES and not item.is_localizer]
    if len(volumes) == 1:
        return volumes[0]
    found = f"{len(volumes)} CT/MR/PET volume series" if volumes else "no CT/MR/PET volume series"
    raise InputError(
        f"{place} holds {len(series)} DICOM series ({found}); which one to segment is ambiguous:\n"
        f"{listing}\nPass the one to segment with --series UID (read_volume(folder, series_uid=...) in Python)."
    )


class DicomSeriesReader:
    name = "dicom"
    suffixes = ()

    def can_read(self, path: Path) -> bool:
        return path.is_dir()

    def read(self, path: Path, series_uid: Optional[str] = None) -> Volume:
        chosen = choose_series(path, list_dicom_series(path), series_uid)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(list(chosen.files))
        reader.MetaDataDictionaryArrayUpdateOn()
        try:
            image = reader.Execute()
        except RuntimeError as error:
            raise unreadable(path, error) from error
        check_dimensions(path, image.GetDimension(), image.GetNumberOfComponentsPerPixel())

        def tag(index: int, name: str) -> str:
            key = TAGS[name]
            return reader.GetMetaData(index, key).strip() if reader.HasMetaDataKey(index, key) else ""

        count = len(chosen.files)
        source = DicomSource(
            study_uid=tag(0, "study_uid"),
            series_uid=chosen.uid,
            frame_of_reference_uid=tag(0, "frame_of_reference_uid"),
            modality=chosen.modality,
            files=tuple(chosen.files),
            sop_class_uids=tuple(tag(k, "sop_class_uid") for k in range(count)),
            sop_instance_uids=tuple(tag(k, "sop_instance_uid") for k in range(count)),
        )
        volume = volume_from_sitk(image, source=str(path))
        volume.dicom = source
        return volume


def _header(filename: str) -> dict:
    reader = sitk.ImageFileReader()
    reader.SetFileName(filename)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return {}
    return {name: reader.GetMetaData(key).strip() for name, key in TAGS.items() if reader.HasMetaDataKey(key)}


READER = DicomSeriesReader()
