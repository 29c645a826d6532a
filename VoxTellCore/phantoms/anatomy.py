"""Random thoracoabdominal anatomy painted into a label partition and a tissue map.

All positions are patient coordinates in mm (see shapes.PatientSpace): +x = patient right,
+y = anterior, +z = superior, origin at the body centre on the right diaphragm dome's level.
Later paint wins, so the order of the steps in `build_anatomy` is the anatomy's precedence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage

from .labels import LOBES, PARTITION
from .shapes import PatientSpace, Waves, ellipsoid, elliptic_cylinder, rotation_matrix, tube

FAR = 1000.0  # mm: "the whole field of view" along an axis


class Tissue(IntEnum):
    """What a voxel is made of (decides its HU), finer than the label partition."""

    OUTSIDE_AIR = 0
    FAT = 1
    MUSCLE = 2
    VISCERA = 3
    LUNG = 4
    LUNG_VESSEL = 5
    MYOCARDIUM = 6
    BLOOD_POOL = 7
    AORTA = 8
    LIVER = 9
    SPLEEN = 10
    KIDNEY = 11
    CANCELLOUS_BONE = 12
    CORTICAL_BONE = 13
    CSF = 14
    AIRWAY = 15
    STOMACH_FLUID = 16
    BOWEL_GAS = 17
    EFFUSION = 18
    NODULE = 19
    FISSURE = 20
    RIB = 21


LOBE_LABELS = {name: PARTITION[f"{name} parenchyma"] for name, _, _ in LOBES}


@dataclass
class Anatomy:
    label_map: np.ndarray  # (K, J, I) uint8, labels.PARTITION values
    tissue: np.ndarray  # (K, J, I) uint8, Tissue values
    findings: list[dict] = field(default_factory=list)
    lung_envelopes: dict[str, dict] = field(default_factory=dict)  # side -> ellipsoid and fissures

    def paint(self, mask: np.ndarray, label: str | None, tissue: Tissue) -> None:
        if label is not None:
            self.label_map[mask] = PARTITION[label]
        self.tissue[mask] = tissue


@dataclass(frozen=True)
class Body:
    """The sizes everything else is placed relative to."""

    half_width: float  # x semi-axis of the trunk's outline
    half_depth: float  # y semi-axis
    fat: float  # subcutaneous fat thickness
    muscle: float  # body wall muscle thickness

    @property
    def cavity(self) -> tuple[float, float]:
        wall = self.fat + self.muscle
        return self.half_width - wall, self.half_depth - wall

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Body":
        return cls(rng.uniform(135, 165), rng.uniform(95, 118), rng.uniform(6, 25), rng.uniform(10, 16))


def build_anatomy(space: PatientSpace, body: Body, rng: np.random.Generator) -> Anatomy:
    """Normal anatomy (lesions.py adds the findings)."""
    anatomy = Anatomy(np.zeros(space.shape, np.uint8), np.zeros(space.shape, np.uint8))
    x, y, z = space.coords
    _paint_body_wall(space, anatomy, body)
    diaphragm = _diaphragm(body, rng)
    below_diaphragm = z < diaphragm(x, y) - 4.0  # the diaphragm muscle stays "other body tissue"
    above_diaphragm = z > diaphragm(x, y)
    cavity = elliptic_cylinder(space, (0, 0), body.cavity, (-FAR, FAR))
    lungs = anatomy.lung_envelopes = {side: _lung_envelope(body, side, rng) for side in ("right", "left")}
    fissure_half_width = 0.35 * float(space.grid.spacing_ijk.mean())
    for side, envelope in lungs.items():
        inside = ellipsoid(space, envelope["center"], envelope["radii"]) & cavity & above_diaphragm
        _paint_lobes(anatomy, inside, side, envelope, x, y, z, fissure_half_width)
    spine = _spine_geometry(body, rng)
    _paint_ribs(space, anatomy, body, spine, float(diaphragm(0, 0)), rng)
    _paint_abdomen(space, anatomy, body, spine, cavity & below_diaphragm, rng)
    heart_center = _paint_heart(space, anatomy, body, diaphragm, rng)
    _paint_great_vessels_and_airways(space, anatomy, spine, heart_center, diaphragm, rng)
    _paint_spine(space, anatomy, spine)
    _paint_lung_vessels(space, anatomy, lungs, rng)
    return anatomy


def _paint_body_wall(space: PatientSpace, anatomy: Anatomy, body: Body) -> None:
    outline = elliptic_cylinder(space, (0, 0), (body.half_width, body.half_depth), (-FAR, FAR))
    inner = (body.half_width - body.fat, body.half_depth - body.fat)
    anatomy.paint(outline, "other body tissue", Tissue.FAT)
    anatomy.paint(elliptic_cylinder(space, (0, 0), inner, (-FAR, FAR)), None, Tissue.MUSCLE)
    anatomy.paint(elliptic_cylinder(space, (0, 0), body.cavity, (-FAR, FAR)), None, Tissue.VISCERA)


def _diaphragm(body: Body, rng: np.random.Generator):
    """Height of the diaphragm: two domes, the right one higher, lowest at the posterior recesses."""
    depth, width = rng.uniform(35, 55), body.cavity[0] * rng.uniform(0.45, 0.55)
    back = body.cavity[1] * rng.uniform(0.7, 0.9)
    domes = [(0.0, body.half_width * 0.42), (-rng.uniform(8, 20), -body.half_width * 0.42)]
    front = rng.uniform(0, 20)

    def height(x, y):
        heights = [top - depth * (((x - cx) / width) ** 2 + ((y - front) / back) ** 2) for top, cx in domes]
        return np.maximum(*heights)

    return height


def _lung_envelope(body: Body, side: str, rng: np.random.Generator) -> dict:
    sign = 1.0 if side == "right" else -1.0  # patient right is +x
    cavity_x, cavity_y = body.cavity
    radii = np.array([cavity_x * rng.uniform(0.42, 0.48), cavity_y * rng.uniform(0.88, 0.95),
                      rng.uniform(95, 115)])
    center = np.array([sign * (cavity_x - radii[0] * rng.uniform(0.98, 1.06)),
                       -cavity_y * rng.uniform(0.0, 0.05), rng.uniform(40, 55)])
    fissures = {"major_offset": rng.uniform(0, 20), "major_slope": rng.uniform(0.7, 1.0),
                "major_bend": rng.uniform(-12, 12), "minor_offset": rng.uniform(20, 35),
                "minor_tilt": rng.uniform(-0.15, 0.15)}
    return {"center": center, "radii": radii, **fissures}


def _paint_lobes(anatomy: Anatomy, lung: np.ndarray, side: str, envelope: dict, x, y, z,
                 fissure_half_width: float) -> None:
    """Split a lung by plane-like fissures: the major one runs from posterior-superior to
    anterior-inferior; on the right the minor (horizontal) one cuts the middle lobe off the upper.
    The fissures show as a faint line, as on real CT."""
    cx, cy, cz = envelope["center"]
    lx, ly, lz = (x - cx) / envelope["radii"][0], y - cy, z - cz
    major = envelope["major_offset"] - envelope["major_slope"] * ly + envelope["major_bend"] * lx ** 2
    lower = lung & (lz < major)
    anatomy.paint(lung, f"{side} lung upper lobe parenchyma", Tissue.LUNG)
    anatomy.paint(lower, f"{side} lung lower lobe parenchyma", Tissue.LUNG)
    fissures = np.abs(lz - major) < fissure_half_width * np.hypot(1.0, envelope["major_slope"])
    if side == "right":
        minor = envelope["minor_offset"] + envelope["minor_tilt"] * ly
        anatomy.paint(lung & ~lower & (lz < minor), "right lung middle lobe parenchyma", Tissue.LUNG)
        fissures |= ~lower & (np.abs(lz - minor) < fissure_half_width)
    anatomy.paint(lung & fissures, None, Tissue.FISSURE)


def _paint_ribs(space: PatientSpace, anatomy: Anatomy, body: Body, spine: "Spine", diaphragm_z: float,
                rng: np.random.Generator) -> None:
    """Ribs in the chest wall (sloping down toward the front, apart at the spine and sternum) and
    the sternum: bone that is not "vertebrae"."""
    cavity_x, cavity_y = body.cavity
    region = space.box([-cavity_x - body.muscle, -cavity_y - body.muscle, diaphragm_z - 90],
                       [cavity_x + body.muscle, cavity_y + body.muscle, FAR])
    x, y, z = space.local(region)
    depth = np.hypot(x / cavity_x, y / cavity_y) - 1.0  # 0 at the cavity, grows outward
    in_wall = (depth > 0.005) & (depth < 0.005 + rng.uniform(6, 9) / cavity_y)
    around = np.arctan2(y, x) / np.pi  # -0.5 behind, +0.5 in front
    off_midlines = (np.abs(around + 0.5) > 0.08) & (np.abs(around - 0.5) > 0.12)
    slope = rng.uniform(30, 60)  # mm a rib drops from its back to its front end
    phase = np.mod(z - spine.phase + slope * (around + 0.5) * 2, spine.period)
    ribs = in_wall & off_midlines & (phase < rng.uniform(8, 11)) & (z > diaphragm_z - 90)
    sternum = (np.abs(x) < rng.uniform(12, 16)) & (y > cavity_y - 2) & (y < cavity_y + 10) & (z > diaphragm_z + 10)
    anatomy.paint(space.filled(region, ribs | sternum), None, Tissue.RIB)


@dataclass(frozen=True)
class Spine:
    center_y: float  # vertebral bodies' centre
    radii: tuple[float, float]
    height: float  # of one vertebral body
    period: float  # body + disc
    phase: float  # z of one body's bottom

    @property
    def canal_y(self) -> float:
        return self.center_y - self.radii[1] - 9

    def level_fraction(self, z: np.ndarray) -> np.ndarray:
        """Position within a vertebra's height: 0 at its bottom, 1 at its top, > 1 in the disc."""
        return np.mod(z - self.phase, self.period) / self.height


