"""Findings added to a normal anatomy: solid lung nodules and pleural effusions."""

from __future__ import annotations

import numpy as np

from .anatomy import LOBE_LABELS, Anatomy, Tissue
from .labels import LOBES, PARTITION, effusion_prompt, nodule_prompt
from .shapes import PatientSpace, Waves, ellipsoid, rotation_matrix


def add_findings(space: PatientSpace, anatomy: Anatomy, rng: np.random.Generator, n_nodules: int,
                 effusion_sides: tuple[str, ...], nodule_diameter_mm: tuple[float, float]) -> None:
    for side in effusion_sides:
        _paint_effusion(space, anatomy, side, rng)
    _paint_nodules(space, anatomy, n_nodules, nodule_diameter_mm, rng)


def _paint_effusion(space: PatientSpace, anatomy: Anatomy, side: str, rng: np.random.Generator) -> None:
    """Dependent (posterior, basal) fluid crescent: the supine patient's fluid layers along the back."""
    x, y, z = space.coords
    envelope = anatomy.lung_envelopes[side]
    lobes = [LOBE_LABELS[name] for name, _, s in LOBES if s == side]
    lung = np.isin(anatomy.label_map, lobes)
    if not lung.any():
        return
    (cx, cy, cz), (rx, ry, rz) = envelope["center"], envelope["radii"]
    base_z = float(np.percentile(z[lung], 1))
    thickness, height = rng.uniform(15, 40), rng.uniform(50, 100)
    inside = np.clip(1 - ((x - cx) / rx) ** 2 - ((z - cz) / rz) ** 2, 0, None)
    back = cy - ry * np.sqrt(inside)
    depth = thickness * np.clip(1 - (z - base_z) / height, 0, 1)
    fluid = lung & (y < back + depth)
    if not fluid.any():
        return
    label = effusion_prompt(side)
    anatomy.paint(fluid, label, Tissue.EFFUSION)
    anatomy.findings.append({
        "concept": "pleural effusion", "prompt": label, "side": side, "lobe": None,
        "size_mm": round(thickness), "severity": "small" if thickness < 28 else "moderate",
        "label": PARTITION[label],
    })


def _paint_nodules(space: PatientSpace, anatomy: Anatomy, count: int, diameter_mm: tuple[float, float],
                   rng: np.random.Generator) -> None:
    """At most one nodule per lobe (so a location prompt names one instance), wholly inside it,
    and about three voxels across on every axis (smaller ones would be a voxel or two). A
    nodule that finds no place is shrunk every ten tries; a lobe too small for the smallest is
    left without one."""
    lobes = [name for name, _, _ in LOBES]
    largest_spacing = float(space.grid.spacing_ijk.max())
    margin = 1.5 * largest_spacing
    smallest = max(diameter_mm[0], 2.4 * largest_spacing)
    diameter_mm = (smallest, max(diameter_mm[1], smallest))
    for lobe in rng.permutation(lobes)[:count]:
        lobe_voxels = np.flatnonzero(anatomy.label_map == LOBE_LABELS[lobe])
        if lobe_voxels.size == 0:
            continue
        diameter = rng.uniform(*diameter_mm)
        for attempt in range(40):
            if attempt and attempt % 10 == 0:  # a large nodule may not fit a small lobe: shrink it
                diameter = max(smallest, 0.75 * diameter)
            voxel = np.unravel_index(rng.choice(lobe_voxels), space.shape)
            center = space.coords[(slice(None),) + voxel].astype(float)
            radii = diameter / 2 * rng.uniform(0.85, 1.15, 3)
            bumps = Waves.random(rng, 3, 0.12, (1.5, 3.0))
            rotation = rotation_matrix(rng.uniform(-90, 90, 3))
            # wholly inside: the nodule grown by a voxel is still all this lobe's parenchyma
            grown = ellipsoid(space, center, radii + margin, rotation, bumps)
            if np.all(anatomy.label_map[grown] == LOBE_LABELS[lobe]):
                nodule = ellipsoid(space, center, radii, rotation, bumps)
                nodule[voxel] = True
                break
        else:
            continue
        prompt = nodule_prompt(lobe)
        anatomy.paint(nodule, prompt, Tissue.NODULE)
        anatomy.findings.append({
            "concept": "lung nodule", "prompt": prompt, "lobe": lobe, "side": lobe.split()[0],
            "size_mm": int(round(diameter)), "attenuation": "solid", "label": PARTITION[prompt],
        })
