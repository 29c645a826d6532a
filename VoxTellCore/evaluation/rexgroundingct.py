"""ReXGroundingCT's own layout: all findings of a scan in one 4-D mask, listed in a JSON file.

``dataset.json`` (or ``MICCAI_challenge_dataset.json``) holds split lists (``train``, ``val``,
``test``) of ``{"name": "valid_1_a_1.nii.gz", "findings": {"0": "text", ...}, "shape": [H, W, D]}``;
the key of a finding is its channel in the scan's mask, ``(F, H, W, D)`` as the dataset card
describes it, or ``(H, W, D, F)``. Each entity of a finding has its own value in its channel.

This re-implements the small channel reader of ``Training/data/readers.py`` (the core does not
import Training): the findings axis is the first or last axis whose length is the number of
findings; when both are, the entry's ``shape`` decides, else the first (the dataset's order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from VoxTellCore.errors import InputError


@dataclass(frozen=True)
class ScanFindings:
    name: str  # the mask file name, e.g. "valid_1_a_1.nii.gz"
    findings: tuple[str, ...]  # finding text per channel
    shape: tuple[int, ...] | None  # the scan's (H, W, D) when the entry gives it
    split: str | None = None  # the JSON list it is in

    @property
    def case(self) -> str:
        return case_id(self.name)


def case_id(name: str) -> str:
    """The case of a scan's file name: the name without ``.nii.gz`` (or its one suffix)."""
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else Path(name).stem


def load_dataset_json(path: str | Path, split: str | None = None) -> list[ScanFindings]:
    """The scans of `split` (all splits when None) with their findings in channel order."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} does not exist; pass the dataset's JSON file (dataset.json) with --dataset-json.")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not valid JSON ({error}); pass the dataset's dataset.json.") from error
    if isinstance(document, list):
        return [_scan(entry, path, None) for entry in document]
    if not isinstance(document, dict):
        raise InputError(f"{path} holds neither split lists nor a list of scans; pass the dataset's dataset.json.")
    lists = {name: value for name, value in document.items() if isinstance(value, list)}
    if split is not None and split not in lists:
        raise InputError(f"{path} has no '{split}' list; choose --split from {', '.join(lists) or '(none)'}.")
    return [_scan(entry, path, name) for name, entries in lists.items() if split in (None, name) for entry in entries]


def _scan(entry: object, path: Path, split: str | None) -> ScanFindings:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("findings"), dict):
        raise InputError(f"{path}: entry {str(entry)[:80]} has no 'name' and 'findings'; each scan needs "
                         '{"name": "<file>.nii.gz", "findings": {"0": "text", ...}}.')
    try:
        channels = {int(key): str(text) for key, text in entry["findings"].items()}
    except ValueError:
        raise InputError(f"{path}: the findings of {entry['name']} must be keyed by channel number (\"0\", \"1\", ...).")
    if sorted(channels) != list(range(len(channels))):
        raise InputError(f"{path}: the findings of {entry['name']} are keyed {sorted(channels)}; expected channels "
                         f"0 to {len(channels) - 1}, one per finding.")
    shape = entry.get("shape")
    return ScanFindings(entry["name"], tuple(channels[i] for i in range(len(channels))),
                        tuple(int(s) for s in shape) if isinstance(shape, list) else None, split)


def read_finding_masks(path: Path, scan: ScanFindings) -> tuple[np.ndarray, np.ndarray]:
    """(masks (F, H, W, D) with each entity's value, affine of the spatial axes) of one scan's mask file."""
    import nibabel

    try:
        image = nibabel.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for unreadable files
        raise InputError(f"cannot read {path}: {error}. Check that it is a NIfTI mask file.") from error
    count = len(scan.findings)
    if data.ndim == 3 and count == 1:
        data = data[None]
    elif data.ndim != 4 or count not in (data.shape[0], data.shape[3]):
        raise InputError(f"{path} has shape {data.shape}, but the JSON lists {count} finding(s) for {scan.name}: "
                         "expected one channel per finding on the first or last axis. Check that the file belongs "
                         "to this scan and the JSON to this dataset.")
    elif data.shape[0] != count or (data.shape[3] == count and scan.shape is not None
                                    and tuple(data.shape[:3]) == scan.shape):
        data = np.moveaxis(data, 3, 0)
    if scan.shape is not None and tuple(data.shape[1:]) != scan.shape:
        raise InputError(f"{path}: the mask grid {tuple(data.shape[1:])} differs from the scan shape {scan.shape} "
                         "in the JSON. The masks must be on the scan's grid.")
    return data, np.asarray(image.affine, dtype=float)


def find_mask(folder: Path, name: str, split: str | None) -> Path | None:
    """``folder/<split>/<name>`` or ``folder/<name>``, as the dataset and the training loader lay them out."""
    for candidate in ([folder / split / name] if split else []) + [folder / name]:
        if candidate.is_file():
            return candidate
    return None