def _spine_geometry(body: Body, rng: np.random.Generator) -> Spine:
    height = rng.uniform(20, 26)
    return Spine(center_y=-(body.half_depth - body.fat) + rng.uniform(50, 60),
                 radii=(rng.uniform(17, 22), rng.uniform(14, 18)), height=height,
                 period=height + rng.uniform(5, 8), phase=rng.uniform(0, 30))


def _paint_spine(space: PatientSpace, anatomy: Anatomy, spine: Spine) -> None:
    """A column of vertebrae: body, neural arch, spinous and transverse processes; discs between."""
    rx, ry = spine.radii
    region = space.box([-40, spine.canal_y - 40, -FAR], [40, spine.center_y + ry, FAR])
    x, y, z = space.local(region)
    level = spine.level_fraction(z)
    in_bone = level <= 1.0
    body = ((x / rx) ** 2 + ((y - spine.center_y) / ry) ** 2 <= 1) & in_bone
    marrow = ((x / (rx - 3)) ** 2 + ((y - spine.center_y) / (ry - 3)) ** 2 <= 1) & (level > 0.1) & (level < 0.9)
    canal = (x / 8) ** 2 + ((y - spine.canal_y) / 7) ** 2 <= 1
    arch = ((x / 15) ** 2 + ((y - spine.canal_y) / 13) ** 2 <= 1) & (level > 0.1) & (level < 0.9)
    middle = np.abs(level - 0.5) < 0.25
    # the spinous process slopes down as it runs backward
    back = spine.canal_y - 8 - y
    spinous = (np.abs(x) < 4) & (back > 0) & (back < 24) & (np.abs(level - 0.5 + back / (2.5 * spine.height)) < 0.2)
    transverse = (np.abs(x) > 8) & (np.abs(x) < 32) & (np.abs(y - spine.canal_y + 2) < 4) & middle
    vertebrae = (body | arch | spinous | transverse) & ~canal
    anatomy.paint(space.filled(region, vertebrae), "vertebrae", Tissue.CORTICAL_BONE)
    anatomy.paint(space.filled(region, marrow), "vertebrae", Tissue.CANCELLOUS_BONE)
    anatomy.paint(space.filled(region, canal), "other body tissue", Tissue.CSF)


