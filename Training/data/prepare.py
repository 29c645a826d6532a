"""Open the configured datasets, fill the preprocessed cache and split train / validation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from VoxTellCore.errors import InputError
from Training.data.cache import CaseRecord, is_cached, read_case, write_case
from Training.data.instances import InstanceDataset
from Training.data.nnunet_raw import NnUNetRawDataset
from Training.data.rexgroundingct import ReXGroundingCTDataset
from Training.data.targets import Target
from Training.data.vocabulary import Vocabulary

SOURCES = {"nnunet": NnUNetRawDataset, "rexgroundingct": ReXGroundingCTDataset, "instances": InstanceDataset}


@dataclass
class PreparedData:
    train: list[CaseRecord]
    val: list[CaseRecord]
    fallback_negatives: dict[str, list[Target]]  # per dataset: concepts it never annotates

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


def open_dataset(spec: dict[str, Any]):
    spec = dict(spec)
    kind = spec.pop("type", "nnunet")
    if kind not in SOURCES or "name" not in spec or "path" not in spec:
        raise InputError(
            f"Dataset entry {spec} needs 'name', 'path' and a 'type' among {sorted(SOURCES)}; see docs/training.md."
        )
    try:
        return SOURCES[kind](**spec)
    except TypeError as exc:
        raise InputError(f"Dataset entry {spec['name']} ({kind}): {exc}. See docs/training.md for its keys.") from exc


def prepare_data(datasets: list[dict[str, Any]], vocabulary: Vocabulary, preprocessed_dir: str | Path,
                 val_fraction: float, seed: int, rank: int = 0, world_size: int = 1,
                 barrier: Callable[[], None] = lambda: None) -> PreparedData:
    """Each process preprocesses its share of the uncached cases; all then read every record."""
    if not datasets:
        raise InputError("The training config lists no datasets. Add entries to 'datasets'.")
    sources = [open_dataset(spec) for spec in datasets]
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise InputError(f"Dataset names must be unique, got {names}.")
    root = Path(preprocessed_dir)
    work = [(s, case) for s in sources for case in s.case_ids()]
    for index, (source, case_id) in enumerate(work):
        if index % world_size == rank and not is_cached(root / source.name, case_id):
            rng = np.random.default_rng([seed, index])
            write_case(root / source.name, case_id, source.load_case(case_id), rng)
    barrier()

    label_targets = {
        s.name: vocabulary.targets_for_dataset(s.name, s.labels) if isinstance(s, NnUNetRawDataset) else []
        for s in sources
    }
    train, val = [], []
    for source in sources:
        case_ids = source.case_ids()
        held_out = set(validation_cases(source.name, case_ids, val_fraction, seed))
        for case_id in case_ids:
            record = read_case(source.name, root / source.name, case_id, label_targets[source.name])
            (val if case_id in held_out else train).append(record)
    return PreparedData(train, val, _fallback_negatives(sources, label_targets, vocabulary))


def validation_cases(dataset: str, case_ids: list[str], fraction: float, seed: int) -> list[str]:
    """A fixed, seed-dependent fraction of a dataset (none for a single case)."""
    count = int(round(len(case_ids) * fraction)) if len(case_ids) > 1 else 0
    digest = int(hashlib.sha256(dataset.encode()).hexdigest()[:8], 16)
    order = np.random.default_rng([seed, digest]).permutation(sorted(case_ids))
    return [str(c) for c in order[:count]]


def _fallback_negatives(sources, label_targets: dict[str, list[Target]], vocabulary: Vocabulary) -> dict[str, list[Target]]:
    """Concepts a dataset never annotates: negatives for its cases that lack known-absent ones.

    They are only safe where the concept cannot be in the image (e.g. a brain structure in an
    abdominal CT); the vocabulary's concepts are used as they are, so keep it region-coherent.
    """
    everything: dict[str, Target] = {c.name: Target(c.names) for c in vocabulary.concepts.values()}
    for targets in label_targets.values():
        for target in targets:
            everything.setdefault(target.name, Target(target.names))
    fallback = {}
    for source in sources:
        own = {t.name for t in label_targets[source.name]}
        own |= {c.name for c in vocabulary.concepts.values() if source.name in c.datasets}
        fallback[source.name] = [t for name, t in sorted(everything.items()) if name not in own]
    return fallback
