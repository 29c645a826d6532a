"""One file that lists the prepared cache: training reads neither the raw data nor a JSON per case.

``preprocess`` writes ``<preprocessed_dir>/<dataset>.cases.json`` per dataset (its case ids and,
for nnU-Net layouts, its label names) and removes ``<preprocessed_dir>/manifest.json`` whenever it
changes the cache. The manifest is built from the cache alone (those lists, the case JSONs and
the failure markers) by one process, rank 0 of a training, and read by every other: per dataset
the label names, every cached case's metadata and the cases preprocessing failed on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import InputError
from Training.data.cache import CACHE_VERSION, cached_meta, files_unchanged, read_failure

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_RUN_PREPROCESS = ("Run `voxtell-train preprocess CONFIG --workers N` first (it resumes and can run as many "
                   "processes at once; see docs/training.md), then train.")


def case_list_path(root: Path, dataset: str) -> Path:
    return root / f"{dataset}.cases.json"


def write_case_list(root: Path, dataset: str, case_ids: list[str], labels: dict[str, int] | None) -> None:
    """The dataset's cases and labels as preprocess saw them; a change makes the manifest stale."""
    listing = {"cases": list(case_ids), "labels": labels}
    path = case_list_path(root, dataset)
    if _read_json(path) != listing:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(listing), encoding="utf-8"))
        remove_manifest(root)


def remove_manifest(root: Path) -> None:
    (root / MANIFEST).unlink(missing_ok=True)


def read_manifest(root: str | Path, datasets: list[str], check_files: bool = False) -> dict[str, Any] | None:
    """The manifest if it exists, is of this version and covers ``datasets``; else None.
    ``check_files``: also None when a listed case's cached file is gone or has another size
    (deleted or replaced by hand), so that it is rebuilt and names what to rerun, instead of
    training failing on that case hours later."""
    root = Path(root)
    manifest = _read_json(root / MANIFEST)
    if (not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION
            or manifest.get("cache_version") != CACHE_VERSION
            or any(name not in manifest.get("datasets", {}) for name in datasets)):
        return None
    if check_files and not all(files_unchanged(root / name, meta)
                               for name in datasets for meta in manifest["datasets"][name]["cases"].values()):
        return None
    return manifest


def build_manifest(root: str | Path, datasets: list[str]) -> dict[str, Any]:
    """Read the cache of ``datasets`` once and write the manifest; raises, naming what to run,
    when a case is neither cached nor marked failed."""
    root = Path(root)
    entries, missing, total = {}, [], 0
    for name in datasets:
        listing = _read_json(case_list_path(root, name))
        if not isinstance(listing, dict):
            raise InputError(f"Dataset {name} has not been preprocessed into {root} (no "
                             f"{case_list_path(root, name).name}). {_RUN_PREPROCESS}")
        cases, failed = {}, {}
        for case_id in listing["cases"]:
            total += 1
            meta = cached_meta(root / name, case_id)
            error = None if meta is not None else read_failure(root / name, case_id)
            if meta is not None:
                cases[case_id] = meta
            elif error is not None:
                failed[case_id] = error
            else:
                missing.append(f"{name}/{case_id}")
        entries[name] = {"labels": listing["labels"], "cases": cases, "failed": failed}
    if missing:
        raise InputError(f"The preprocessed cache {root} is incomplete: {len(missing)} of {total} case(s) missing or "
                         f"from an older cache version (e.g. {missing[:3]}). {_RUN_PREPROCESS}")
    manifest = {"version": MANIFEST_VERSION, "cache_version": CACHE_VERSION, "datasets": entries}
    atomic_write(root / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(manifest), encoding="utf-8"))
    return manifest


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
