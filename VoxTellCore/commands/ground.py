"""`voxtell-core ground`: segment every positive finding of a radiology report.

Writes one mask per finding, ``grounded_report.json``, ``grounded_report.md`` and
``grounded_report.html`` (the model that made the masks, with the demo model's "not for
clinical images" warning, and each finding with its mask file, volume, centroid, slice
range and a PNG of the slice through it).
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from VoxTellCore.atomic import atomic_write
from VoxTellCore.commands import window_progress
from VoxTellCore.inference.precision import DEFAULT_PRECISION, PRECISIONS
from VoxTellCore.io.naming import safe_prompt_name
from VoxTellCore.errors import InputError
from VoxTellCore.findings import extract_findings, reported
from VoxTellCore.findings.grounding import GroundedFinding, mask_statistics
from VoxTellCore.io import read_volume, write_mask
from VoxTellCore.models import DEMO_DESCRIPTION
from VoxTellCore.visualization import finding_png


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ground", help="segment every positive finding of a radiology report",
        description="Extract the positive findings of a report and segment each one in the image.")
    parser.add_argument("-i", "--input", required=True, help="the CT (NIfTI, NRRD, MHA or a DICOM series folder)")
    parser.add_argument("-r", "--report", required=True, help="report text file (Findings / Impression)")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("-m", "--model", help="model folder or 'demo' (default: $VOXTELL_MODEL, else the official model)")
    parser.add_argument("--embeddings", help="precomputed text-embedding bank (.npz)")
    parser.add_argument("--text-encoder", help="Hugging Face id or local folder of the text encoder")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                        help="network arithmetic (see voxtell-core predict --help)")
    parser.add_argument("--include-prior", action="store_true", help="also ground references to prior studies")
    return parser


def run(args: argparse.Namespace) -> int:
    from VoxTellCore.inference.predictor import VoxTellPredictor

    report_path = Path(args.report)
    if not report_path.is_file():
        raise InputError(f"Report file {report_path} does not exist. Pass a text file with -r.")
    findings = reported(extract_findings(report_path.read_text(encoding="utf-8"), args.include_prior),
                        prior=args.include_prior)
    volume = read_volume(args.input)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    grounded: list[GroundedFinding] = []
    model = None
    if findings:
        predictor = VoxTellPredictor(model=args.model, device=args.device, text_encoder=args.text_encoder,
                                     embedding_bank=args.embeddings, precision=args.precision, feature_cache_bytes=0)
        model = ModelInfo(predictor.description, str(predictor.model_dir), predictor.is_demo)
        print(f"Model: {predictor.description}", file=sys.stderr)
        with quiet_weight_loading():  # one progress bar: the text encoder's own loading bar is not shown
            embeddings = predictor.embed([f.text for f in findings])
        with window_progress("windows") as progress:
            masks = predictor.predict_volume(volume, embeddings, progress=progress)
        for number, (finding, mask) in enumerate(zip(findings, masks), start=1):
            stem = f"finding_{number:02d}_{safe_prompt_name(finding.text)}"
            write_mask(mask, volume, out / f"{stem}.nii.gz")
            finding_png(volume, mask, out / f"{stem}.png", finding.text)
            grounded.append(GroundedFinding(finding, mask_statistics(mask, volume), f"{stem}.nii.gz", f"{stem}.png"))
    else:
        print("The report has no positive finding to ground.", file=sys.stderr)
    write_reports(out, args.input, grounded, model)
    print(f"Grounded {len(grounded)} finding(s) in {out}/grounded_report.md", file=sys.stderr)
    return 0


@dataclass(frozen=True)
class ModelInfo:
    """Which model made the masks; the demo model's reports carry its warning."""

    description: str
    folder: str
    demo: bool

    @property
    def warning(self) -> str | None:
        return f"Masks made by the {DEMO_DESCRIPTION}." if self.demo else None


@contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """Hide the "Loading weights" bar that transformers shows when the text encoder loads."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        yield
        return
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def write_reports(out: Path, image: str, grounded: list[GroundedFinding], model: ModelInfo | None = None) -> None:
    document = {"image": str(image), "model": None if model is None else {**asdict(model), "warning": model.warning},
                "findings": [g.to_json() for g in grounded]}
    _write(out / "grounded_report.json", json.dumps(document, indent=2))
    _write(out / "grounded_report.md", markdown(image, grounded, model))
    _write(out / "grounded_report.html", html_report(image, grounded, model))


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _cells(g: GroundedFinding) -> list[str]:
    s = g.statistics
    centroid = "—" if s.centroid_ras is None else ", ".join(f"{c:.1f}" for c in s.centroid_ras)
    slices = "—" if s.slice_range is None else f"{s.slice_range[0]}–{s.slice_range[1]}"
    return [g.finding.text, g.finding.category, f"{s.volume_ml:.2f}", centroid, slices, g.mask_file]


HEADER = ["finding", "category", "volume (mL)", "centroid (RAS mm)", "slices (k)", "mask"]


def model_lines(model: ModelInfo | None) -> list[str]:
    if model is None:
        return ["No finding was segmented, so no model was run."]
    lines = [f"Model: {model.description} ({model.folder})"]
    return lines + [f"WARNING: {model.warning}"] if model.warning else lines


def markdown(image: str, grounded: list[GroundedFinding], model: ModelInfo | None = None) -> str:
    lines = [f"# Grounded report: {Path(image).name}", ""]
    lines += [f"> **{line}**" if line.startswith("WARNING") else line for line in model_lines(model)]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(g)) + " |" for g in grounded]
    for g in grounded:
        lines += ["", f"## {g.finding.text}", "", f"> {g.finding.source_sentence}", "", f"![{g.finding.text}]({g.picture})"]
    return "\n".join(lines) + "\n"


def html_report(image: str, grounded: list[GroundedFinding], model: ModelInfo | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER + ["slice"])
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(g))
        + f'<td><img src="{html.escape(g.picture)}" width="256"></td></tr>'
        for g in grounded
    )
    about = "".join(f"<p><strong>{html.escape(line)}</strong></p>" if line.startswith("WARNING")
                    else f"<p>{html.escape(line)}</p>" for line in model_lines(model))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Grounded report</title></head><body>"
            f"<h1>Grounded report: {html.escape(Path(image).name)}</h1>{about}<table border='1'><tr>{head}</tr>{rows}"
            f"</table></body></html>\n")
