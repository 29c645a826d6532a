"""A 3D scalar volume (KJI array + IJK->RAS matrix) and the release's network orientation.

The released VoxTell reads NIfTI files with nnU-Net's ``NibabelIOWithReorient``: nibabel's
``io_orientation`` picks the closest RAS axes (flips and permutations only, never
resampling), the (i, j, k) data is reoriented, then transposed to (S, A, R). ``Volume``
stores the array in KJI order (SimpleITK / Slicer order), which is the (i, j, k) array
transposed, so both directions are a transpose plus nibabel's ``apply_orientation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import SimpleITK as sitk

# nibabel is imported where the orientation is computed: Slicer's Python (which ships numpy and
# SimpleITK, not nibabel) builds Volumes for the module's self-test before VoxTell's packages exist.

# SimpleITK (like DICOM and ITK) works in LPS; Slicer, nibabel and the release in RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class DicomSource:
    """Where a volume read from a DICOM series came from (what a DICOM SEG must reference).
    The per-instance tuples hold one entry per K slice, in K order."""

    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    modality: str
    files: Tuple[str, ...]
    sop_class_uids: Tuple[str, ...]
    sop_instance_uids: Tuple[str, ...]


@dataclass
class Volume:
    """A scalar volume: ``array`` in KJI order (float32) and its 4x4 IJK->RAS matrix;
    ``dicom`` for a volume read from a DICOM series."""

    array: np.ndarray
    ijk_to_ras: np.ndarray
    source: Optional[str] = None
    dicom: Optional[DicomSource] = None

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along i, j, k."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def network_shape(self) -> tuple[int, int, int]:
        """Shape of ``to_network()``: (S, A, R)."""
        return network_shape(self.array.shape, self.ijk_to_ras)

    @property
    def network_to_ras(self) -> np.ndarray:
        """4x4 matrix mapping network-array indices (axis0, axis1, axis2) to RAS mm."""
        from nibabel.orientations import inv_ornt_aff, io_orientation

        ijk_shape = self.array.shape[::-1]
        reoriented = self.ijk_to_ras @ inv_ornt_aff(io_orientation(self.ijk_to_ras), ijk_shape)
        # The network axes are the reoriented (r, a, s) axes in reverse order.
        return reoriented @ np.eye(4)[[2, 1, 0, 3]]

    def to_network(self) -> np.ndarray:
        """The release's network array: (S, A, R), float32, C-contiguous. It shares memory
        with ``array`` when no reorientation is needed (a float32 RAS volume)."""
        return kji_to_network(self.array, self.ijk_to_ras).astype(np.float32, copy=False)

    def from_network(self, network_array: np.ndarray) -> np.ndarray:
        """Map an array shaped like ``to_network()`` (optionally with leading axes, e.g.
        (N, S, A, R) masks) back onto this volume's KJI grid; the dtype is kept and the
        result may share memory with the input."""
        if tuple(network_array.shape[-3:]) != self.network_shape:
            raise ValueError(
                f"expected an array ending in the network shape {self.network_shape}, "
                f"got {network_array.shape}"
            )
        return network_to_kji(network_array, self.ijk_to_ras)


def network_shape(kji_shape: tuple[int, ...], ijk_to_ras: np.ndarray) -> tuple[int, int, int]:
    """(S, A, R) shape that a KJI array of ``kji_shape`` takes in the network orientation."""
    from nibabel.orientations import io_orientation

    ras_shape = [0, 0, 0]
    for ijk_axis, (ras_axis, _) in enumerate(io_orientation(ijk_to_ras)):
        ras_shape[int(ras_axis)] = kji_shape[2 - ijk_axis]
    return tuple(ras_shape[::-1])


def kji_to_network(kji: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    """KJI array (optionally with leading axes) -> (..., S, A, R), C-contiguous.

    ``.T`` reverses every axis: KJI becomes (i, j, k) with any leading axes trailing,
    where ``apply_orientation`` leaves them alone; the second ``.T`` restores the order.
    """
    from nibabel.orientations import apply_orientation, io_orientation

    return np.ascontiguousarray(apply_orientation(kji.T, io_orientation(ijk_to_ras)).T)


def network_to_kji(network: np.ndarray, ijk_to_ras: np.ndarray) -> np.ndarray:
    """Inverse of ``kji_to_network``: (..., S, A, R) -> (..., K, J, I), C-contiguous."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

    back_to_ijk = ornt_transform(axcodes2ornt("RAS"), io_orientation(ijk_to_ras))
    return np.ascontiguousarray(apply_orientation(network.T, back_to_ijk).T)


def ijk_to_ras_from_sitk(image: sitk.Image) -> np.ndarray:
    """4x4 IJK->RAS matrix from a 3D SimpleITK image's origin, spacing and direction."""
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    ijk_to_lps[:3, 3] = image.GetOrigin()
    return LPS_TO_RAS @ ijk_to_lps


def set_sitk_geometry(image: sitk.Image, ijk_to_ras: np.ndarray) -> None:
    """Give a 3D SimpleITK image the origin, spacing and direction of an IJK->RAS matrix."""
    ijk_to_lps = LPS_TO_RAS @ np.asarray(ijk_to_ras, dtype=np.float64)
    columns = ijk_to_lps[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(d) for d in (columns / spacing).ravel()])
    image.SetOrigin([float(o) for o in ijk_to_lps[:3, 3]])


def volume_from_sitk(image: sitk.Image, source: str | None = None) -> Volume:
    """A Volume from a 3D scalar SimpleITK image (no validation; see ``read_volume``)."""
    array = sitk.GetArrayFromImage(image).astype(np.float32, copy=False)
    return Volume(array=array, ijk_to_ras=ijk_to_ras_from_sitk(image), source=source)


def volume_to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image holding the volume's array on its geometry."""
    image = sitk.GetImageFromArray(volume.array)
    set_sitk_geometry(image, volume.ijk_to_ras)
    return image
