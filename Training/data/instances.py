"""Instance-focused prompts: lesions located by the organ part they lie in.

A semantic lesion label map plus a part map (lung lobes, Couinaud segments, left/right
kidney, e.g. from TotalSegmentator) become prompts such as "lung nodule in the right
upper lobe". Each connected lesion component is assigned to the part holding most of its
voxels; one prompt covers all components assigned to a part. A part gives a negative prompt
only when the case is known to lack the lesion there (the lesion labels are complete): no
component reaches it, and every component lies in some part. A tumour crossing a fissure or a
nodule against the chest wall, outside the lobe masks, makes no part a negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from VoxTellCore.errors import InputError
from Training.data.cache import RawCase
from Training.data.nnunet_raw import NnUNetRawDataset
from Training.data.readers import read_network_labels
from Training.data.targets import Target

NEAR_VOXELS = 2  # a part this close to a lesion may hold part of it (masks of neighbouring parts are not exact)
DEFAULT_TEMPLATES = ("{lesion} in the {part}", "{lesion} located in the {part}", "{lesion} of the {part}",
                     "{part} {lesion}")


@dataclass
class InstancePrompt:
    names: tuple[str, ...]  # default wording first
    mask: np.ndarray  # bool, every component assigned to this prompt


def assign_components(lesion_mask: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, dict[int, int], set[int]]:
    """Connected components (26-connected) of ``lesion_mask``; for each component id the part
    label holding most of its voxels (0 when it touches no part); and every part label that a
    component reaches within ``NEAR_VOXELS`` (the parts a lesion may lie in, by the part maps'
    accuracy: none of these can be said to lack the lesion)."""
    components, count = ndimage.label(lesion_mask, structure=np.ones((3, 3, 3), dtype=bool))
    assignment, reached = {}, set()
    for component, box in enumerate(ndimage.find_objects(components), start=1):
        overlap = np.bincount(parts[box][components[box] == component].ravel().astype(np.int64))
        overlap[0] = 0  # voxels outside every part do not vote
        assignment[component] = int(overlap.argmax()) if overlap.max() > 0 else 0
        near = tuple(slice(max(s.start - NEAR_VOXELS, 0), s.stop + NEAR_VOXELS) for s in box)
        grown = ndimage.binary_dilation(components[near] == component, iterations=NEAR_VOXELS,
                                        structure=np.ones((3, 3, 3), dtype=bool))
        reached.update(int(v) for v in np.unique(parts[near][grown]) if v != 0)
    return components, assignment, reached


def location_prompts(lesion_mask: np.ndarray, parts: np.ndarray, part_names: dict[int, str], lesion: str,
                     templates: tuple[str, ...] = DEFAULT_TEMPLATES) -> tuple[list[InstancePrompt], list[tuple[str, ...]]]:
    """Positive prompts (with masks) for parts holding lesion components, the whole-lesion prompt
    when any lesion exists, and negative prompt names for the parts known to lack the lesion:
    named parts that no component reaches, and none at all when a component lies outside every
    part (its location is unknown)."""
    components, assignment, reached = assign_components(lesion_mask, parts)
    location_known = 0 not in assignment.values()
    positives, negatives = [], []
    for part, part_name in sorted(part_names.items()):
        names = tuple(t.format(lesion=lesion, part=part_name) for t in templates)
        assigned = [c for c, p in assignment.items() if p == part]
        if assigned:
            positives.append(InstancePrompt(names, np.isin(components, assigned)))
        elif location_known and part not in reached:
            negatives.append(names)
    if assignment:
        positives.append(InstancePrompt((lesion,), components > 0))
    return positives, negatives


class InstanceDataset:
    """An nnU-Net raw lesion dataset plus a folder of part maps (``<case>.nii.gz``)."""

    def __init__(self, name: str, path: str | Path, parts_dir: str | Path, parts: dict[str, str],
                 lesions: dict[str, str], templates: list[str] | None = None) -> None:
        self.name = name
        self.source = NnUNetRawDataset(name, path)
        self.parts_dir = Path(parts_dir)
        self.part_names = {int(k): v for k, v in parts.items()}
        unknown = sorted(set(lesions) - set(self.source.labels))
        if unknown:
            raise InputError(f"Dataset {name}: lesion label(s) {unknown} are not in {path}/dataset.json.")
        self.lesions = {self.source.labels[k]: v for k, v in lesions.items()}
        self.templates = tuple(templates) if templates else DEFAULT_TEMPLATES

    def case_ids(self) -> list[str]:
        return self.source.case_ids()

    def load_case(self, case_id: str) -> RawCase:
        raw = self.source.load_case(case_id)
        parts = read_network_labels(self.parts_dir / f"{case_id}{self.source.file_ending}")
        if parts.shape != raw.image.shape:
            raise InputError(f"Dataset {self.name}, case {case_id}: the part map's grid differs from the image's.")
        masks, targets, negatives = [], [], []
        for value, lesion in sorted(self.lesions.items()):
            positives, absent = location_prompts(raw.segmentation[0] == value, parts, self.part_names, lesion,
                                                 self.templates)
            for prompt in positives:
                targets.append(Target(prompt.names, channel=len(masks)))
                masks.append(prompt.mask)
            negatives += [Target(names) for names in absent]
            if not positives:
                negatives.append(Target((lesion,)))
        segmentation = np.stack(masks).astype(np.uint8) if masks else np.zeros((1, *raw.image.shape), np.uint8)
        return RawCase(image=raw.image, segmentation=segmentation, kind="channels", channel_targets=targets,
                       negatives=negatives)

