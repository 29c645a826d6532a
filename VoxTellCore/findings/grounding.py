"""Grounding a report: one mask per positive finding, with its size and place."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from VoxTellCore.findings.finding import Finding
from VoxTellCore.io import Volume


@dataclass
class MaskStatistics:
    voxels: int
    volume_ml: float
    centroid_ras: list[float] | None  # mm, RAS (Slicer's world coordinates)
    slice_range: list[int] | None  # first and last slice (K index of the input volume) the mask touches


def mask_statistics(mask: np.ndarray, volume: Volume) -> MaskStatistics:
    """Size and position of a (K, J, I) mask on ``volume``'s grid."""
    voxels = int(np.count_nonzero(mask))
    voxel_ml = abs(np.linalg.det(volume.ijk_to_ras[:3, :3])) / 1000.0
    if voxels == 0:
        return MaskStatistics(0, 0.0, None, None)
    k, j, i = np.nonzero(mask)
    centre = volume.ijk_to_ras @ np.array([i.mean(), j.mean(), k.mean(), 1.0])
    return MaskStatistics(voxels, round(voxels * voxel_ml, 3), [round(float(c), 2) for c in centre[:3]],
                          [int(k.min()), int(k.max())])


@dataclass
class GroundedFinding:
    finding: Finding
    statistics: MaskStatistics
    mask_file: str
    picture: str

    def to_json(self) -> dict:
        return {**asdict(self.finding), **asdict(self.statistics), "mask_file": self.mask_file, "picture": self.picture}
