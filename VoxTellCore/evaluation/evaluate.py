"""Evaluate a folder of predicted masks against a folder of ground-truth masks.

Files are paired by their path relative to each folder (same names on both sides).
The case and prompt of a file come from its name:

- ``<case>/<prompt>.nii.gz`` (a folder per case): the folder is the case;
- ``<case>_<prompt>.nii.gz`` (flat, as ``voxtell-core predict`` writes them): the case
  is the first `case_parts` underscore-separated parts of the name (1 by default; use 4
  for CT-RATE names such as ``valid_1016_c_1_<prompt>``), the rest is the prompt.

For ReXGroundingCT-style scoring the prompts of a case are its findings.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from VoxTellCore.errors import InputError
from VoxTellCore.evaluation.metrics import FindingResult, FindingScores, dice, match_instances, \
    summarize_findings, surface_dice

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


@dataclass
class PairResult:
    """Scores of one prediction/ground-truth pair (one CSV row)."""

    file: str
    case: str
    prompt: str
    dice: float
    nsd: float
    true_positives: int | None = None
    false_positives: int | None = None
    false_negatives: int | None = None


@dataclass
class FolderEvaluation:
    """Everything `evaluate_folders` found: scored pairs and the files it could not score."""

    results: list[PairResult] = field(default_factory=list)
    missing_predictions: list[str] = field(default_factory=list)
    missing_ground_truth: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file -> why it was not scored


@dataclass(frozen=True)
class PromptSummary:
    prompt: str
    n_cases: int
    mean_dice: float
    mean_nsd: float


def list_masks(folder: Path) -> dict[str, Path]:
    """Mask files under `folder` (recursively), keyed by their relative POSIX path."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; pass the folder that holds the mask files.")
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name.lower().endswith(MASK_SUFFIXES)}


def case_and_prompt(relative_name: str, case_parts: int = 1) -> tuple[str, str]:
    """Split a relative mask name into (case, prompt); see the module docstring."""
    path = Path(relative_name)
    stem = path.name
    for suffix in MASK_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    if len(path.parts) > 1:
        return path.parts[0], stem
    parts = stem.split("_")
    if len(parts) <= case_parts:
        return stem, ""  # one mask per case, no prompt in the name
    return "_".join(parts[:case_parts]), "_".join(parts[case_parts:])


def read_mask(path: Path) -> tuple[np.ndarray, sitk.Image]:
    """A mask as a boolean KJI array (nonzero = foreground) and its image for the geometry."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(f"cannot read {path}: {error}. Check that it is a valid image file.") from error
    return sitk.GetArrayFromImage(image) != 0, image


def check_same_geometry(prediction: sitk.Image, target: sitk.Image) -> None:
    """Raise InputError naming the first geometry property that differs."""
    checks = [("size", prediction.GetSize(), target.GetSize(), 0.0),
              ("spacing", prediction.GetSpacing(), target.GetSpacing(), 1e-4),
              ("origin", prediction.GetOrigin(), target.GetOrigin(), 1e-3),
              ("direction", prediction.GetDirection(), target.GetDirection(), 1e-4)]
    for name, predicted, expected, tolerance in checks:
        if len(predicted) != len(expected) or not np.allclose(predicted, expected, rtol=0, atol=tolerance):
            raise InputError(f"prediction {name} {_rounded(predicted)} differs from ground truth "
                             f"{_rounded(expected)}; resample the prediction onto the ground-truth grid.")


def evaluate_pair(prediction_path: Path, target_path: Path, tolerance_mm: float,
                  with_instances: bool) -> tuple[float, float, FindingResult | None]:
    """Dice, NSD and (optionally) the instance counts of one pair of mask files."""
    prediction, prediction_image = read_mask(prediction_path)
    target, target_image = read_mask(target_path)
    check_same_geometry(prediction_image, target_image)
    spacing_kji = tuple(reversed(target_image.GetSpacing()))
    pair_dice = dice(prediction, target)
    nsd = surface_dice(prediction, target, spacing_kji, tolerance_mm)
    instances = None
    if with_instances:
        match = match_instances(prediction, target)
        instances = FindingResult(pair_dice, match.true_positives, match.false_positives, match.false_negatives)
    return pair_dice, nsd, instances


def evaluate_folders(prediction_dir: Path, ground_truth_dir: Path, tolerance_mm: float = 2.0,
                     with_instances: bool = False, case_parts: int = 1) -> FolderEvaluation:
    """Score every prediction that has a ground-truth file of the same name.

    Files present on one side only, and pairs that cannot be read or whose geometry
    differs, are recorded in the result instead of stopping the evaluation.
    """
    predictions = list_masks(Path(prediction_dir))
    targets = list_masks(Path(ground_truth_dir))
    evaluation = FolderEvaluation(
        missing_predictions=sorted(set(targets) - set(predictions)),
        missing_ground_truth=sorted(set(predictions) - set(targets)))
    for name in sorted(set(predictions) & set(targets)):
        case, prompt = case_and_prompt(name, case_parts)
        try:
            pair_dice, nsd, instances = evaluate_pair(predictions[name], targets[name], tolerance_mm, with_instances)
        except InputError as error:
            evaluation.errors[name] = str(error)
            continue
        result = PairResult(name, case, prompt, pair_dice, nsd)
        if instances is not None:
            result.true_positives = instances.true_positives
            result.false_positives = instances.false_positives
            result.false_negatives = instances.false_negatives
        evaluation.results.append(result)
    return evaluation


def summarize_by_prompt(results: list[PairResult]) -> list[PromptSummary]:
    """Mean Dice and NSD per prompt, sorted by prompt."""
    by_prompt: dict[str, list[PairResult]] = defaultdict(list)
    for result in results:
        by_prompt[result.prompt].append(result)
    return [PromptSummary(prompt, len(rows), float(np.mean([r.dice for r in rows])),
                          float(np.mean([r.nsd for r in rows])))
            for prompt, rows in sorted(by_prompt.items())]


def finding_scores(results: list[PairResult]) -> FindingScores:
    """ReXGroundingCT metrics over the scored pairs, the prompts of a case being its findings."""
    by_case: dict[str, list[FindingResult]] = defaultdict(list)
    for result in results:
        if result.true_positives is None:
            raise ValueError("instance counts missing; evaluate with with_instances=True")
        by_case[result.case].append(FindingResult(result.dice, result.true_positives,
                                                  result.false_positives, result.false_negatives))
    return summarize_findings(by_case)


def write_csv(results: list[PairResult], path: Path) -> None:
    """One row per scored pair; the instance columns only when they were computed."""
    rows = [asdict(result) for result in results]
    columns = ["file", "case", "prompt", "dice", "nsd"]
    if any(result.true_positives is not None for result in results):
        columns += ["true_positives", "false_positives", "false_negatives"]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_value(value) for key, value in row.items()})


def _csv_value(value: object) -> object:
    return f"{value:.6f}" if isinstance(value, float) and math.isfinite(value) else value


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(float(v), 4) for v in values)
