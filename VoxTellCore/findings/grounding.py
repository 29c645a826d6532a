"""Grounding a report: one mask per positive finding, with its size, place and consistency flags.

A flag says where a mask contradicts its finding (the side, the size, the stated lobe or
organ). Flags are shown to the reader; the masks are never changed because of them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Mapping, Optional

import numpy as np

from VoxTellCore.findings.finding import Finding
from VoxTellCore.findings.measurements import MEASUREMENT
from VoxTellCore.io import Volume

#: Places a finding can name that a model may segment (longest first, so "right upper lobe" wins
#: over "right lung"); the containment check runs only for those in the model's embedding bank.
LOCATIONS = ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe",
             "right lung", "left lung", "right kidney", "left kidney", "liver", "spleen")
#: A mask centre this close to the body's midline (mm) counts as on neither side: midline
#: structures and a few millimetres of body asymmetry must not raise a side flag.
MIDLINE_MARGIN_MM = 10.0
#: The stated size is a longest diameter; the mask gives the equivalent-sphere diameter
#: (6 V / pi)^(1/3). For an ellipsoid with axes a >= b >= c that is (abc)^(1/3) <= a, and 0.5 a
#: for elongated shapes up to 4:2:1 (or 2.8:1:1): below half the stated size the mask is too
#: small. Above it, a correct mask can exceed the stated size only by its boundary voxels (one
#: on each side) and the readers' measurement spread (about 25 % for nodules); beyond that it
#: is too large.
SMALLEST_RATIO, LARGEST_RATIO, BOUNDARY_VOXELS = 0.5, 1.25, 2
#: Below this share of its voxels inside the stated lobe or organ a mask is flagged.
SMALLEST_SHARE_INSIDE = 0.5


@dataclass
class MaskStatistics:
    voxels: int
    volume_ml: float
    centroid_ras: list[float] | None  # mm, RAS (Slicer's world coordinates)
    slice_range: list[int] | None  # first and last slice (K index of the input volume) the mask touches
    equivalent_diameter_mm: float | None = None  # of the sphere with the mask's volume


def mask_statistics(mask: np.ndarray, volume: Volume) -> MaskStatistics:
    """Size and position of a (K, J, I) mask on ``volume``'s grid."""
    voxels = int(np.count_nonzero(mask))
    voxel_ml = abs(np.linalg.det(volume.ijk_to_ras[:3, :3])) / 1000.0
    if voxels == 0:
        return MaskStatistics(0, 0.0, None, None)
    k, j, i = np.nonzero(mask)
    centre = volume.ijk_to_ras @ np.array([i.mean(), j.mean(), k.mean(), 1.0])
    diameter = (6 * voxels * voxel_ml * 1000 / np.pi) ** (1 / 3)
    return MaskStatistics(voxels, round(voxels * voxel_ml, 3), [round(float(c), 2) for c in centre[:3]],
                          [int(k.min()), int(k.max())], round(float(diameter), 1))


def stated_side(text: str) -> Optional[str]:
    """"right" or "left" when the text names exactly one side (not "bilateral"/"both")."""
    words = set(re.findall(r"\b(right|left|bilateral|both)\b", text.lower()))
    return words.pop() if words in ({"right"}, {"left"}) else None


def stated_size_mm(text: str) -> Optional[float]:
    """The largest length the text states, in mm ("12 x 8 mm" -> 12, "2.1 cm" -> 21)."""
    sizes = []
    for match in MEASUREMENT.finditer(text):
        scale = 1.0 if match["unit"].lower().startswith(("mm", "mil")) else 10.0
        sizes += [float(number.replace(",", ".")) * scale for number in re.findall(r"\d+(?:[.,]\d+)?", match["numbers"])]
    return max(sizes) if sizes else None


def stated_location(text: str) -> Optional[str]:
    lowered = text.lower()
    return next((place for place in LOCATIONS if re.search(rf"\b{place}\b", lowered)), None)


def body_midline_x(volume: Volume) -> float:
    """The RAS x of the body's centre: voxels denser than fat-free air (-500 HU) in a CT, above
    the mean intensity otherwise."""
    array = volume.array
    body = array > (-500.0 if array.min() < -500 else float(array.mean()))
    k, j, i = np.nonzero(body) if body.any() else np.nonzero(np.ones_like(body))
    return float((volume.ijk_to_ras @ np.array([i.mean(), j.mean(), k.mean(), 1.0]))[0])


def consistency_flags(finding: Finding, statistics: MaskStatistics, volume: Volume, mask: np.ndarray,
                      location_masks: Mapping[str, np.ndarray]) -> list[str]:
    """Where the mask contradicts the finding's side, size or stated place (see the constants)."""
    if statistics.voxels == 0:
        return ["no voxels found: the model segmented nothing for this finding"]
    flags = []
    side = stated_side(finding.text)
    if side is not None and statistics.centroid_ras is not None:
        offset = statistics.centroid_ras[0] - body_midline_x(volume)  # RAS: +x is the patient's right
        found = "right" if offset > MIDLINE_MARGIN_MM else "left" if offset < -MIDLINE_MARGIN_MM else None
        if found is not None and found != side:
            flags.append(f"side: the report says {side}, the mask's centre lies {abs(offset):.0f} mm to the "
                         f"patient's {found} of the body midline")
    size = stated_size_mm(finding.text)
    if size is not None and statistics.equivalent_diameter_mm is not None:
        diameter = statistics.equivalent_diameter_mm
        boundary = BOUNDARY_VOXELS * float(np.linalg.norm(volume.ijk_to_ras[:3, :3], axis=0).max())
        if diameter < SMALLEST_RATIO * size or diameter > LARGEST_RATIO * size + boundary:
            flags.append(f"size: the report says {size:g} mm, the mask's equivalent diameter is {diameter:.0f} mm "
                         f"({statistics.volume_ml:.2f} mL)")
    place = stated_location(finding.text)
    if place is not None and place in location_masks:
        inside = np.count_nonzero((mask > 0) & (location_masks[place] > 0)) / statistics.voxels
        if not location_masks[place].any():
            flags.append(f"location: the model found no {place} to check the mask against")
        elif inside < SMALLEST_SHARE_INSIDE:
            flags.append(f"location: only {inside:.0%} of the mask lies in the {place} (as the model segments it)")
    return flags


@dataclass
class GroundedFinding:
    finding: Finding
    statistics: MaskStatistics
    mask_file: str
    picture: str
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self.finding), **asdict(self.statistics), "mask_file": self.mask_file,
                "picture": self.picture, "flags": self.flags}