def _paint_abdomen(space: PatientSpace, anatomy: Anatomy, body: Body, spine: Spine,
                   abdomen: np.ndarray, rng: np.random.Generator) -> None:
    cavity_x, cavity_y = body.cavity

    def organ(center, radii, angles, bumpiness):
        bumps = Waves.random(rng, 3, bumpiness, (2.0, 4.0))
        return ellipsoid(space, center, radii, rotation_matrix(angles), bumps) & abdomen

    liver_radii = [cavity_x * rng.uniform(0.62, 0.72), cavity_y * rng.uniform(0.75, 0.85), rng.uniform(85, 100)]
    right_edge = cavity_x * rng.uniform(0.95, 1.0)
    liver_center = [right_edge - liver_radii[0], cavity_y * rng.uniform(0.0, 0.1), -rng.uniform(45, 60)]
    liver = organ(liver_center, liver_radii, rng.uniform(-8, 8, 3), 0.06)
    # the inferior surface rises toward the left: a wedge in coronal view
    lowest = liver_center[2] - liver_radii[2] * rng.uniform(0.75, 0.9)
    x, y, z = space.coords
    front_back = ((y - liver_center[1]) / liver_radii[1]) ** 2 * rng.uniform(5, 15)  # a curved edge
    liver &= z > lowest + np.tan(np.deg2rad(rng.uniform(15, 28))) * (right_edge - x) + front_back
    # the liver passes in front of the spine, aorta and vena cava, not around them
    reach_x, reach_y = rng.uniform(35, 45), spine.radii[1] + rng.uniform(25, 35)
    retroperitoneum = (x / reach_x) ** 2 + ((y - spine.center_y) / reach_y) ** 2 <= 1
    anatomy.paint(_largest_component(liver & ~retroperitoneum), "liver", Tissue.LIVER)

    stomach_radii = np.array([rng.uniform(35, 45), rng.uniform(28, 38), rng.uniform(35, 45)])
    stomach_center = [-cavity_x * 0.35, cavity_y * 0.35, -rng.uniform(30, 45)]
    stomach = organ(stomach_center, stomach_radii, rng.uniform(-10, 10, 3), 0.08)
    anatomy.paint(stomach, None, Tissue.STOMACH_FLUID)
    gas_level = stomach_center[1] + stomach_radii[1] * rng.uniform(0.2, 0.6)  # gas rises anteriorly (supine)
    anatomy.paint(stomach & (space.coords[1] > gas_level), None, Tissue.BOWEL_GAS)

    spleen_radii = [rng.uniform(25, 32), rng.uniform(45, 60), rng.uniform(45, 55)]
    spleen_center = [-(cavity_x - spleen_radii[0] * 1.1), -cavity_y * rng.uniform(0.3, 0.45), -rng.uniform(50, 65)]
    anatomy.paint(organ(spleen_center, spleen_radii, [0, 0, rng.uniform(20, 40)], 0.06), "spleen", Tissue.SPLEEN)

    for side, sign in (("right", 1.0), ("left", -1.0)):
        radii = [rng.uniform(24, 30), rng.uniform(22, 28), rng.uniform(48, 58)]
        center = [sign * rng.uniform(58, 72), spine.center_y + rng.uniform(5, 15),
                  -rng.uniform(100, 115) - (8 if side == "right" else 0)]
        # upper pole tilted toward the spine, hilum turned forward-medially
        angles = [0, sign * rng.uniform(8, 18), -sign * rng.uniform(15, 35)]
        anatomy.paint(organ(center, radii, angles, 0.04), f"{side} kidney", Tissue.KIDNEY)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    components, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == sizes.argmax()


