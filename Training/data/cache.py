"""The preprocessed cache: one folder per dataset, four files per case.

``<case>_image.npy``      z-scored crop, float32 (1, S, A, R), memory-mapped when read
``<case>_seg.npy``        label map (1, S, A, R) or binary channels (C, S, A, R)
``<case>_locations.npz``  up to ``MAX_LOCATIONS`` voxel coordinates per label / channel
``<case>.json``           shape, present labels, channel targets, negatives, partial flag
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from VoxTellCore.preprocessing import bbox_slices, preprocess
from Training.data.targets import Target

MAX_LOCATIONS = 10000
CACHE_VERSION = 1


@dataclass
class RawCase:
    """A case as read from its source, before preprocessing (network orientation)."""

    image: np.ndarray  # (S, A, R)
    segmentation: np.ndarray  # (C, S, A, R): C == 1 label map, else binary channels
    kind: str = "labels"  # or "channels"
    channel_targets: list[Target] = field(default_factory=list)  # kind == "channels"
    negatives: list[Target] = field(default_factory=list)  # prompts known to be absent
    partial: bool = False  # annotations incomplete: no negatives, background unreliable


@dataclass
class CaseRecord:
    dataset: str
    case_id: str
    folder: Path
    shape: tuple[int, ...]
    kind: str
    present: tuple[int, ...]  # label values (labels) or channel indices with voxels
    positives: list[Target]
    negatives: list[Target]
    partial: bool

    @property
    def stem(self) -> Path:
        return self.folder / self.case_id

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        image = np.load(f"{self.stem}_image.npy", mmap_mode="r")
        segmentation = np.load(f"{self.stem}_seg.npy", mmap_mode="r")
        return image, segmentation

    def locations(self, target: Target) -> np.ndarray:
        """(n, 3) voxel coordinates inside ``target`` (a sample of at most MAX_LOCATIONS per part)."""
        with np.load(f"{self.stem}_locations.npz") as data:
            if target.channel is not None:
                keys = [f"c{target.channel}"]
            else:
                keys = [f"l{v}" for v in target.labels]
            parts = [data[k] for k in keys if k in data.files]
        return np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int32)


def is_cached(folder: Path, case_id: str) -> bool:
    return (folder / f"{case_id}.json").is_file()


def write_case(folder: Path, case_id: str, raw: RawCase, rng: np.random.Generator) -> None:
    """Preprocess exactly as inference does (crop to nonzero, z-score) and write the cache."""
    image, bbox, _ = preprocess(raw.image)
    segmentation = np.ascontiguousarray(raw.segmentation[(slice(None), *bbox_slices(bbox))])
    locations, present = {}, []
    if raw.kind == "labels":
        for value in np.unique(segmentation[0]):
            if value != 0:
                present.append(int(value))
                locations[f"l{value}"] = _sample_locations(segmentation[0] == value, rng)
    else:
        for channel in range(segmentation.shape[0]):
            if segmentation[channel].any():
                present.append(channel)
                locations[f"c{channel}"] = _sample_locations(segmentation[channel] > 0, rng)
    meta = {
        "version": CACHE_VERSION,
        "shape": list(image.shape[1:]),
        "kind": raw.kind,
        "present": present,
        "channel_targets": [_target_json(t) for t in raw.channel_targets],
        "negatives": [_target_json(t) for t in raw.negatives],
        "partial": raw.partial,
    }
    folder.mkdir(parents=True, exist_ok=True)
    _atomic(folder / f"{case_id}_image.npy", lambda f: np.save(f, image.astype(np.float32, copy=False)))
    _atomic(folder / f"{case_id}_seg.npy", lambda f: np.save(f, segmentation))
    _atomic(folder / f"{case_id}_locations.npz", lambda f: np.savez(f, **locations))
    # The JSON goes last: its presence marks a complete case.
    _atomic(folder / f"{case_id}.json", lambda f: f.write(json.dumps(meta).encode()))


def read_case(dataset: str, folder: Path, case_id: str, label_targets: list[Target]) -> CaseRecord:
    """The record of a cached case; label-map targets come from the vocabulary (not cached)."""
    meta = json.loads((folder / f"{case_id}.json").read_text(encoding="utf-8"))
    present = tuple(meta["present"])
    if meta["kind"] == "labels":
        positives = [t for t in label_targets if set(t.labels) & set(present)]
        negatives = [t for t in label_targets if not set(t.labels) & set(present)]
    else:
        channel_targets = [_target_from_json(t) for t in meta["channel_targets"]]
        positives = [t for t in channel_targets if t.channel in present]
        negatives = []  # a finding listed without voxels was not annotated: never a negative
    negatives += [_target_from_json(t) for t in meta["negatives"]]
    return CaseRecord(dataset, case_id, folder, tuple(meta["shape"]), meta["kind"], present,
                      positives, [] if meta["partial"] else negatives, bool(meta["partial"]))


def _sample_locations(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    coords = np.argwhere(mask).astype(np.int32)
    if len(coords) > MAX_LOCATIONS:
        coords = coords[np.sort(rng.choice(len(coords), MAX_LOCATIONS, replace=False))]
    return coords


def _target_json(target: Target) -> dict[str, Any]:
    return {"names": list(target.names), "channel": target.channel}


def _target_from_json(entry: dict[str, Any]) -> Target:
    return Target(tuple(entry["names"]), channel=entry.get("channel"))


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
