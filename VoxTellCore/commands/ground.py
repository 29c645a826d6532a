"""`voxtell-core ground`: segment every positive finding of a radiology report.

Writes one mask per finding, ``grounded_report.json``, ``grounded_report.md`` and
``grounded_report.html`` (the model that made the masks, with the demo model's "not for
clinical images" warning, and each finding with the report's own sentence, its mask file,
volume, centroid, slice range, consistency flags and a labelled PNG of the slice through it).

It checks what ``predict`` checks before the model loads (the image's header, ``--series``,
the output folder) plus the report, and writes its output folder as a whole: a new run
replaces the set of an earlier one, and a failed run leaves the earlier set as it was.
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
from typing import Any

import numpy as np

from VoxTellCore.atomic import atomic_folder, atomic_write
from VoxTellCore.commands import predict, window_progress
from VoxTellCore.errors import InputError
from VoxTellCore.findings import Finding, extract_findings, reported
from VoxTellCore.findings.grounding import (GroundedFinding, consistency_flags, mask_statistics,
                                            stated_location)
from VoxTellCore.inference.batch import check_inputs, check_output_folder, model_info
from VoxTellCore.inference.cases import Case
from VoxTellCore.inference.prompts import bank_labels
from VoxTellCore.inference.sliding_window import check_step
from VoxTellCore.io import Volume, read_volume, write_mask
from VoxTellCore.io.naming import safe_prompt_name
from VoxTellCore.models import DEMO_DESCRIPTION
from VoxTellCore.visualization import finding_png

REPORT_FILES = ("grounded_report.json", "grounded_report.md", "grounded_report.html")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ground", help="segment every positive finding of a radiology report",
        description="Extract the positive findings of a report and segment each one in the image.")
    parser.add_argument("-i", "--input", required=True, help="the CT (NIfTI, NRRD, MHA or a DICOM series folder)")
    parser.add_argument("-r", "--report", required=True, help="report text file, UTF-8 (Findings / Impression)")
    parser.add_argument("-o", "--output", required=True,
                        help="output folder: new, empty or from an earlier ground run (its set is replaced)")
    predict.add_model_arguments(parser)
    parser.add_argument("--include-prior", action="store_true", help="also ground references to prior studies")
    return parser


def run(args: argparse.Namespace) -> int:
    report = read_report(Path(args.report))
    check_inputs([Case(args.input, (), args.series)])
    out = Path(args.output)
    check_output_folder(out)
    check_output_folder(out.absolute().parent)  # the new set is made beside the folder it replaces
    check_replaceable(out)
    check_step(args.step, "--step")
    findings = reported(extract_findings(report, args.include_prior), prior=args.include_prior)
    model, recorded, masks, locations, volume = None, None, [], {}, None
    if findings:
        predictor = predict.make_predictor(args)
        model = ModelInfo(predictor.description, str(predictor.model_dir), predictor.is_demo)
        recorded = model_info(predictor)  # in each mask file's header
        print(f"Model: {predictor.description}", file=sys.stderr)
        places = checkable_locations(predictor, findings)
        volume = read_volume(args.input, args.series)
        with quiet_weight_loading():  # one progress bar: the text encoder's own loading bar is not shown
            embeddings = predictor.embed([f.text for f in findings] + places)
        with window_progress("windows") as progress:
            predicted = np.asarray(predictor.predict_volume(volume, embeddings, progress=progress))
        masks, locations = predicted[: len(findings)], dict(zip(places, predicted[len(findings):]))
    else:
        print("The report has no positive finding to ground.", file=sys.stderr)
    with atomic_folder(out) as stage:
        grounded = [write_finding(stage, number, finding, mask, volume, locations, model, recorded)
                    for number, (finding, mask) in enumerate(zip(findings, masks), start=1)]
        write_reports(stage, args.input, grounded, model)
    flagged = sum(bool(g.flags) for g in grounded)
    print(f"Grounded {len(grounded)} finding(s) in {out}/grounded_report.md"
          + (f"; {flagged} flagged as inconsistent with the report (see the flags)" if flagged else ""),
          file=sys.stderr)
    return 0


def read_report(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"Report file {path} does not exist. Pass a text file with -r.")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"Report file {path} is not UTF-8 text (byte 0x{data[error.start]:02x} at position "
                         f"{error.start}). Save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {path.name} > "
                         "report.txt`.") from error


def check_replaceable(out: Path) -> None:
    """``out`` is new, empty or holds only an earlier run's set, which the new run replaces."""
    if not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in earlier_set(out))
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise InputError(f"The output folder {out} holds files that are not from an earlier `voxtell-core ground` "
                         f"run ({shown}); ground replaces its output folder as a whole. Pass a new or empty "
                         "folder with -o.")


