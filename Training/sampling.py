"""Batches of (patch, prompts, binary targets), as VoxTell samples them.

Per image: ``positives_per_image`` prompts of structures present in the case and
``negatives_per_image`` of absent ones (empty targets; before ``negatives_from_iteration``
those slots hold present structures too). With ``balance_prompts`` a
present structure is drawn with a weight inverse to the number of cases that hold it, so
rare findings are prompted about as often as the organs every case has. With
``hard_negative_probability`` a negative slot holds, when the case has one, a *hard* negative:
an absent part of a finding the case has elsewhere ("nodule in the left lower lobe" in a case
whose only nodule is in the right lung), which only the prompt's location tells apart. A
prompt uses the concept's default name with ``default_name_probability`` (0.25), a
rephrasing otherwise. With ``foreground_probability`` (0.85) the patch is centred on a random
voxel of one of the sampled positive structures, else it is placed at random.

Every batch is drawn from its own generator seeded by (seed, rank, iteration), so a batch
depends only on its index: runs resume exactly and background workers may produce batches
in any process without changing them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from Training.augmentation import Augmenter
from Training.data.cache import CaseRecord
from Training.data.targets import Target


@dataclass
class PromptSlot:
    text: str
    target: Target
    positive: bool
    weight: float  # 0 for a filler slot whose target is unknown (partially labelled cases)


@dataclass
class Batch:
    image: torch.Tensor  # (B, 1, *patch) float32
    target: torch.Tensor  # (B, K, *patch) uint8
    weight: torch.Tensor  # (B, K) float32: loss weight per prompt slot
    prompts: list[list[str]]  # B lists of K prompt texts
    foreground: list[bool]  # patch centred on a positive structure
    skipped_negatives: int = 0  # negative slots without a safe negative (loss weight 0)

    def pin_memory(self) -> "Batch":
        """Page-locked copies, so that host-to-GPU copies can be asynchronous (DataLoader calls this)."""
        return Batch(self.image.pin_memory(), self.target.pin_memory(), self.weight.pin_memory(), self.prompts,
                     self.foreground, self.skipped_negatives)


def choose_name(target: Target, rng: np.random.Generator, default_probability: float) -> str:
    if len(target.names) == 1 or rng.random() < default_probability:
        return target.names[0]
    return target.names[1 + int(rng.integers(len(target.names) - 1))]


def sample_prompts(case: CaseRecord, fallback_negatives: list[Target], rng: np.random.Generator,
                   positives: int, negatives: int, default_probability: float,
                   positive_weights: np.ndarray | None = None, hard_negatives: list[Target] | None = None,
                   hard_probability: float = 0.0) -> list[PromptSlot]:
    """``positives`` present structures (repeating when the case has fewer; drawn with
    ``positive_weights`` if given, else uniformly), then ``negatives`` absent ones, each one of
    ``hard_negatives`` with ``hard_probability``; partially labelled cases get zero-weight
    fillers instead."""
    slots = []
    pool = case.positives
    if pool:
        p = None if positive_weights is None else positive_weights / positive_weights.sum()
        picks = rng.choice(len(pool), positives, replace=len(pool) < positives, p=p)
        slots += [PromptSlot(choose_name(pool[i], rng, default_probability), pool[i], True, 1.0) for i in picks]
    absent_pool = case.absent_pool(fallback_negatives)
    if not pool and not absent_pool:
        raise ValueError(f"Case {case.dataset}/{case.case_id} has no structure present and no safe negative: "
                         "nothing to draw a prompt from (prepare_data leaves such cases out).")
    missing = positives - len(slots) + negatives
    if absent_pool:
        picks = rng.choice(len(absent_pool), missing, replace=len(absent_pool) < missing)
        absent = [absent_pool[i] for i in picks]
        if hard_negatives and hard_probability > 0:
            absent = [hard_negatives[int(rng.integers(len(hard_negatives)))] if rng.random() < hard_probability
                      else target for target in absent]
        slots += [PromptSlot(choose_name(target, rng, default_probability), target, False, 1.0) for target in absent]
    while len(slots) < positives + negatives:  # nothing known absent: repeat a slot, ignored by the loss
        source = slots[int(rng.integers(len(slots)))]
        slots.append(PromptSlot(source.text, source.target, source.positive, 0.0))
    return slots


def crop_with_padding(array: np.ndarray, start: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """``array[:, start:start+size]`` over the spatial axes, zero-padded where it leaves the array."""
    spatial = np.array(array.shape[1:])
    lower = np.maximum(start, 0)
    upper = np.minimum(start + np.array(size), spatial)
    inside = np.asarray(array[(slice(None), *(slice(a, b) for a, b in zip(lower, upper)))])
    pad = [(0, 0)] + [(int(a - s), int(s + n - b)) for s, n, a, b in zip(start, size, lower, upper)]
    return np.pad(inside, pad) if any(p != (0, 0) for p in pad) else inside


def patch_start(case: CaseRecord, slots: list[PromptSlot], rng: np.random.Generator, size: tuple[int, ...],
                foreground_probability: float) -> tuple[np.ndarray, bool]:
    shape = np.array(case.shape)
    size_array = np.array(size)
    candidates = [s.target for s in slots if s.positive and s.weight > 0]
    if candidates and rng.random() < foreground_probability:
        locations = case.locations(candidates[int(rng.integers(len(candidates)))])
        if len(locations):
            centre = locations[int(rng.integers(len(locations)))]
            return centre - size_array // 2, True
    low = np.minimum(0, shape - size_array)
    high = np.maximum(0, shape - size_array)
    return np.array([int(rng.integers(a, b + 1)) for a, b in zip(low, high)]), False


class BatchSampler:
    def __init__(self, cases: list[CaseRecord], fallback_negatives: dict[str, list[Target]], *,
                 patch_size: tuple[int, ...], batch_size: int, positives: int, negatives: int,
                 default_name_probability: float, foreground_probability: float, augmenter: Augmenter | None,
                 seed: int, rank: int, balance_prompts: bool = False, negatives_from_iteration: int = 0,
                 hard_negative_probability: float = 0.0) -> None:
        if not cases:
            raise ValueError("no cases to sample from")
        unpromptable = [f"{c.dataset}/{c.case_id}" for c in cases
                        if not c.can_be_prompted(fallback_negatives.get(c.dataset, []))]
        if unpromptable:
            raise ValueError(f"{len(unpromptable)} case(s) have no structure present and no safe negative, e.g. "
                             f"{unpromptable[:3]}: leave them out (prepare_data does).")
        self.cases = cases
        self.fallback_negatives = fallback_negatives
        self.patch_size = tuple(patch_size)
        self.batch_size = batch_size
        self.positives, self.negatives = positives, negatives
        self.default_name_probability = default_name_probability
        self.foreground_probability = foreground_probability
        self.augmenter = augmenter
        self.seed, self.rank = seed, rank
        self.balance_prompts = balance_prompts
        self.negatives_from_iteration = negatives_from_iteration
        self.cases_holding = Counter((case.dataset, t.name) for case in cases for t in case.positives)
        self.hard_negative_probability = hard_negative_probability
        cases_per_dataset = Counter(case.dataset for case in cases)
        self._optional = {key for key, n in self.cases_holding.items() if n < cases_per_dataset[key[0]]}
        self._hard_negatives: dict[tuple[str, str], list[Target]] = {}

    def positive_weights(self, case: CaseRecord) -> np.ndarray | None:
        """1 / (number of cases holding the structure) per present structure, or None (uniform)."""
        if not self.balance_prompts or not case.positives:
            return None
        return np.array([1.0 / self.cases_holding[case.dataset, t.name] for t in case.positives])

    def hard_negatives(self, case: CaseRecord) -> list[Target]:
        """Absent structures whose labels all belong to one present structure that some cases
        lack (a finding, never an organ every case has): the finding's other locations."""
        key = (case.dataset, case.case_id)
        if key not in self._hard_negatives:
            findings = [set(t.labels) for t in case.positives if t.labels and (case.dataset, t.name) in self._optional]
            self._hard_negatives[key] = [t for t in case.negatives
                                         if t.labels and any(set(t.labels) <= labels for labels in findings)]
        return self._hard_negatives[key]

    def batch(self, iteration: int) -> Batch:
        rng = np.random.default_rng([self.seed, self.rank, iteration])
        negatives = self.negatives if iteration >= self.negatives_from_iteration else 0
        positives = self.positives + self.negatives - negatives
        samples = [self.sample(rng, positives, negatives) for _ in range(self.batch_size)]
        return Batch(
            image=torch.stack([s[0] for s in samples]),
            target=torch.stack([s[1] for s in samples]),
            weight=torch.tensor([[slot.weight for slot in s[2]] for s in samples], dtype=torch.float32),
            prompts=[[slot.text for slot in s[2]] for s in samples],
            foreground=[s[3] for s in samples],
            skipped_negatives=sum(slot.weight == 0 for s in samples for slot in s[2][positives:]),
        )

    def sample(self, rng: np.random.Generator, positives: int,
               negatives: int) -> tuple[torch.Tensor, torch.Tensor, list[PromptSlot], bool]:
        case = self.cases[int(rng.integers(len(self.cases)))]
        slots = sample_prompts(case, self.fallback_negatives.get(case.dataset, []), rng, positives,
                               negatives, self.default_name_probability, self.positive_weights(case),
                               self.hard_negatives(case), self.hard_negative_probability)
        size = self.augmenter.input_size if self.augmenter else self.patch_size
        start, foreground = patch_start(case, slots, rng, size, self.foreground_probability)
        image, segmentation = case.arrays()
        image = crop_with_padding(image, start, size).astype(np.float32, copy=False)
        segmentation = crop_with_padding(segmentation, start, size)
        target = np.stack([slot.target.mask(segmentation) for slot in slots]).astype(np.uint8)
        image_t, target_t = torch.from_numpy(image), torch.from_numpy(target)
        if self.augmenter:
            image_t, target_t = self.augmenter(image_t, target_t, seed=int(rng.integers(2**31)))
        return image_t, target_t, slots, foreground
