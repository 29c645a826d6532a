"""Synthetic thoracoabdominal CT phantoms with exact masks, for training and testing VoxTell.

The anatomy is built in patient/world (RAS mm) coordinates and sampled onto a voxel grid of
random orientation and spacing through ijk_to_ras, so a phantom stored as LPS, RAS or any
axis permutation shows its liver on the patient's right (+x in RAS) all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.io.volume import Volume

from .anatomy import Body, build_anatomy
from .grid import Grid, check_axcodes, random_axcodes
from .intensity import render_ct
from .lesions import add_findings
from .labels import ANATOMY, SIDES, concept_masks
from .shapes import PatientSpace, Waves, rotation_matrix


@dataclass
class Phantom:
    image: np.ndarray  # (K, J, I) float32 Hounsfield units
    ijk_to_ras: np.ndarray  # (4, 4)
    labels: dict[str, np.ndarray]  # structure or finding prompt -> (K, J, I) bool
    findings: list[dict]  # one dict per nodule / effusion (see README)
    label_map: np.ndarray  # (K, J, I) uint8 partition, values of labels.PARTITION
    seed: int
    contrast: bool

    @property
    def axcodes(self) -> str:
        return "".join(nib.aff2axcodes(self.ijk_to_ras))

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm."""
        return tuple(float(s) for s in np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0))

    def to_volume(self) -> Volume:
        """The image as VoxTellCore's Volume, e.g. for VoxTellPredictor.predict_volume."""
        return Volume(self.image, self.ijk_to_ras.copy(), source=f"phantom seed {self.seed}")


def generate_phantom(
    seed: int,
    shape: tuple[int, int, int] | None = None,
    orientation: str | None = None,
    n_nodules: int | None = None,
    effusions: tuple[str, ...] | None = None,
    contrast: bool | None = None,
    noise_hu: float | None = None,
    nodule_diameter_mm: tuple[float, float] = (12.0, 30.0),
) -> Phantom:
    """One random phantom; every argument left as None is drawn from the seed.

    shape: array (K, J, I) size; None draws 2.4-3.6 mm in-plane and 2-5 mm slice spacing over a
    ~32 cm field of view (about 64-128 voxels per axis). orientation: nibabel axis codes such as
    "LPS", "RAS" or "PIR". n_nodules: 0-5, at most one per lobe. effusions: sides from
    ("left", "right"). nodule_diameter_mm: 12-30 mm by default, the upper half of the nodule range:
    at these 2.4-5 mm spacings a smaller nodule covers a few voxels, which no low-resolution
    model segments reliably (a nodule is never drawn under 2.4 voxels across).
    """
    rng = np.random.default_rng(seed)
    body = Body.random(rng)
    drawn_axcodes = random_axcodes(rng)  # always drawn: a given orientation keeps the same anatomy
    axcodes = check_axcodes(orientation) if orientation else drawn_axcodes
    grid, space = _place_patient(rng, body, axcodes, shape)
    # Every choice is drawn even when given, so that options change only what they name.
    drawn_nodules = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.4, 0.2, 0.15]))
    draw = rng.random()
    drawn_effusions = () if draw < 0.55 else ("left",) if draw < 0.7 else ("right",) if draw < 0.9 else SIDES
    drawn_contrast, drawn_noise = bool(rng.random() < 0.7), float(rng.uniform(10, 25))
    n_nodules = drawn_nodules if n_nodules is None else n_nodules
    effusions = drawn_effusions if effusions is None else tuple(effusions)
    contrast = drawn_contrast if contrast is None else contrast
    noise_hu = drawn_noise if noise_hu is None else noise_hu
    unknown = set(effusions) - set(SIDES)
    if unknown:
        raise InputError(f"effusion sides {sorted(unknown)} are not 'left' or 'right'; pass a tuple of those")
    if not 0 <= n_nodules <= 5:
        raise InputError(f"n_nodules={n_nodules}: a phantom has 0 to 5 nodules (at most one per lobe); pass 0-5")

    anatomy = build_anatomy(space, body, rng)
    add_findings(space, anatomy, rng, n_nodules, effusions, nodule_diameter_mm)
    image = render_ct(anatomy.tissue, rng, contrast, noise_hu,
                      blur_voxels=rng.uniform(0.4, 0.8), noise_correlation_voxels=rng.uniform(0.0, 0.7))
    present = set(ANATOMY) | {f["prompt"] for f in anatomy.findings} | {f["concept"] for f in anatomy.findings}
    labels = {name: mask for name, mask in concept_masks(anatomy.label_map).items() if name in present}
    for finding in anatomy.findings:
        finding["center_ras"] = _centroid_ras(labels[finding["prompt"]], grid.ijk_to_ras)
    return Phantom(image, grid.ijk_to_ras, labels, anatomy.findings, anatomy.label_map, seed, contrast)


def _place_patient(rng: np.random.Generator, body: Body, axcodes: str,
                   shape: tuple[int, int, int] | None) -> tuple[Grid, PatientSpace]:
    """A field of view around the trunk, oriented as asked, with the patient slightly rotated."""
    fov_xyz = np.array([2 * body.half_width + rng.uniform(15, 50),
                        2 * body.half_depth + rng.uniform(15, 50), rng.uniform(290, 340)])
    fov_center_patient = np.array([0.0, 0.0, rng.uniform(-25, 0)])
    world_axis = ["RLAPSI".index(code) // 2 for code in axcodes]  # voxel axis i/j/k -> x/y/z
    spacing_xyz = np.array([rng.uniform(2.4, 3.6)] * 2 + [rng.uniform(2.0, 5.0)])
    if shape is None:
        size_ijk = np.clip(np.round(fov_xyz[world_axis] / spacing_xyz[world_axis]), 48, 128).astype(int)
    else:
        size_ijk = np.array(shape[::-1], dtype=int)
    spacing_ijk = fov_xyz[world_axis] / size_ijk
    rotation = rotation_matrix(rng.uniform(-3, 3, 3) * [1, 1, 2])
    body_center_ras = rng.uniform(-60, 60, 3)
    fov_center_ras = body_center_ras + rotation @ fov_center_patient
    grid = Grid.around(fov_center_ras, axcodes, spacing_ijk, tuple(int(n) for n in size_ijk[::-1]))
    warp = Waves.random(rng, 3, rng.uniform(2, 6), (150, 350), vector=True)
    return grid, PatientSpace(grid, body_center_ras, rotation, warp)


def _centroid_ras(mask: np.ndarray, ijk_to_ras: np.ndarray) -> list[float]:
    kji = np.argwhere(mask).mean(axis=0)
    return [round(float(v), 1) for v in ijk_to_ras[:3, :3] @ kji[::-1] + ijk_to_ras[:3, 3]]
