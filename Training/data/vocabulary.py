"""The concept vocabulary: one concept per anatomical or pathological structure, with its
rephrasings and, per dataset, the label(s) that make it up.

Format (``version`` 1)::

    {"version": 1,
     "concepts": [
        {"name": "kidneys",
         "synonyms": ["both kidneys", "bilateral kidneys", "renal organs"],
         "regions": ["thorax", "abdomen", "pelvis"],
         "datasets": {"Dataset001_Phantom": ["left kidney", "right kidney"]}}]}

``regions``: the body regions (``REGIONS``) in whose scans the concept can be visible; a concept
without regions is never used as a negative for a dataset that does not annotate it (see
``Training/data/negatives.py``).

A dataset entry is one label name of that dataset's ``dataset.json`` or a list of names
whose union is the concept. Labels that no concept maps become concepts of their own,
named after the label (underscores read as spaces), so a new dataset trains without
vocabulary work; the vocabulary adds rephrasings and cross-dataset merges. A label that a
concept references (alone or in a union) is not a concept of its own unless one maps it
alone: partition labels such as "lobe parenchyma without its nodule" stay internal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from VoxTellCore.errors import InputError
from Training.data.targets import Target

VERSION = 1
WHOLE_BODY = "whole body"
REGIONS = ("head", "neck", "thorax", "abdomen", "pelvis", "upper limb", "lower limb", WHOLE_BODY)


@dataclass(frozen=True)
class Concept:
    name: str
    synonyms: tuple[str, ...]
    datasets: dict[str, tuple[str, ...]]
    regions: tuple[str, ...] = ()  # where it can be visible; () unknown

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.synonyms)


class Vocabulary:
    """Concepts by name; a concept named in several files merges their synonyms and datasets."""

    def __init__(self, concepts: Iterable[Concept] = ()) -> None:
        self.concepts: dict[str, Concept] = {}
        for concept in concepts:
            self.add(concept)

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> "Vocabulary":
        vocabulary = cls()
        for path in paths:
            for concept in read_concepts(Path(path)):
                vocabulary.add(concept)
        return vocabulary

    def add(self, concept: Concept) -> None:
        known = self.concepts.get(concept.name)
        if known:
            synonyms = tuple(dict.fromkeys(known.synonyms + concept.synonyms))
            regions = tuple(dict.fromkeys(known.regions + concept.regions))
            concept = Concept(concept.name, synonyms, {**known.datasets, **concept.datasets}, regions)
        self.concepts[concept.name] = concept

    def targets_for_dataset(self, dataset: str, labels: dict[str, int]) -> list[Target]:
        """Every concept of ``dataset`` as a label-map target (mapped ones and leftovers)."""
        targets, used = [], set()
        for concept in self.concepts.values():
            label_names = concept.datasets.get(dataset)
            if not label_names:
                continue
            unknown = [n for n in label_names if n not in labels]
            if unknown:
                raise InputError(
                    f"Vocabulary concept '{concept.name}' maps dataset {dataset} to label(s) {unknown}, "
                    f"which its dataset.json does not define (it has {sorted(labels)}). Fix the label names."
                )
            used.update(label_names)
            targets.append(Target(concept.names, labels=tuple(sorted(labels[n] for n in label_names))))
        for label_name, value in labels.items():
            if value != 0 and label_name not in used:
                targets.append(Target((normalise_label_name(label_name),), labels=(int(value),)))
        return targets

    def all_names(self) -> set[str]:
        return {name for concept in self.concepts.values() for name in concept.names}


def normalise_label_name(label: str) -> str:
    return " ".join(label.replace("_", " ").split()).lower()


def parse_regions(value: Any, where: str) -> tuple[str, ...]:
    """A region name or a list of them, checked against ``REGIONS``."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or set(names) - set(REGIONS):
        raise InputError(f"{where}: regions must be one or a list of {list(REGIONS)}, got {value!r}.")
    return tuple(dict.fromkeys(names))


def read_concepts(path: Path) -> list[Concept]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"Vocabulary file {path} does not exist. Fix 'vocabulary' in the training config.")
    except json.JSONDecodeError as exc:
        raise InputError(f"Vocabulary file {path} is not valid JSON ({exc}).") from exc
    if not isinstance(raw, dict) or raw.get("version") != VERSION or not isinstance(raw.get("concepts"), list):
        raise InputError(
            f"Vocabulary file {path} must be {{\"version\": {VERSION}, \"concepts\": [...]}}; see docs/training.md."
        )
    return [_concept(entry, path) for entry in raw["concepts"]]


def _concept(entry: Any, path: Path) -> Concept:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise InputError(f"Vocabulary file {path}: every concept needs a non-empty 'name' (got {entry!r}).")
    synonyms = entry.get("synonyms", [])
    if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip() for s in synonyms):
        raise InputError(f"Vocabulary file {path}: 'synonyms' of '{entry['name']}' must be a list of strings.")
    datasets = {}
    for dataset, spec in (entry.get("datasets") or {}).items():
        names = [spec] if isinstance(spec, str) else spec
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InputError(
                f"Vocabulary file {path}: '{entry['name']}' maps {dataset} to {spec!r}; use a label name "
                "or a list of label names (their union)."
            )
        datasets[dataset] = tuple(names)
    name = entry["name"].strip().lower()
    rephrasings = tuple(dict.fromkeys(s.strip().lower() for s in synonyms if s.strip().lower() != name))
    regions = parse_regions(entry.get("regions", []), f"Vocabulary file {path}, concept '{name}'")
    return Concept(name=name, synonyms=rephrasings, datasets=datasets, regions=regions)
