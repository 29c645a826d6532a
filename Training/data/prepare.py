"""Read the preprocessed cache of the configured datasets and split train / validation.

The cache is filled beforehand by ``voxtell-train preprocess`` (``preprocess.py``); training
refuses an incomplete cache instead of filling it inside the distributed job, and reads it
through its manifest (``manifest.py``), so it needs no access to the raw data.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from VoxTellCore.errors import InputError
from Training.data.cache import CaseRecord, read_case
from Training.data.manifest import build_manifest, read_manifest
from Training.data.negatives import out_of_view_negatives
from Training.data.sources import dataset_regions
from Training.data.targets import Target
from Training.data.vocabulary import Vocabulary


@dataclass
class PreparedData:
    train: list[CaseRecord]
    val: list[CaseRecord]
    fallback_negatives: dict[str, list[Target]]  # per dataset: concepts outside its field of view
    excluded: dict[str, dict[str, str]] = field(default_factory=dict)  # per dataset: case -> preprocessing error
    unpromptable: dict[str, list[str]] = field(default_factory=dict)  # per dataset: cases with no prompt to draw

    def prompt_names(self) -> list[str]:
        """Every prompt the sampler can draw: the embedding bank must hold all of them."""
        names = set()
        for case in self.train + self.val:
            for target in case.positives + case.negatives:
                names.update(target.names)
        for targets in self.fallback_negatives.values():
            for target in targets:
                names.update(target.names)
        return sorted(names)

    def cases_without_negatives(self) -> dict[str, tuple[int, int]]:
        """Per dataset: (training cases with no safe negative prompt, training cases)."""
        total = Counter(case.dataset for case in self.train)
        without = Counter(case.dataset for case in self.train
                          if not case.absent_pool(self.fallback_negatives.get(case.dataset, [])))
        return {name: (without[name], count) for name, count in total.items()}


def prepare_data(datasets: list[dict[str, Any]], vocabulary: Vocabulary, preprocessed_dir: str | Path,
                 val_fraction: float, seed: int, manifest: dict[str, Any] | None = None) -> PreparedData:
    """Every usable cached case's record, from the cache's manifest (built here if missing or stale,
    unless given); raises with what to run when the cache is incomplete. Cases that preprocessing
    failed on, and cases with no structure present and no safe negative, are left out and counted."""
    if not datasets:
        raise InputError("The training config lists no datasets. Add entries to 'datasets'.")
    names = [spec.get("name") for spec in datasets]
    if len(set(names)) != len(names) or None in names:
        raise InputError(f"Every dataset entry needs a unique 'name', got {names}.")
    root = Path(preprocessed_dir)
    manifest = manifest or read_manifest(root, names, check_files=True) or build_manifest(root, names)
    entries = manifest["datasets"]
    label_targets = {
        name: vocabulary.targets_for_dataset(name, entries[name]["labels"]) if entries[name]["labels"] is not None
        else [] for name in names
    }
    fallback = {
        spec["name"]: out_of_view_negatives(vocabulary, dataset_regions(spec), _annotated(spec["name"], label_targets,
                                                                                          vocabulary))
        for spec in datasets
    }
    data = PreparedData([], [], fallback)
    for name in names:
        entry = entries[name]
        if entry["failed"]:
            data.excluded[name] = dict(entry["failed"])
        if not entry["cases"]:
            raise InputError(f"Dataset {name}: preprocessing failed on every case (e.g. "
                             f"{next(iter(entry['failed'].items()), ('-', 'no cases'))}). Fix the data or the entry.")
        held_out = set(validation_cases(name, sorted({*entry["cases"], *entry["failed"]}), val_fraction, seed))
        for case_id, meta in entry["cases"].items():
            record = read_case(name, root / name, case_id, label_targets[name], meta)
            if not record.can_be_prompted(fallback[name]):
                data.unpromptable.setdefault(name, []).append(case_id)
            else:
                (data.val if case_id in held_out else data.train).append(record)
    if not data.train:
        raise InputError(
            f"No training case has a prompt to draw: {sum(map(len, data.unpromptable.values()))} case(s) have no "
            "structure present and no safe negative, "
            f"{sum(map(len, data.excluded.values()))} failed preprocessing, {len(data.val)} are held out for "
            "validation. Check the datasets' labels, 'region' and the vocabulary (docs/training.md).")
    return data


def validation_cases(dataset: str, case_ids: list[str], fraction: float, seed: int) -> list[str]:
    """A fixed, seed-dependent fraction of a dataset (none for a single case)."""
    count = int(round(len(case_ids) * fraction)) if len(case_ids) > 1 else 0
    digest = int(hashlib.sha256(dataset.encode()).hexdigest()[:8], 16)
    order = np.random.default_rng([seed, digest]).permutation(sorted(case_ids))
    return [str(c) for c in order[:count]]


def _annotated(dataset: str, label_targets: dict[str, list[Target]], vocabulary: Vocabulary) -> set[str]:
    own = {t.name for t in label_targets[dataset]}
    return own | {c.name for c in vocabulary.concepts.values() if dataset in c.datasets}
