"""`voxtell-core findings`: list the findings of a radiology report, one JSON object per line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from VoxTellCore.errors import InputError
from VoxTellCore.findings import extract_findings, reported

JSON_KEYS = ("text", "category", "focal", "negated", "uncertain", "prior_reference", "structure", "source_sentence")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "findings", help="extract the findings of a radiology report (rule based, offline)",
        description="Print one JSON line per finding of the report's Findings/Impression sections "
                    f"with the keys {', '.join(JSON_KEYS)}. Positive findings only unless --all.")
    parser.add_argument("report", type=Path, help="plain-text report file")
    parser.add_argument("--all", action="store_true", help="also print negated and normal statements")
    parser.add_argument("--include-prior", action="store_true",
                        help="also print statements about findings that are no longer there (negated)")
    return parser


def read_report(path: Path) -> str:
    if not path.is_file():
        raise InputError(f"report file {path} does not exist; pass the path of a plain-text report.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"report file {path} is not UTF-8 text ({error}); save it as plain UTF-8 text.") from error


def run(args: argparse.Namespace) -> int:
    findings = extract_findings(read_report(args.report), include_prior_references=args.include_prior)
    for finding in reported(findings, negated=args.all, prior=args.include_prior):
        record = finding.to_dict()
        print(json.dumps({key: record[key] for key in JSON_KEYS}, ensure_ascii=False))
    return 0
