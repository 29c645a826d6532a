"""Instance-focused prompts: lesions located by the organ part they lie in.

A semantic lesion label map plus a part map (lung lobes, Couinaud segments, left/right
kidney, e.g. from TotalSegmentator) become prompts such as "lung nodule in the right
upper lobe". Each connected lesion component is assigned to the part holding most of its
voxels; one prompt covers all components assigned to a part. Parts without a lesion give
negative prompts (the lesion labels are complete, so their absence is known).
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

DEFAULT_TEMPLATES = ("{lesion} in the {part}", "{lesion} located in the {part}", "{lesion} of the {part}",
                     "{part} {lesion}")


@dataclass
class InstancePrompt:
    names: tuple[str, ...]  # default wording first
    mask: np.ndarray  # bool, every component assigned to this prompt


def assign_components(lesion_mask: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Connected components (26-connected) of ``lesion_mask`` and, for each component id, the
    part label holding most of its voxels (0 when it touches no part)."""
    components, count = ndimage.label(lesion_mask, structure=np.ones((3, 3, 3), dtype=bool))
    assignment = {}
    for component in range(1, count + 1):
        overlap = np.bincount(parts[components == component].ravel().astype(np.int64))
        overlap[0] = 0  # voxels outside every part do not vote
        assignment[component] = int(overlap.argmax()) if overlap.max() > 0 else 0
    return components, assignment


def location_prompts(lesion_mask: np.ndarray, parts: np.ndarray, part_names: dict[int, str], lesion: str,
                     templates: tuple[str, ...] = DEFAULT_TEMPLATES) -> tuple[list[InstancePrompt], list[tuple[str, ...]]]:
    """Positive prompts (with masks) for parts holding lesion components, negative prompt
    names for named parts holding none, and the whole-lesion prompt when any lesion exists."""
    components, assignment = assign_components(lesion_mask, parts)
    positives, negatives = [], []
    for part, part_name in sorted(part_names.items()):
        names = tuple(t.format(lesion=lesion, part=part_name) for t in templates)
        assigned = [c for c, p in assignment.items() if p == part]
        if assigned:
            positives.append(InstancePrompt(names, np.isin(components, assigned)))
        else:
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

