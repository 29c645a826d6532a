"""Which concepts may be a dataset's negative prompts although the dataset never annotates them.

A negative prompt must name a structure known to be absent. Each case brings its own: structures
its dataset labels but the case lacks, and a finding's locations where the case has none. A
concept the dataset never annotates is only known to be absent when it cannot be in the field of
view: none of the concept's regions is among the dataset's regions. A dataset without a region
(or covering the whole body) gets no such negatives, and a concept without regions is never one.
"""

from __future__ import annotations

from typing import Iterable

from Training.data.targets import Target
from Training.data.vocabulary import WHOLE_BODY, Vocabulary


def can_be_visible(concept_regions: Iterable[str], dataset_regions: Iterable[str]) -> bool:
    """True unless both region lists are known and share no region (whole body shares all)."""
    concept_regions, dataset_regions = set(concept_regions), set(dataset_regions)
    if not concept_regions or not dataset_regions or WHOLE_BODY in concept_regions | dataset_regions:
        return True
    return bool(concept_regions & dataset_regions)


def out_of_view_negatives(vocabulary: Vocabulary, dataset_regions: Iterable[str],
                          annotated: set[str]) -> list[Target]:
    """Vocabulary concepts outside ``annotated`` (concept names) that cannot be in the dataset's view."""
    dataset_regions = tuple(dataset_regions)
    return [Target(concept.names) for name, concept in sorted(vocabulary.concepts.items())
            if name not in annotated and not can_be_visible(concept.regions, dataset_regions)]
