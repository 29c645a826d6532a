"""Voxel grids with random orientations and spacings, and their world (RAS mm) coordinates.

Orientations are axis codes in nibabel's convention: the letter of voxel axis i, j or k names the
patient direction that axis runs toward (RAS: i toward patient Right, j toward Anterior, k toward
Superior; LPS is DICOM's). RAS world coordinates: +x = patient right, +y = anterior, +z = superior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from VoxTellCore.errors import InputError

_AXIS = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def check_axcodes(axcodes: str) -> str:
    axcodes = axcodes.upper()
    if len(axcodes) != 3 or any(c not in _AXIS for c in axcodes) or \
            sorted(_AXIS[c][0] for c in axcodes) != [0, 1, 2]:
        raise InputError(f"orientation {axcodes!r} is not three axis codes covering R/L, A/P and "
                         "S/I once each; use e.g. 'RAS', 'LPS' or 'PIR'")
    return axcodes


def random_axcodes(rng: np.random.Generator) -> str:
    """RAS or LPS half of the time, otherwise any permutation with any flips."""
    draw = rng.random()
    if draw < 0.25:
        return "LPS"
    if draw < 0.5:
        return "RAS"
    letters = [pair[rng.integers(2)] for pair in ("RL", "AP", "SI")]
    return "".join(letters[i] for i in rng.permutation(3))


@dataclass(frozen=True)
class Grid:
    """A KJI voxel grid placed in RAS world space by ijk_to_ras (flips/permutations only)."""

    shape: tuple[int, int, int]  # array (K, J, I)
    ijk_to_ras: np.ndarray

    @classmethod
    def around(cls, center_ras: np.ndarray, axcodes: str, spacing_ijk: np.ndarray,
               shape_kji: tuple[int, int, int]) -> "Grid":
        """The grid of the given orientation, spacing and shape, centred on center_ras."""
        axcodes = check_axcodes(axcodes)
        affine = np.eye(4)
        for voxel_axis, code in enumerate(axcodes):
            world_axis, sign = _AXIS[code]
            affine[:3, voxel_axis] = 0.0
            affine[world_axis, voxel_axis] = sign * spacing_ijk[voxel_axis]
        middle_ijk = (np.array(shape_kji[::-1], dtype=float) - 1) / 2
        affine[:3, 3] = center_ras - affine[:3, :3] @ middle_ijk
        return cls(tuple(int(n) for n in shape_kji), affine)

    @property
    def spacing_ijk(self) -> np.ndarray:
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    def voxel_slices(self, corners_ras: np.ndarray, margin_voxels: int = 1) -> tuple[slice, ...]:
        """KJI slices of the voxels whose centres may lie in the hull of the RAS points (N, 3)."""
        ras_to_ijk = np.linalg.inv(self.ijk_to_ras)
        ijk = corners_ras @ ras_to_ijk[:3, :3].T + ras_to_ijk[:3, 3]
        low = np.floor(ijk.min(axis=0)).astype(int) - margin_voxels
        high = np.ceil(ijk.max(axis=0)).astype(int) + 1 + margin_voxels
        size_ijk = self.shape[::-1]
        bounds = [slice(max(lo, 0), min(max(hi, 0), n)) for lo, hi, n in zip(low, high, size_ijk)]
        return tuple(bounds[::-1])
