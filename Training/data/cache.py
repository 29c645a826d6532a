"""The preprocessed cache: one folder per dataset, four files per case.

``<case>_image.b2nd``     z-scored crop, float32 (1, S, A, R), blosc2-compressed in chunks
``<case>_seg.b2nd``       label map (1, S, A, R) or binary channels (C, S, A, R), the same way
``<case>_locations.npz``  up to ``MAX_LOCATIONS`` voxel coordinates per label / channel
``<case>.json``           shape, present labels, channel targets, negatives, partial flag, file sizes

Compressed, chunked arrays as nnU-Net v2 stores its preprocessed data: a crop decompresses only
the blocks it touches. The files are memory-mapped with the kernel's read-ahead: a cold 308³
crop reads about twice the bytes it needs but is 6-9x faster than with read-ahead off
(``MADV_RANDOM``, one 4 kB read per page fault), and as fast as ``blosc2.open`` within the
measurement's noise (bench/loader.py, docs/training.md).
Every file is written atomically and the JSON last, with the sizes of the others: a case
whose JSON is missing, of another cache version, or does not match its files is not cached.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blosc2
import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.preprocessing import bbox_slices, preprocess
from Training.data.targets import Target

MAX_LOCATIONS = 10000
CACHE_VERSION = 2  # 1: uncompressed .npy
BLOCK_EDGE = 32  # voxels per block axis: 128 KB of float32, decompressed as a unit
CHUNK_EDGE = 64  # voxels per chunk axis: 1 MB of float32
COMPRESSION = {"codec": blosc2.Codec.ZSTD, "clevel": 3, "filters": [blosc2.Filter.SHUFFLE], "nthreads": 1}
ARRAY_FILES = ("image", "seg")
FAILED_SUFFIX = ".failed.txt"  # not .json: the case JSONs are the only *.json of a dataset folder


@dataclass
class RawCase:
    """A case as read from its source, before preprocessing (network orientation)."""

    image: np.ndarray  # (S, A, R)
    segmentation: np.ndarray  # (C, S, A, R): C == 1 label map, else binary channels
    kind: str = "labels"  # or "channels"
    channel_targets: list[Target] = field(default_factory=list)  # kind == "channels"
    negatives: list[Target] = field(default_factory=list)  # prompts known to be absent
    partial: bool = False  # annotations incomplete: no negatives, background unreliable


class CachedArray:
    """A cached (C, S, A, R) array, memory-mapped; slicing returns numpy arrays."""

    def __init__(self, path: str | Path) -> None:
        with open(path, "rb") as handle:
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._array = blosc2.ndarray_from_cframe(self._map, copy=False)  # reads from self._map, kept alive here

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._array.dtype)

    def __getitem__(self, index: Any) -> np.ndarray:
        return self._array[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self._array[:]
        return array if dtype is None else array.astype(dtype)


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

    def absent_pool(self, fallback_negatives: list[Target]) -> list[Target]:
        """The negative prompts this case may draw: its own known-absent structures, else (unless
        partially labelled) the dataset's concepts outside the field of view."""
        return self.negatives or ([] if self.partial else fallback_negatives)

    def can_be_prompted(self, fallback_negatives: list[Target]) -> bool:
        """False for a case with no present structure and no safe negative: nothing to draw a prompt from."""
        return bool(self.positives or self.absent_pool(fallback_negatives))

    def arrays(self) -> tuple[CachedArray, CachedArray]:
        return CachedArray(f"{self.stem}_image.b2nd"), CachedArray(f"{self.stem}_seg.b2nd")

    def locations(self, target: Target) -> np.ndarray:
        """(n, 3) voxel coordinates inside ``target`` (a sample of at most MAX_LOCATIONS per part)."""
        with np.load(f"{self.stem}_locations.npz") as data:
            if target.channel is not None:
                keys = [f"c{target.channel}"]
            else:
                keys = [f"l{v}" for v in target.labels]
            parts = [data[k] for k in keys if k in data.files]
        return np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int32)


def case_files(case_id: str) -> list[str]:
    return [f"{case_id}_image.b2nd", f"{case_id}_seg.b2nd", f"{case_id}_locations.npz", f"{case_id}.json"]


def failure_path(folder: Path, case_id: str) -> Path:
    """Marks a case that preprocessing failed on (the file holds the error): excluded from training
    until a rerun of preprocess succeeds on it, which removes the file."""
    return folder / f"{case_id}{FAILED_SUFFIX}"


def read_failure(folder: Path, case_id: str) -> str | None:
    """The error of a case whose preprocessing failed, or None."""
    try:
        return failure_path(folder, case_id).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def cached_meta(folder: Path, case_id: str) -> dict[str, Any] | None:
    """The case's metadata if it is completely cached in this cache version, else None."""
    try:
        meta = json.loads((folder / f"{case_id}.json").read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_VERSION:
            return None
        if not files_unchanged(folder, meta):
            return None  # truncated or replaced after the JSON was written
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return meta


def files_unchanged(folder: Path, meta: dict[str, Any]) -> bool:
    """Every cached file the case's metadata lists is there with the size it was written with."""
    try:
        return all((folder / name).stat().st_size == size for name, size in meta["files"].items())
    except (OSError, KeyError, AttributeError):
        return False


def is_cached(folder: Path, case_id: str) -> bool:
    return cached_meta(folder, case_id) is not None


def chunking(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(chunks, blocks) of a (C, S, A, R) array: one channel each, spatial edges as above."""
    spatial = shape[1:]
    return (1, *(min(CHUNK_EDGE, s) for s in spatial)), (1, *(min(BLOCK_EDGE, s) for s in spatial))


def write_array(path: Path, array: np.ndarray) -> None:
    """A blosc2 file, written atomically."""
    chunks, blocks = chunking(array.shape)
    atomic_write(path, lambda tmp: blosc2.asarray(np.ascontiguousarray(array), urlpath=tmp, mode="w", chunks=chunks,
                                                  blocks=blocks, cparams=COMPRESSION), ".tmp.b2nd")


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
    folder.mkdir(parents=True, exist_ok=True)
    for name in case_files(case_id):  # temporaries of a killed earlier attempt
        for stale in folder.glob(f".{name}.*.tmp*"):
            stale.unlink(missing_ok=True)
    write_array(folder / f"{case_id}_image.b2nd", image.astype(np.float32, copy=False))
    write_array(folder / f"{case_id}_seg.b2nd", segmentation)
    atomic_write(folder / f"{case_id}_locations.npz", lambda tmp: np.savez(tmp, **locations), ".tmp.npz")
    meta = {
        "version": CACHE_VERSION,
        "shape": list(image.shape[1:]),
        "kind": raw.kind,
        "present": present,
        "channel_targets": [_target_json(t) for t in raw.channel_targets],
        "negatives": [_target_json(t) for t in raw.negatives],
        "partial": raw.partial,
        "files": {name: (folder / name).stat().st_size for name in case_files(case_id)[:3]},
    }
    # The JSON goes last: its presence marks a complete case.
    atomic_write(folder / f"{case_id}.json", lambda tmp: Path(tmp).write_text(json.dumps(meta), encoding="utf-8"))
    failure_path(folder, case_id).unlink(missing_ok=True)  # an earlier attempt's failure


def read_case(dataset: str, folder: Path, case_id: str, label_targets: list[Target],
              meta: dict[str, Any] | None = None) -> CaseRecord:
    """The record of a cached case; label-map targets come from the vocabulary (not cached)."""
    meta = meta or json.loads((folder / f"{case_id}.json").read_text(encoding="utf-8"))
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
