"""Segmentation metrics: Dice, normalised surface Dice and the ReXGroundingCT finding metrics.

All functions take binary masks as numpy arrays (any nonzero voxel is foreground) of
the same shape. Empty masks follow one convention throughout: when prediction and
target are both empty the score is 1.0 (nothing to find, nothing found), when only one
of them is empty the score is 0.0.

ReXGroundingCT (Baharoon et al., https://rexrank.ai/ReXGroundingCT) scores a model per
*finding* (one report phrase, one ground-truth mask):

- global Dice: the Dice of each finding, averaged over the findings of a case, then
  over the cases;
- hit rate: the share of findings whose Dice is at least 0.1;
- instance precision / recall / F1: an instance is a connected component of a mask
  (18-connected by default) or, in a labelled mask (ReXGroundingCT stores one value per
  entity), one label. Predicted components smaller than 10 voxels are ignored (the Dice
  still counts them). Predicted and ground-truth instances of the same finding are matched one-to-one,
  greedily by decreasing Dice (see `match_instances`); a match with Dice >= 0.2 is a
  true positive, unmatched predicted instances are false positives and unmatched
  ground-truth instances false negatives. The counts are summed over all findings
  before precision and recall are computed (micro average).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

HIT_DICE = 0.1
INSTANCE_DICE = 0.2
# Defaults of the instance metrics. The official scorer (rexrank_eval.py, on the dataset's gated Hugging Face
# page) takes a minimum size and a connectivity; public wrappers of it pass 10 voxels and connectivity 2
# (the 18-neighbourhood), so the same numbers are the defaults here.
CONNECTIVITY = 18
MIN_INSTANCE_VOXELS = 10
_STRUCTURE_RANK = {6: 1, 18: 2, 26: 3}


def dice(prediction: np.ndarray, target: np.ndarray) -> float:
    """Dice coefficient of two binary masks.

    Both empty gives 1.0; exactly one empty gives 0.0.
    """
    prediction, target = _as_binary_pair(prediction, target)
    total = int(prediction.sum()) + int(target.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(prediction, target).sum()) / total


def surface_dice(prediction: np.ndarray, target: np.ndarray, spacing: Sequence[float],
                 tolerance_mm: float = 2.0) -> float:
    """Normalised surface Dice: the share of both surfaces lying within `tolerance_mm` of the other.

    `spacing` gives the voxel size in mm along each array axis (for a SimpleITK array
    in KJI order that is the image spacing reversed). Computed with MONAI's
    `compute_surface_dice`, which returns NaN when both masks are empty; here both
    empty gives 1.0 and exactly one empty gives 0.0, like `dice`.
    """
    from monai.metrics import compute_surface_dice
    import torch

    prediction, target = _as_binary_pair(prediction, target)
    if len(spacing) != prediction.ndim:
        raise ValueError(f"spacing has {len(spacing)} values for a {prediction.ndim}-D mask")
    has_prediction, has_target = bool(prediction.any()), bool(target.any())
    if not (has_prediction and has_target):
        return 1.0 if has_prediction == has_target else 0.0

    prediction, target = _crop_to_union(prediction, target)

    def one_hot(mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(mask[None, None].astype(np.float32))

    with warnings.catch_warnings():
        # MONAI 1.5+ passes a deprecated argument to itself; not something callers can act on.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        score = compute_surface_dice(one_hot(prediction), one_hot(target), [float(tolerance_mm)],
                                     include_background=True, spacing=[float(s) for s in spacing])
    return float(score.item())


def connected_instances(mask: np.ndarray, connectivity: int = CONNECTIVITY,
                        min_voxels: int = 0) -> tuple[np.ndarray, int]:
    """Label the instances of a mask: its labels when it holds several, else its connected components.

    `connectivity` is 6, 18 or 26 (3-D neighbourhoods); components smaller than
    `min_voxels` are dropped. Returns the label array (0 = background, 1..n) and n.
    """
    mask = np.asarray(mask)
    values = np.unique(mask[mask != 0])
    if len(values) > 1:  # a labelled mask: one instance per label (ReXGroundingCT's entities)
        labels = np.searchsorted(values, mask) + 1
        labels[mask == 0] = 0
        count = len(values)
    else:
        if connectivity not in _STRUCTURE_RANK:
            raise ValueError(f"connectivity {connectivity} is not one of 6, 18, 26")
        structure = ndimage.generate_binary_structure(mask.ndim, min(_STRUCTURE_RANK[connectivity], mask.ndim))
        labels, count = ndimage.label(mask != 0, structure=structure)
    if min_voxels > 1 and count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = np.flatnonzero(sizes[1:] >= min_voxels) + 1
        relabel = np.zeros(count + 1, dtype=np.int64)
        relabel[keep] = np.arange(1, len(keep) + 1)
        labels, count = relabel[labels], len(keep)
    return labels, int(count)


@dataclass(frozen=True)
class InstanceMatch:
    """Result of matching predicted to ground-truth instances of one finding."""

    true_positives: int
    false_positives: int
    false_negatives: int
    pairs: tuple[tuple[int, int, float], ...]  # (predicted label, ground-truth label, Dice)


def instance_dice_matrix(prediction_labels: np.ndarray, n_prediction: int,
                         target_labels: np.ndarray, n_target: int) -> np.ndarray:
    """Dice of every (predicted instance, ground-truth instance) pair, shape (n_prediction, n_target)."""
    prediction_sizes = np.bincount(prediction_labels.ravel(), minlength=n_prediction + 1)[1:]
    target_sizes = np.bincount(target_labels.ravel(), minlength=n_target + 1)[1:]
    overlap = (prediction_labels > 0) & (target_labels > 0)
    pair_index = (prediction_labels[overlap].astype(np.int64) - 1) * n_target + (target_labels[overlap] - 1)
    intersections = np.bincount(pair_index, minlength=n_prediction * n_target)
    intersections = intersections.reshape(n_prediction, n_target)
    sums = prediction_sizes[:, None] + target_sizes[None, :]
    return 2.0 * intersections / np.maximum(sums, 1)


def match_instances(prediction: np.ndarray, target: np.ndarray, min_dice: float = INSTANCE_DICE,
                    connectivity: int = CONNECTIVITY, min_voxels: int = MIN_INSTANCE_VOXELS) -> InstanceMatch:
    """Match the instances of `prediction` and `target` one-to-one (see `connected_instances`).

    Predicted components below `min_voxels` are not instances; ground-truth ones always are.

    Greedy matching: all pairs are visited by decreasing Dice and a pair is accepted
    when neither instance is matched yet and its Dice is at least `min_dice`. Accepted
    pairs are true positives; every other predicted instance is a false positive and
    every other ground-truth instance a false negative.
    """
    prediction, target = np.asarray(prediction), np.asarray(target)
    _as_binary_pair(prediction, target)  # same shape
    prediction_labels, n_prediction = connected_instances(prediction, connectivity, min_voxels)
    target_labels, n_target = connected_instances(target, connectivity)
    pairs: list[tuple[int, int, float]] = []
    if n_prediction and n_target:
        scores = instance_dice_matrix(prediction_labels, n_prediction, target_labels, n_target)
        used_prediction, used_target = set(), set()
        for flat in np.argsort(-scores, axis=None, kind="stable"):
            p, t = divmod(int(flat), n_target)
            if scores[p, t] < min_dice:
                break
            if p not in used_prediction and t not in used_target:
                used_prediction.add(p)
                used_target.add(t)
                pairs.append((p + 1, t + 1, float(scores[p, t])))
    return InstanceMatch(true_positives=len(pairs), false_positives=n_prediction - len(pairs),
                         false_negatives=n_target - len(pairs), pairs=tuple(pairs))


@dataclass(frozen=True)
class FindingResult:
    """The ReXGroundingCT numbers for one finding (one prediction against one ground-truth mask)."""

    dice: float
    true_positives: int
    false_positives: int
    false_negatives: int


def score_finding(prediction: np.ndarray, target: np.ndarray, connectivity: int = CONNECTIVITY,
                  min_voxels: int = MIN_INSTANCE_VOXELS) -> FindingResult:
    """Dice and instance counts of one finding."""
    match = match_instances(prediction, target, connectivity=connectivity, min_voxels=min_voxels)
    return FindingResult(dice(prediction, target), match.true_positives,
                         match.false_positives, match.false_negatives)


@dataclass(frozen=True)
class FindingScores:
    """ReXGroundingCT summary over a set of cases."""

    global_dice: float
    hit_rate: float
    instance_precision: float
    instance_recall: float
    instance_f1: float
    n_cases: int
    n_findings: int


def summarize_findings(cases: Mapping[str, Sequence[FindingResult]]) -> FindingScores:
    """Aggregate per-finding results (`{case: [FindingResult, ...]}`) into the ReXGroundingCT metrics.

    Global Dice: the mean of the Dice of a case's findings, then the mean of these case
    means (each case weighs the same, whatever its number of findings). Hit rate: over all
    findings of all cases. Instance counts are summed over all findings, then the ratios
    taken (micro average). Cases without findings are ignored. Precision (recall) with no predicted
    (ground-truth) instances at all is 1.0 when the other count is also zero, else 0.0.
    """
    cases = {case: list(results) for case, results in cases.items() if results}
    findings = [result for results in cases.values() for result in results]
    if not findings:
        raise ValueError("no findings to summarise")
    case_means = [np.mean([result.dice for result in results]) for results in cases.values()]
    true_positives = sum(result.true_positives for result in findings)
    false_positives = sum(result.false_positives for result in findings)
    false_negatives = sum(result.false_negatives for result in findings)
    precision = _ratio(true_positives, true_positives + false_positives, other_missed=false_negatives)
    recall = _ratio(true_positives, true_positives + false_negatives, other_missed=false_positives)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return FindingScores(
        global_dice=float(np.mean(case_means)),
        hit_rate=sum(result.dice >= HIT_DICE for result in findings) / len(findings),
        instance_precision=precision, instance_recall=recall, instance_f1=f1,
        n_cases=len(cases), n_findings=len(findings))


def finding_metrics(cases: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]]) -> FindingScores:
    """ReXGroundingCT metrics from masks: `{case: [(prediction, target) per finding]}`."""
    return summarize_findings({case: [score_finding(p, t) for p, t in pairs] for case, pairs in cases.items()})


def _ratio(hits: int, total: int, other_missed: int) -> float:
    if total:
        return hits / total
    return 1.0 if other_missed == 0 else 0.0


def _crop_to_union(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the bounding box of their union plus one empty voxel on every side.

    Surface distances do not change, and MONAI then works on a small array instead of a whole CT.
    """
    union = prediction | target
    box = []
    for axis in range(union.ndim):
        present = np.flatnonzero(union.any(axis=tuple(a for a in range(union.ndim) if a != axis)))
        box.append(slice(present[0], present[-1] + 1))
    return np.pad(prediction[tuple(box)], 1), np.pad(target[tuple(box)], 1)


def _as_binary_pair(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = np.asarray(prediction) != 0, np.asarray(target) != 0
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}")
    return prediction, target