def _paint_heart(space: PatientSpace, anatomy: Anatomy, body: Body, diaphragm, rng: np.random.Generator):
    radii = np.array([rng.uniform(50, 62), rng.uniform(40, 50), rng.uniform(45, 55)])
    cx, cy = -rng.uniform(12, 28), body.cavity[1] * rng.uniform(0.15, 0.3)
    center = np.array([cx, cy, float(diaphragm(cx, cy)) + radii[2] * rng.uniform(0.6, 0.8)])
    rotation = rotation_matrix([rng.uniform(-10, 10), rng.uniform(-15, 5), rng.uniform(-35, -15)])
    bumps = Waves.random(rng, 3, 0.05, (2.0, 4.0))
    x, y, z = space.coords
    on_diaphragm = z > diaphragm(x, y) - 2.0
    anatomy.paint(ellipsoid(space, center, radii, rotation, bumps) & on_diaphragm, "heart", Tissue.MYOCARDIUM)
    wall = rng.uniform(7, 10)
    anatomy.paint(ellipsoid(space, center, radii - wall, rotation, bumps) & on_diaphragm, "heart",
                  Tissue.BLOOD_POOL)
    return center + rotation @ np.array([0.0, 0.0, radii[2] * 0.7])


def _paint_great_vessels_and_airways(space: PatientSpace, anatomy: Anatomy, spine: Spine, heart_top,
                                     diaphragm, rng: np.random.Generator) -> None:
    arch_z = heart_top[2] + rng.uniform(25, 40)
    radius = rng.uniform(10, 13)
    descending_x, descending_y = -spine.radii[0] * 0.7, spine.center_y + spine.radii[1] + radius * 0.7
    centerline = [
        [heart_top[0] + 10, heart_top[1] - 5, heart_top[2] - 15],
        [rng.uniform(5, 15), heart_top[1], arch_z - 15],
        [-8, (heart_top[1] + descending_y) / 2, arch_z + 5],
        [descending_x - 5, descending_y + 8, arch_z - 5],
        [descending_x, descending_y, arch_z - 30],
        [descending_x * 0.6, descending_y + 3, float(diaphragm(0, 0)) - 40],
        [descending_x * 0.4, descending_y + 3, -FAR / 4],
    ]
    radii = np.array([1.35, 1.3, 1.15, 1.05, 1.0, 0.95, 0.85]) * radius
    anatomy.paint(tube(space, centerline, radii), "aorta", Tissue.AORTA)

    # the trachea runs just right of the midline: the arch passes on its left
    carina = np.array([4.0, spine.center_y + spine.radii[1] + rng.uniform(20, 30), arch_z - rng.uniform(0, 10)])
    trachea = [[4, carina[1] + 5, FAR / 4], carina + [0, 0, 12]]
    hila = [carina + [sign * rng.uniform(35, 45), -5, -rng.uniform(10, 20)] for sign in (1, -1)]
    airways = tube(space, trachea, [rng.uniform(8, 10)] * 2)
    lumen = tube(space, trachea, [6.5, 6.5])
    for hilum in hila:
        bronchus = [carina + [0, 0, 12], carina, hilum]
        airways |= tube(space, bronchus, [7, 6, 4.5])
        lumen |= tube(space, bronchus, [5, 4, 2.5])
    anatomy.paint(airways, "other body tissue", Tissue.MUSCLE)  # the airway wall
    anatomy.paint(lumen & airways, "other body tissue", Tissue.AIRWAY)


def _paint_lung_vessels(space: PatientSpace, anatomy: Anatomy, lungs: dict, rng: np.random.Generator) -> None:
    """Tapering branches from each hilum; they stay part of the lobes (tissue only)."""
    lung = np.isin(anatomy.label_map, list(LOBE_LABELS.values()))
    vessels = np.zeros(space.shape, dtype=bool)
    for side, envelope in lungs.items():
        center, radii = envelope["center"], envelope["radii"]
        hilum = center + np.array([-np.sign(center[0]) * radii[0] * 0.75, radii[1] * 0.05, radii[2] * 0.05])
        for _ in range(rng.integers(6, 10)):
            direction = rng.normal(size=3) * [0.6, 1.0, 1.2]
            direction[0] = np.sign(center[0]) * abs(direction[0])  # away from the mediastinum
            tip = hilum + direction / np.linalg.norm(direction) * radii * rng.uniform(0.5, 0.85)
            middle = (hilum + tip) / 2 + rng.normal(scale=8, size=3)
            vessels |= tube(space, [hilum, middle, tip], [rng.uniform(3, 4.5), 2.0, 0.8])
    anatomy.paint(vessels & lung, None, Tissue.LUNG_VESSEL)
