"""Read a 3D image file or DICOM series folder into a validated ``Volume``.

NIfTI goes through nibabel exactly as the release reads it (same affine, same scaling
arithmetic), so the network array is bit-identical to the release's. NRRD, MetaImage and
DICOM go through SimpleITK.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel
import numpy as np
import SimpleITK as sitk
from nibabel.funcs import squeeze_image
from nibabel.orientations import io_orientation

from VoxTellCore.errors import InputError
from VoxTellCore.io.volume import Volume, network_to_kji, volume_from_sitk

NIFTI_SUFFIXES = (".nii.gz", ".nii")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + (".nrrd", ".nhdr", ".mha", ".mhd")
SUPPORTED = "NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) or a folder with one DICOM series"


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file name with one of the supported image extensions."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a 3D scalar image (NIfTI, NRRD, MetaImage file or DICOM series folder).

    Raises InputError for a missing or unreadable file and for images VoxTell cannot
    segment: 2D, single-slice, 4D or multi-component images and NaN/inf voxels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"Image not found: {path}. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        volume = volume_from_sitk(_read_dicom_series(path), source=str(path))
    elif str(path).lower().endswith(NIFTI_SUFFIXES):
        volume = _read_nifti(path)
    else:
        volume = volume_from_sitk(_read_with_sitk(path), source=str(path))
    _check_voxels(volume)
    return volume


def _read_nifti(path: Path) -> Volume:
    try:
        image = nibabel.load(path)
        if image.ndim > 3:
            image = squeeze_image(image)  # drops trailing length-1 axes, e.g. (X, Y, Z, 1)
        _check_dimensions(path, image.ndim, components=1)
        # The release's reader: reorient to the closest RAS axes, get_fdata, transpose.
        affine = image.affine
        reoriented = image.as_reoriented(io_orientation(affine))
        network = reoriented.get_fdata().T.astype(np.float32)
    except InputError:
        raise
    except Exception as error:
        raise _unreadable(path, error) from error
    return Volume(array=network_to_kji(network, affine), ijk_to_ras=np.array(affine, dtype=np.float64),
                  source=str(path))


def _read_with_sitk(path: Path) -> sitk.Image:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise _unreadable(path, error) from error
    _check_dimensions(path, image.GetDimension(), image.GetNumberOfComponentsPerPixel())
    return image


def _read_dicom_series(folder: Path) -> sitk.Image:
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns on stderr for non-DICOM files
    try:
        series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)
    if not series_ids:
        raise InputError(
            f"No DICOM series found in folder {folder}. Pass a folder that holds the DICOM files "
            f"of one series, or an image file ({', '.join(IMAGE_SUFFIXES)})."
        )
    if len(series_ids) > 1:
        raise InputError(
            f"Folder {folder} holds {len(series_ids)} DICOM series: {', '.join(series_ids)}. "
            "Pass a folder that holds exactly one series (move each series into its own folder)."
        )
    reader = sitk.ImageSeriesReader()
    # GDCM returns the files sorted by slice position along the slice normal.
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_ids[0]))
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise _unreadable(folder, error) from error
    _check_dimensions(folder, image.GetDimension(), image.GetNumberOfComponentsPerPixel())
    return image


def _check_dimensions(path: Path, ndim: int, components: int) -> None:
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


def _check_voxels(volume: Volume) -> None:
    shape = volume.array.shape
    if min(shape) < 2:
        raise InputError(
            f"{volume.source} has a single slice (KJI shape {shape}); VoxTell needs a 3D volume with "
            "at least 2 voxels along every axis. Pass the whole volume (for DICOM, the folder of the series)."
        )
    bad = np.count_nonzero(~np.isfinite(volume.array))
    if bad:
        raise InputError(
            f"{volume.source} contains {bad} NaN or infinite voxel value(s). "
            "Replace them with a finite value (e.g. the background intensity) and try again."
        )


def _unreadable(path: Path, error: Exception) -> InputError:
    reason = str(error).strip().splitlines()
    detail = f" ({reason[-1].strip()})" if reason else ""
    return InputError(f"Could not read {path} as an image{detail}. Pass a 3D image: {SUPPORTED}.")
