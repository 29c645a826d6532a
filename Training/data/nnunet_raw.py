"""Semantic datasets in nnU-Net's raw layout: ``dataset.json`` (``labels``: name -> value),
``imagesTr/<case>_0000.nii.gz`` and ``labelsTr/<case>.nii.gz``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from VoxTellCore.errors import InputError
from Training.data.cache import RawCase
from Training.data.readers import read_network_image, read_network_labels


class NnUNetRawDataset:
    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.path = Path(path)
        description = self.path / "dataset.json"
        if not description.is_file():
            raise InputError(
                f"Dataset {name}: {description} does not exist. Point 'path' at an nnU-Net raw dataset folder "
                "(dataset.json, imagesTr/, labelsTr/)."
            )
        meta = json.loads(description.read_text(encoding="utf-8"))
        self.file_ending = meta.get("file_ending", ".nii.gz")
        labels = meta.get("labels", {})
        if any(not isinstance(v, int) for v in labels.values()):
            raise InputError(
                f"Dataset {name}: dataset.json labels must map a name to one integer (region labels are not "
                "supported); describe unions in the vocabulary instead."
            )
        self.labels: dict[str, int] = {k: v for k, v in labels.items() if v != 0}

    def case_ids(self) -> list[str]:
        suffix = f"_0000{self.file_ending}"
        cases = sorted(p.name[: -len(suffix)] for p in (self.path / "imagesTr").glob(f"*{suffix}"))
        if not cases:
            raise InputError(f"Dataset {self.name}: no images matching imagesTr/*{suffix} in {self.path}.")
        return cases

    def load_case(self, case_id: str) -> RawCase:
        image = read_network_image(self.path / "imagesTr" / f"{case_id}_0000{self.file_ending}")
        labels = read_network_labels(self.path / "labelsTr" / f"{case_id}{self.file_ending}")
        if labels.shape != image.shape:
            raise InputError(
                f"Dataset {self.name}, case {case_id}: label map shape {labels.shape} differs from the image "
                f"shape {image.shape} (network orientation). Image and label must share one grid."
            )
        unknown = sorted(set(np.unique(labels).tolist()) - set(self.labels.values()) - {0})
        if unknown:
            raise InputError(f"Dataset {self.name}, case {case_id}: label values {unknown} are not in dataset.json.")
        return RawCase(image=image, segmentation=labels[None])
