"""Read the preprocessed cache of the configured datasets and split train / validation.

The cache is filled beforehand by ``voxtell-train preprocess`` (``preprocess.py``); training
refuses an incomplete cache instead of filling it inside the distributed job.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from VoxTellCore.errors import InputError
from Training.data.cache import CaseRecord, cached_meta, read_case
from Training.data.negatives import out_of_view_negatives
from Training.data.nnunet_raw import NnUNetRawDataset
from Training.data.sources import dataset_regions, open_dataset
from Training.data.targets import Target
from Training.data.vocabulary import Vocabulary


@dataclass
class PreparedData:
    train: list[CaseRecord]
    val: list[CaseRecord]
    fallback_negatives: dict[str, list[Target]]  # per dataset: concepts outside its field of view

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
                          if case.partial or not (case.negatives or self.fallback_negatives.get(case.dataset)))
        return {name: (without[name], count) for name, count in total.items()}


def prepare_data(datasets: list[dict[str, Any]], vocabulary: Vocabulary, preprocessed_dir: str | Path,
                 val_fraction: float, seed: int) -> PreparedData:
    """Every cached case's record; raises with what to run when the cache is incomplete."""
    if not datasets:
        raise InputError("The training config lists no datasets. Add entries to 'datasets'.")
    sources = [open_dataset(spec) for spec in datasets]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise InputError(f"Dataset names must be unique, got {names}.")
    root = Path(preprocessed_dir)
    cases = {s.name: s.case_ids() for s in sources}
    metas = {(name, case_id): cached_meta(root / name, case_id) for name, ids in cases.items() for case_id in ids}
    missing = [f"{name}/{case_id}" for (name, case_id), meta in metas.items() if meta is None]
    if missing:
        raise InputError(
            f"The preprocessed cache {root} is incomplete: {len(missing)} of {len(metas)} case(s) missing or "
            f"from an older cache version (e.g. {missing[:3]}). Run `voxtell-train preprocess CONFIG --workers N` "
            "first (it resumes and can run as many processes at once; see docs/training.md), then train."
        )

    label_targets = {
        s.name: vocabulary.targets_for_dataset(s.name, s.labels) if isinstance(s, NnUNetRawDataset) else []
        for s in sources
    }
    train, val = [], []
    for source in sources:
        held_out = set(validation_cases(source.name, cases[source.name], val_fraction, seed))
        for case_id in cases[source.name]:
            record = read_case(source.name, root / source.name, case_id, label_targets[source.name],
                               metas[source.name, case_id])
            (val if case_id in held_out else train).append(record)
    fallback = {
        spec["name"]: out_of_view_negatives(vocabulary, dataset_regions(spec), _annotated(spec["name"], label_targets,
                                                                                          vocabulary))
        for spec in datasets
    }
    return PreparedData(train, val, fallback)


def validation_cases(dataset: str, case_ids: list[str], fraction: float, seed: int) -> list[str]:
    """A fixed, seed-dependent fraction of a dataset (none for a single case)."""
    count = int(round(len(case_ids) * fraction)) if len(case_ids) > 1 else 0
    digest = int(hashlib.sha256(dataset.encode()).hexdigest()[:8], 16)
    order = np.random.default_rng([seed, digest]).permutation(sorted(case_ids))
    return [str(c) for c in order[:count]]


def _annotated(dataset: str, label_targets: dict[str, list[Target]], vocabulary: Vocabulary) -> set[str]:
    own = {t.name for t in label_targets[dataset]}
    return own | {c.name for c in vocabulary.concepts.values() if dataset in c.datasets}
