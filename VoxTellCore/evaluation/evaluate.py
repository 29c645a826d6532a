"""Evaluate a folder of predicted masks against a folder of ground-truth masks.

Files are paired by their path relative to each folder (same names on both sides).
The case and prompt of a file come from its name:

- ``<case>/<prompt>.nii.gz`` (a folder per case): the folder is the case;
- ``<case>_<prompt>.nii.gz`` (flat, as ``voxtell-core predict`` writes them): the case
  is the first `case_parts` underscore-separated parts of the name, the rest is the prompt.
  Without `case_parts` it is inferred from all the names (`infer_case_parts`), so
  ``phantom_2026_liver`` is case ``phantom_2026``, prompt ``liver``.

For ReXGroundingCT-style scoring the prompts of a case are its findings.
`evaluate_dataset` reads the dataset's own layout instead: one 4-D mask per scan with
the findings listed in the dataset JSON (`VoxTellCore.evaluation.rexgroundingct`).
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
from VoxTellCore.evaluation.metrics import CONNECTIVITY, MIN_INSTANCE_VOXELS, FindingResult, FindingScores, dice, \
    match_instances, summarize_findings, surface_dice
from VoxTellCore.evaluation.rexgroundingct import ScanFindings, find_mask, load_dataset_json, read_finding_masks

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


def _stem(relative_name: str) -> str:
    stem = Path(relative_name).name
    for suffix in MASK_SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def case_and_prompt(relative_name: str, case_parts: int = 1) -> tuple[str, str]:
    """Split a relative mask name into (case, prompt); see the module docstring."""
    path = Path(relative_name)
    stem = _stem(relative_name)
    if len(path.parts) > 1:
        return path.parts[0], stem
    parts = stem.split("_")
    if len(parts) <= case_parts:
        return stem, ""  # one mask per case, no prompt in the name
    return "_".join(parts[:case_parts]), "_".join(parts[case_parts:])


def infer_case_parts(names: list[str]) -> int:
    """How many underscore-separated parts of flat mask names form the case.

    A name that is the start of other names is a case on its own (the image the demo
    writes beside its masks: ``phantom_2026`` beside ``phantom_2026_liver``). Otherwise
    the number is chosen so that prompts repeat across cases as much as possible, and
    among equals the largest that leaves every name a prompt: one case
    ``phantom_2026_liver``, ``phantom_2026_left_kidney`` gives 2, CT-RATE's
    ``valid_1_a_1_liver`` and ``valid_2_a_1_liver`` give 4, ``case1_liver`` gives 1.
    """
    stems = sorted({_stem(n) for n in names if len(Path(n).parts) == 1})
    prefixes = {s for s in stems if any(other.startswith(s + "_") for other in stems)}
    case_names = {s for s in prefixes if not any(s.startswith(other + "_") for other in prefixes)}
    if case_names:  # "phantom_2026_lung" is a prompt of "phantom_2026", not a case of "phantom_2026_lung_nodule"
        return min(len(name.split("_")) for name in case_names)
    if not stems:
        return 1
    limit = min(len(s.split("_")) for s in stems) - 1
    best = (0.0, 1)
    for parts in range(1, limit + 1):
        pairs = {("_".join(s.split("_")[:parts]), "_".join(s.split("_")[parts:])) for s in stems}
        prompts = {prompt for _, prompt in pairs}
        best = max(best, (len(pairs) / len(prompts), parts))
    return best[1]


def read_mask(path: Path) -> tuple[np.ndarray, sitk.Image]:
    """A 3-D mask as a KJI array (nonzero = foreground, entity labels kept) and its image for the geometry."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise InputError(f"cannot read {path}: {error}. Check that it is a valid image file.") from error
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path} is a {image.GetDimension()}-D image with {image.GetNumberOfComponentsPerPixel()} "
                         "component(s); one 3-D mask per file is expected. For ReXGroundingCT masks with all "
                         "findings of a scan in one 4-D file, pass the dataset's JSON with --dataset-json.")
    return sitk.GetArrayFromImage(image), image


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


@dataclass(frozen=True)
class InstanceSettings:
    """How instances are counted (see `VoxTellCore.evaluation.metrics`)."""

    connectivity: int = CONNECTIVITY
    min_voxels: int = MIN_INSTANCE_VOXELS


def score_arrays(name: str, case: str, prompt: str, prediction: np.ndarray, target: np.ndarray,
                 spacing: tuple[float, ...], tolerance_mm: float, instances: InstanceSettings | None) -> PairResult:
    """Dice, NSD and (with `instances`) the instance counts of one prediction/target pair."""
    result = PairResult(name, case, prompt, dice(prediction, target), surface_dice(prediction, target, spacing, tolerance_mm))
    if instances is not None:
        match = match_instances(prediction, target, connectivity=instances.connectivity, min_voxels=instances.min_voxels)
        result.true_positives, result.false_positives, result.false_negatives = \
            match.true_positives, match.false_positives, match.false_negatives
    return result


