"""ReXGroundingCT: one CT per scan, one mask channel per free-text finding.

``dataset.json`` holds ``{"train": [...], "val": [...], "test": [...]}``; each entry has the
scan's file ``name`` and ``findings`` (``{"0": "text", ...}``, the key being the mask
channel). The training split annotates at most three instances per finding, so its scans
are marked partial: findings are only ever positives, and an annotated finding whose
channel is empty (or a finding with no mask) is neither a positive nor a negative.
"""

from __future__ import annotations

import json
from pathlib import Path

from VoxTellCore.errors import InputError
from VoxTellCore.evaluation.rexgroundingct import case_id, find_mask
from Training.data.cache import RawCase
from Training.data.readers import read_network_channels, read_network_image
from Training.data.targets import Target


class ReXGroundingCTDataset:
    def __init__(self, name: str, path: str | Path, split: str = "train", images: str = "images_flat",
                 masks: str = "segmentations", partial: bool | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.split = split
        self.images = self.path / images
        self.masks = self.path / masks
        description = self.path / "dataset.json"
        if not description.is_file():
            raise InputError(f"Dataset {name}: {description} does not exist. Point 'path' at the ReXGroundingCT folder.")
        entries = json.loads(description.read_text(encoding="utf-8")).get(split)
        if not isinstance(entries, list):
            raise InputError(f"Dataset {name}: dataset.json has no '{split}' list. Set 'split' to train, val or test.")
        self.entries = {case_id(e["name"]): e for e in entries}
        # Only the training split is annotated partially (up to three instances per finding).
        self.partial = split == "train" if partial is None else partial

    def case_ids(self) -> list[str]:
        return sorted(self.entries)

    def load_case(self, case_id: str) -> RawCase:
        entry = self.entries[case_id]
        findings = {int(k): str(v) for k, v in entry["findings"].items()}
        image = read_network_image(self._find(self.images, entry["name"]))
        channels = read_network_channels(self._find(self.masks, entry["name"]), max(findings) + 1)
        if channels.shape[1:] != image.shape:
            raise InputError(
                f"Dataset {self.name}, scan {case_id}: mask grid {channels.shape[1:]} differs from the CT grid "
                f"{image.shape}. The mask must be on the scan's grid."
            )
        targets = [Target((text.strip().lower(),), channel=c) for c, text in sorted(findings.items())]
        return RawCase(image=image, segmentation=channels, kind="channels", channel_targets=targets,
                       partial=self.partial)

    def _find(self, folder: Path, name: str) -> Path:
        found = find_mask(folder, name, self.split)
        if found is None:
            raise InputError(f"Dataset {self.name}: {name} is in neither {folder / self.split} nor {folder}.")
        return found