def earlier_set(out: Path) -> set[str]:
    """The files an earlier run's grounded_report.json lists, with the reports themselves."""
    try:
        document = json.loads((out / REPORT_FILES[0]).read_text(encoding="utf-8"))
        listed = {entry[key] for entry in document["findings"] for key in ("mask_file", "picture")}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return set(REPORT_FILES) | {name for name in listed if isinstance(name, str)}


def checkable_locations(predictor, findings: list[Finding]) -> list[str]:
    """The lobes and organs the findings name that the model's embedding bank holds (so that
    checking them needs no text-encoder download): each is segmented for the location check."""
    labels = bank_labels(predictor)
    return sorted({place for place in map(stated_location, (f.text for f in findings)) if place in labels})


def write_finding(folder: Path, number: int, finding: Finding, mask: np.ndarray, volume: Volume,
                  locations: dict, model: ModelInfo, recorded: Any) -> GroundedFinding:
    stem = f"finding_{number:02d}_{safe_prompt_name(finding.text)}"
    write_mask(mask, volume, folder / f"{stem}.nii.gz", recorded)
    statistics = mask_statistics(mask, volume)
    flags = consistency_flags(finding, statistics, volume, mask, locations)
    finding_png(volume, mask, folder / f"{stem}.png", finding.source_sentence, f"Model: {model.description}")
    return GroundedFinding(finding, statistics, f"{stem}.nii.gz", f"{stem}.png", flags)


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
    diameter = "—" if s.equivalent_diameter_mm is None else f"{s.equivalent_diameter_mm:.1f}"
    certainty = "UNCERTAIN (hedged in the report)" if g.finding.uncertain else "stated"
    flags = "; ".join(g.flags) if g.flags else "none"
    return [g.finding.source_sentence, g.finding.text, certainty, g.finding.category, f"{s.volume_ml:.2f}", diameter,
            centroid, slices, g.mask_file, flags]


# The report's own sentence comes first: the short finding text drops its hedges ("possible").
HEADER = ["report sentence", "segmented as", "certainty", "category", "volume (mL)", "equivalent diameter (mm)",
          "centroid (RAS mm)", "slices (k)", "mask", "consistency flags"]
FLAGS_NOTE = ("Consistency flags compare each mask with its sentence (side of the mask's centre, equivalent-sphere "
              "diameter against the stated size, share inside the stated lobe or organ as the model segments it). "
              "They are shown, never corrected: a flagged mask needs a reader's check.")


def model_lines(model: ModelInfo | None) -> list[str]:
    if model is None:
        return ["No finding was segmented, so no model was run."]
    lines = [f"Model: {model.description} ({model.folder})"]
    return lines + [f"WARNING: {model.warning}"] if model.warning else lines


def markdown(image: str, grounded: list[GroundedFinding], model: ModelInfo | None = None) -> str:
    lines = [f"# Grounded report: {Path(image).name}", ""]
    lines += [f"> **{line}**" if line.startswith("WARNING") else line for line in model_lines(model)]
    lines += ["", FLAGS_NOTE, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(g)) + " |" for g in grounded]
    for g in grounded:
        lines += ["", f"## {g.finding.source_sentence}", ""]
        lines += [f"> **FLAG: {flag}**" for flag in g.flags] + ([""] if g.flags else [])
        lines += [f"![{g.finding.text}]({g.picture})"]
    return "\n".join(lines) + "\n"


def html_report(image: str, grounded: list[GroundedFinding], model: ModelInfo | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER + ["slice"])
    rows = "".join(
        ("<tr style='background:#ffe4e1'>" if g.flags else "<tr>")
        + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(g))
        + f'<td><img src="{html.escape(g.picture)}" width="256"></td></tr>'
        for g in grounded
    )
    about = "".join(f"<p><strong>{html.escape(line)}</strong></p>" if line.startswith("WARNING")
                    else f"<p>{html.escape(line)}</p>" for line in model_lines(model))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Grounded report</title></head><body>"
            f"<h1>Grounded report: {html.escape(Path(image).name)}</h1>{about}<p>{html.escape(FLAGS_NOTE)}</p>"
            f"<table border='1'><tr>{head}</tr>{rows}</table></body></html>\n")