def evaluate_pair(prediction_path: Path, target_path: Path, tolerance_mm: float, with_instances: bool,
                  name: str = "", case: str = "", prompt: str = "",
                  instances: InstanceSettings | None = None) -> PairResult:
    """The scores of one pair of 3-D mask files."""
    prediction, prediction_image = read_mask(prediction_path)
    target, target_image = read_mask(target_path)
    check_same_geometry(prediction_image, target_image)
    spacing_kji = tuple(reversed(target_image.GetSpacing()))
    return score_arrays(name, case, prompt, prediction, target, spacing_kji, tolerance_mm,
                        (instances or InstanceSettings()) if with_instances else None)


def evaluate_folders(prediction_dir: Path, ground_truth_dir: Path, tolerance_mm: float = 2.0,
                     with_instances: bool = False, case_parts: int | None = None,
                     instances: InstanceSettings | None = None) -> FolderEvaluation:
    """Score every prediction that has a ground-truth file of the same name.

    Files present on one side only, and pairs that cannot be read or whose geometry
    differs, are recorded in the result instead of stopping the evaluation.
    """
    predictions = list_masks(Path(prediction_dir))
    targets = list_masks(Path(ground_truth_dir))
    evaluation = FolderEvaluation(
        missing_predictions=sorted(set(targets) - set(predictions)),
        missing_ground_truth=sorted(set(predictions) - set(targets)))
    paired = sorted(set(predictions) & set(targets))
    parts = case_parts or infer_case_parts(sorted(set(predictions) | set(targets)))
    for name in paired:
        case, prompt = case_and_prompt(name, parts)
        try:
            evaluation.results.append(evaluate_pair(predictions[name], targets[name], tolerance_mm, with_instances,
                                                    name, case, prompt, instances))
        except InputError as error:
            evaluation.errors[name] = str(error)
    return evaluation


def evaluate_dataset(prediction_dir: Path, ground_truth_dir: Path, dataset_json: Path, split: str | None = None,
                     tolerance_mm: float = 2.0, instances: InstanceSettings | None = None) -> FolderEvaluation:
    """Score ReXGroundingCT-layout masks: per scan one 4-D file (findings first or last), findings from the JSON.

    Each finding is one row (file ``<name>#<channel>``, case = the scan, prompt = the
    finding's text), scored exactly as a per-finding file would be. A prediction file
    whose scan the JSON does not list is an error (it cannot be scored).
    """
    prediction_dir, ground_truth_dir = Path(prediction_dir), Path(ground_truth_dir)
    scans = load_dataset_json(dataset_json, split)
    listed = {scan.name for scan in scans}
    evaluation = FolderEvaluation()
    for name in sorted(list_masks(prediction_dir)):
        if Path(name).name not in listed:
            evaluation.errors[name] = (f"the JSON {dataset_json} lists no scan named {Path(name).name}; add its "
                                       "entry or pass the JSON (and --split) this prediction belongs to.")
    for scan in scans:
        target_path = find_mask(ground_truth_dir, scan.name, scan.split)
        prediction_path = find_mask(prediction_dir, scan.name, scan.split)
        if target_path is None:
            evaluation.missing_ground_truth.append(scan.name)
            continue
        if prediction_path is None:
            evaluation.missing_predictions.append(scan.name)
            continue
        try:
            evaluation.results += score_scan(prediction_path, target_path, scan, tolerance_mm,
                                             instances or InstanceSettings())
        except InputError as error:
            evaluation.errors[scan.name] = str(error)
    return evaluation


def score_scan(prediction_path: Path, target_path: Path, scan: ScanFindings, tolerance_mm: float,
               instances: InstanceSettings) -> list[PairResult]:
    predictions, prediction_affine = read_finding_masks(prediction_path, scan)
    targets, target_affine = read_finding_masks(target_path, scan)
    if predictions.shape != targets.shape:
        raise InputError(f"prediction {prediction_path} has findings x grid {predictions.shape}, ground truth "
                         f"{targets.shape}; predict on the scan's own grid, one channel per finding.")
    if not np.allclose(prediction_affine, target_affine, atol=1e-3):
        raise InputError(f"prediction {prediction_path} has another affine than its ground truth; resample the "
                         "prediction onto the ground-truth grid.")
    spacing = tuple(float(s) for s in np.linalg.norm(target_affine[:3, :3], axis=0))
    return [score_arrays(f"{scan.name}#{channel}", scan.case, text, predictions[channel], targets[channel], spacing,
                         tolerance_mm, instances)
            for channel, text in enumerate(scan.findings)]


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
