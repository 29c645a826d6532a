"""Patient space and the solid primitives the anatomy is built from.

Every voxel gets patient coordinates: mm from the body centre along patient right / anterior /
superior, after a small random rotation of the patient in the scanner and a smooth random
deformation. Primitives are evaluated only inside their bounding box, so a shape costs what
it covers rather than the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Grid


def rotation_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation about x, then y, then z (degrees)."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Waves:
    """A smooth random field: a sum of plane sine waves, one row per wave."""

    amplitudes: np.ndarray  # (n,) or (n, 3) for vector fields
    wave_vectors: np.ndarray  # (n, 3) radians per unit of the input coordinates
    phases: np.ndarray  # (n,)

    @classmethod
    def random(cls, rng: np.random.Generator, n: int, amplitude: float, wavelength: tuple[float, float],
               vector: bool = False) -> "Waves":
        directions = rng.normal(size=(n, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wave_vectors = directions * (2 * np.pi / rng.uniform(*wavelength, size=(n, 1)))
        shape = (n, 3) if vector else (n,)
        amplitudes = rng.uniform(-1, 1, size=shape) * amplitude / np.sqrt(n)
        return cls(amplitudes, wave_vectors, rng.uniform(0, 2 * np.pi, size=n))

    @property
    def bound(self) -> float:
        return float(np.abs(self.amplitudes).sum(axis=0).max()) if self.amplitudes.size else 0.0

    def __call__(self, coords) -> np.ndarray:
        """coords: three (broadcastable) arrays -> field (...) or (3, ...)."""
        total = 0.0
        for amplitude, k, phase in zip(self.amplitudes, self.wave_vectors.astype(np.float32), self.phases):
            wave = np.sin(k[0] * coords[0] + k[1] * coords[1] + k[2] * coords[2] + np.float32(phase))
            amplitude = np.asarray(amplitude, dtype=np.float32)
            total = total + amplitude.reshape(amplitude.shape + (1,) * wave.ndim) * wave
        return total


class PatientSpace:
    """Patient coordinates of every voxel of a grid."""

    def __init__(self, grid: Grid, center_ras: np.ndarray, rotation: np.ndarray, warp: Waves):
        self.grid = grid
        self.center_ras = np.asarray(center_ras, dtype=float)
        self.rotation = rotation
        self.margin_mm = warp.bound + 1.0
        # patient = R^T (ijk_to_ras @ ijk - centre): linear in i, j, k, so built by broadcasting
        linear = rotation.T @ grid.ijk_to_ras[:3, :3]
        offset = rotation.T @ (grid.ijk_to_ras[:3, 3] - self.center_ras)
        k, j, i = (np.arange(n, dtype=np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
                   for axis, n in enumerate(grid.shape))
        coords = np.empty((3,) + grid.shape, dtype=np.float32)
        for axis in range(3):
            m = linear[axis].astype(np.float32)
            coords[axis] = m[0] * i + m[1] * j + (m[2] * k + np.float32(offset[axis]))
        coords += warp(coords)
        self.coords = coords

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.shape

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Undeformed patient points (N, 3) -> RAS (N, 3)."""
        return points @ self.rotation.T + self.center_ras

    def box(self, low: np.ndarray, high: np.ndarray) -> tuple[slice, ...]:
        """KJI slices covering the patient-space box [low, high] (with the deformation's margin)."""
        low = np.asarray(low, dtype=float) - self.margin_mm
        high = np.asarray(high, dtype=float) + self.margin_mm
        corners = np.array([[(low, high)[b][axis] for axis, b in enumerate(bits)]
                            for bits in np.ndindex(2, 2, 2)])
        return self.grid.voxel_slices(self.to_world(corners))

    def local(self, region: tuple[slice, ...]) -> np.ndarray:
        return self.coords[(slice(None),) + region]

    def filled(self, region: tuple[slice, ...], inside: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.shape, dtype=bool)
        mask[region] = inside
        return mask


def ellipsoid(space: PatientSpace, center, radii, rotation: np.ndarray | None = None,
              bumps: Waves | None = None) -> np.ndarray:
    """Solid ellipsoid; bumps (a field of the unit-sphere coordinates) modulate its radius."""
    center, radii = np.asarray(center, float), np.asarray(radii, float)
    rotation = np.eye(3) if rotation is None else rotation
    grow = 1.0 + (bumps.bound if bumps else 0.0)
    half = np.abs(rotation) @ radii * grow
    region = space.box(center - half, center + half)
    offset = space.local(region) - center.astype(np.float32)[:, None, None, None]
    scaled = (rotation.T / radii[:, None]).astype(np.float32)
    unit = [m[0] * offset[0] + m[1] * offset[1] + m[2] * offset[2] for m in scaled]
    radius2 = unit[0] ** 2 + unit[1] ** 2 + unit[2] ** 2
    limit = 1.0 + (bumps(unit) if bumps else 0.0)
    return space.filled(region, radius2 <= limit * np.abs(limit))


def elliptic_cylinder(space: PatientSpace, center_xy, radii_xy, z_range) -> np.ndarray:
    """Cylinder along the patient's superior axis with an elliptic cross-section."""
    (cx, cy), (rx, ry), (z0, z1) = center_xy, radii_xy, z_range
    region = space.box([cx - rx, cy - ry, z0], [cx + rx, cy + ry, z1])
    x, y, z = space.local(region)
    inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
    return space.filled(region, inside & (z >= z0) & (z <= z1))


def tube(space: PatientSpace, points, radii) -> np.ndarray:
    """Union of capsules along a polyline whose radius varies linearly between its points."""
    points, radii = np.asarray(points, float), np.asarray(radii, float)
    mask = np.zeros(space.shape, dtype=bool)
    for a, b, ra, rb in zip(points[:-1], points[1:], radii[:-1], radii[1:]):
        r = max(ra, rb)
        region = space.box(np.minimum(a, b) - r, np.maximum(a, b) + r)
        p = space.local(region) - a.astype(np.float32)[:, None, None, None]
        axis = (b - a).astype(np.float32)
        t = np.clip((axis[0] * p[0] + axis[1] * p[1] + axis[2] * p[2]) / max(float(axis @ axis), 1e-6), 0, 1)
        distance2 = sum((p[c] - t * axis[c]) ** 2 for c in range(3))
        mask[region] |= distance2 <= (ra + t * (rb - ra)) ** 2
    return mask
