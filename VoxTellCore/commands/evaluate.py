"""`voxtell-core evaluate`: score predicted masks against ground-truth masks of the same names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from VoxTellCore.errors import InputError
from VoxTellCore.evaluation.evaluate import FolderEvaluation, InstanceSettings, evaluate_dataset, evaluate_folders, \
    finding_scores, summarize_by_prompt, write_csv
from VoxTellCore.evaluation.metrics import CONNECTIVITY, MIN_INSTANCE_VOXELS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate", help="Dice and surface Dice of predicted masks against ground truth",
        description="Pair prediction and ground-truth mask files by name (<case>_<prompt>.nii.gz or "
                    "<case>/<prompt>.nii.gz), print mean Dice and normalised surface Dice per prompt. With "
                    "--dataset-json, read ReXGroundingCT's layout (one 4-D mask per scan).")
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted binary masks")
    parser.add_argument("--gt", required=True, type=Path, help="folder of ground-truth binary masks")
    parser.add_argument("--tolerance-mm", type=float, default=2.0,
                        help="surface Dice tolerance in millimetres (default 2)")
    parser.add_argument("--csv", type=Path, help="write one row per case and prompt to this CSV file")
    parser.add_argument("--findings", action="store_true",
                        help="also print the ReXGroundingCT metrics (the prompts of a case are its findings)")
    parser.add_argument("--dataset-json", type=Path,
                        help="ReXGroundingCT layout: one 4-D mask per scan (findings first or last) in both folders, "
                             "the findings listed in this dataset.json; implies --findings")
    parser.add_argument("--split", help="with --dataset-json: the split to score (train, val, test; default all)")
    parser.add_argument("--connectivity", type=int, choices=(6, 18, 26), default=CONNECTIVITY,
                        help=f"neighbourhood of an instance's voxels (default {CONNECTIVITY}, as the official scorer "
                             "is run)")
    parser.add_argument("--min-instance-voxels", type=int, default=MIN_INSTANCE_VOXELS,
                        help=f"predicted components smaller than this are not instances (default "
                             f"{MIN_INSTANCE_VOXELS}; 0 counts every speck)")
    parser.add_argument("--case-parts", type=int,
                        help="in flat folders, how many underscore-separated parts of a file name form the case id "
                             "(default: inferred from the names, e.g. 2 for phantom_2026_liver, 4 for "
                             "valid_1016_c_1_<prompt>)")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.tolerance_mm < 0:
        raise InputError(f"--tolerance-mm {args.tolerance_mm} is negative; pass a distance of 0 mm or more.")
    if args.case_parts is not None and args.case_parts < 1:
        raise InputError(f"--case-parts {args.case_parts} is below 1; pass 1 or more.")
    if args.min_instance_voxels < 0:
        raise InputError(f"--min-instance-voxels {args.min_instance_voxels} is negative; pass 0 or more.")
    if args.split and not args.dataset_json:
        raise InputError("--split needs --dataset-json (the split is a list in the dataset's JSON).")
    instances = InstanceSettings(args.connectivity, args.min_instance_voxels)
    if args.dataset_json:
        for folder in (args.pred, args.gt):
            if not Path(folder).is_dir():
                raise InputError(f"{folder} is not a folder; pass the folder that holds the mask files.")
        evaluation = evaluate_dataset(args.pred, args.gt, args.dataset_json, args.split, args.tolerance_mm, instances)
    else:
        evaluation = evaluate_folders(args.pred, args.gt, args.tolerance_mm, args.findings, args.case_parts, instances)
    report_unscored(evaluation)
    if not evaluation.results and evaluation.errors:
        return 1  # every pair failed; the errors above say why
    if not evaluation.results:
        raise InputError(f"no prediction in {args.pred} could be paired and scored with a ground-truth file "
                         f"in {args.gt}; both folders must hold masks with the same file names.")
    if args.findings or args.dataset_json:
        print_finding_scores(evaluation, instances)
    if args.dataset_json:  # one prompt per finding: no per-prompt table
        print(f"{'over':<4}  {'pairs':>5}  {'Dice':>6}  {f'NSD@{args.tolerance_mm:g}mm':>9}")
        print_mean(evaluation)
    else:
        print_prompt_table(evaluation, args.tolerance_mm)  # last, so the overall mean is the last line
    if args.csv:
        write_csv(evaluation.results, args.csv)
        print(f"wrote {len(evaluation.results)} rows to {args.csv}", file=sys.stderr)
    return 1 if evaluation.errors else 0


def report_unscored(evaluation: FolderEvaluation) -> None:
    for name in evaluation.missing_predictions:
        print(f"warning: no prediction for ground truth {name} (not scored)", file=sys.stderr)
    for name in evaluation.missing_ground_truth:
        print(f"warning: no ground truth for prediction {name} (not scored)", file=sys.stderr)
    for name, message in evaluation.errors.items():
        print(f"error: {name}: {message}", file=sys.stderr)


def print_prompt_table(evaluation: FolderEvaluation, tolerance_mm: float) -> None:
    summaries = summarize_by_prompt(evaluation.results)
    width = max([len("prompt")] + [len(s.prompt or "(no prompt)") for s in summaries])
    nsd_header = f"NSD@{tolerance_mm:g}mm"
    print(f"{'prompt':<{width}}  {'cases':>5}  {'Dice':>6}  {nsd_header:>9}")
    for summary in summaries:
        print(f"{summary.prompt or '(no prompt)':<{width}}  {summary.n_cases:>5}  "
              f"{summary.mean_dice:>6.4f}  {summary.mean_nsd:>9.4f}")
    print_mean(evaluation, width)


def print_mean(evaluation: FolderEvaluation, width: int = 4) -> None:
    results = evaluation.results
    mean_dice = sum(r.dice for r in results) / len(results)
    mean_nsd = sum(r.nsd for r in results) / len(results)
    print(f"{'mean':<{width}}  {len(results):>5}  {mean_dice:>6.4f}  {mean_nsd:>9.4f}")


def print_finding_scores(evaluation: FolderEvaluation, instances: InstanceSettings) -> None:
    scores = finding_scores(evaluation.results)
    print(f"ReXGroundingCT ({scores.n_findings} findings in {scores.n_cases} cases; instances "
          f"{instances.connectivity}-connected, predicted ones of {instances.min_voxels}+ voxels)")
    rows = [("global Dice", scores.global_dice), ("hit rate (Dice >= 0.1)", scores.hit_rate),
            ("instance precision", scores.instance_precision), ("instance recall", scores.instance_recall),
            ("instance F1", scores.instance_f1)]
    for name, value in rows:
        print(f"  {name:<23}{value:.4f}")
