"""The phantoms' label partition and the concepts (prompts) built from it.

A phantom's label map is the finest partition of its voxels: every voxel carries exactly one
integer below. Concepts overlap (a lung contains its lobes, a lobe contains its nodule), so each
concept is a union of partition labels. Organ concepts include the lesions inside them (the
VoxTell convention); pleural effusions lie in the pleural space, outside the lungs.
"""

from __future__ import annotations

import numpy as np

# (structure name, location wording used in prompts, side)
LOBES: tuple[tuple[str, str, str], ...] = (
    ("right lung upper lobe", "right upper lobe", "right"),
    ("right lung middle lobe", "right middle lobe", "right"),
    ("right lung lower lobe", "right lower lobe", "right"),
    ("left lung upper lobe", "left upper lobe", "left"),
    ("left lung lower lobe", "left lower lobe", "left"),
)
SIDES = ("left", "right")


def nodule_prompt(lobe: str) -> str:
    """'left lung lower lobe' -> 'nodule in the left lower lobe'."""
    location = {name: where for name, where, _ in LOBES}[lobe]
    return f"nodule in the {location}"


def effusion_prompt(side: str) -> str:
    return f"{side} pleural effusion"


# Partition label values (fixed for every phantom and every dataset).
PARTITION: dict[str, int] = {
    "background": 0,
    "other body tissue": 1,
    "right lung upper lobe parenchyma": 2,
    "right lung middle lobe parenchyma": 3,
    "right lung lower lobe parenchyma": 4,
    "left lung upper lobe parenchyma": 5,
    "left lung lower lobe parenchyma": 6,
    "heart": 7,
    "aorta": 8,
    "liver": 9,
    "spleen": 10,
    "left kidney": 11,
    "right kidney": 12,
    "vertebrae": 13,
    "left pleural effusion": 14,
    "right pleural effusion": 15,
    "nodule in the right upper lobe": 16,
    "nodule in the right middle lobe": 17,
    "nodule in the right lower lobe": 18,
    "nodule in the left upper lobe": 19,
    "nodule in the left lower lobe": 20,
}


def _anatomy_concepts() -> dict[str, list[str]]:
    lobes = {name: [f"{name} parenchyma", nodule_prompt(name)] for name, _, _ in LOBES}
    concepts = {"body": [name for name in PARTITION if name != "background"]}
    for side in SIDES:
        concepts[f"{side} lung"] = [label for name, members in lobes.items() if name.startswith(side)
                                    for label in members]
    concepts.update(lobes)
    for organ in ("heart", "aorta", "liver", "spleen", "left kidney", "right kidney", "vertebrae"):
        concepts[organ] = [organ]
    return concepts


def _finding_concepts() -> dict[str, list[str]]:
    nodules = [nodule_prompt(name) for name, _, _ in LOBES]
    effusions = [effusion_prompt(side) for side in SIDES]
    return {"lung nodule": nodules, **{n: [n] for n in nodules},
            "pleural effusion": effusions, **{e: [e] for e in effusions}}


# Concept (the default prompt) -> the partition labels whose union is its mask.
ANATOMY: dict[str, list[str]] = _anatomy_concepts()
FINDINGS: dict[str, list[str]] = _finding_concepts()
CONCEPTS: dict[str, list[str]] = {**ANATOMY, **FINDINGS}


def concept_masks(label_map: np.ndarray, concepts: dict[str, list[str]] | None = None,
                  partition: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Boolean mask of every concept, from a partition label map (any array order)."""
    concepts = CONCEPTS if concepts is None else concepts
    partition = PARTITION if partition is None else partition
    masks = {}
    for name, members in concepts.items():
        mask = np.zeros(label_map.shape, dtype=bool)
        for member in members:  # a chain of == is much faster than a lookup table or np.isin
            mask |= label_map == partition[member]
        masks[name] = mask
    return masks
