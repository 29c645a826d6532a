"""Images, geometries and DICOM series that the io, preprocessing and CLI tests make themselves."""

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.spatial.transform import Rotation


def make_affine(kind: str, seed: int = 0) -> np.ndarray:
    """IJK->RAS matrices of the kinds that trip up reorientation."""
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:3, 3] = rng.uniform(-150, 150, 3)
    spacing = np.array([0.7, 1.3, 2.5])
    if kind == "ras":
        axes = np.eye(3)
    elif kind == "lps":
        axes = np.diag([-1.0, -1.0, 1.0])
    elif kind == "permuted":  # i -> S, j -> L, k -> P: a sagittal-like acquisition
        axes = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    elif kind == "oblique":  # 20-30 degrees about two axes, on top of LPS
        angles = rng.uniform(20, 30, 2) * rng.choice([-1, 1], 2)
        rotation = Rotation.from_euler("xz", angles, degrees=True).as_matrix()
        axes = rotation @ np.diag([-1.0, -1.0, 1.0])
    elif kind == "random":
        rotation = Rotation.random(random_state=seed).as_matrix()
        axes = rotation[:, rng.permutation(3)] * rng.choice([-1, 1], 3)
        spacing = rng.uniform(0.4, 4.0, 3)
    else:
        raise ValueError(kind)
    affine[:3, :3] = axes * spacing
    return affine


def random_image(shape=(7, 5, 6), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100, 40, size=shape).astype(np.float32)


def write_dicom_series(folder: Path, array_kji: np.ndarray, series_uid: str, spacing=(0.8, 0.8, 2.0)) -> None:
    """A minimal CT-like DICOM series, one file per slice; the file names are in shuffled
    order, so only sorting by slice position gets the volume right."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    order = np.random.default_rng(0).permutation(array_kji.shape[0])
    for rank, index in enumerate(order):
        slice_image = sitk.GetImageFromArray(array_kji[index : index + 1].astype(np.int16))
        position = (-100.0, -120.0, 40.0 + spacing[2] * index)
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0013": str(index + 1),
            "0020|0032": "\\".join(f"{p:.3f}" for p in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{spacing[1]:.3f}\\{spacing[0]:.3f}",
            "0018|0050": f"{spacing[2]:.3f}",
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        slice_image.SetSpacing((spacing[0], spacing[1], spacing[2]))
        slice_image.SetOrigin(position)
        writer.SetFileName(str(folder / f"slice_{series_uid[-3:]}_{rank:03d}.dcm"))
        writer.Execute(slice_image)
