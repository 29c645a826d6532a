"""``voxtell-core predict``'s PACS options, turned into a batch request with a source and a sink.

Pull: ``--dicomweb URL --study UID [--series UID]`` (or ``--studies FILE``) lists the series
on the server and segments them; push: ``--store`` sends each result to the ``--dicomweb``
server, ``--store-to URL`` to another DICOMweb server or ``dicom://AET@host:port`` (C-STORE).
Every server is asked before the model loads (exit 2 when one is unreachable, refuses the
credentials or lacks a study). ``--parts`` splits the studies; ``--no-overwrite`` skips a
series that already has a VoxTell result in the storing PACS.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

from VoxTellCore.errors import InputError
from VoxTellCore.inference.batch import BatchRequest
from VoxTellCore.inference.cases import Case, cases_of_part, check_prompts
from VoxTellCore.pacs.auth import SOURCE_ENV, TARGET_ENV, auth_headers

# What a PACS stores, by --format: the DICOM modality of the object.
PACS_FORMATS = {"dicom-seg": "SEG", "dicom-seg-deflated": "SEG", "rtstruct": "RTSTRUCT"}


def add_pacs_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "PACS (docs/pacs.md)",
        f"Credentials never go on the command line: ${SOURCE_ENV} (and ${TARGET_ENV} for --store-to) or "
        "--auth-file / --store-auth-file hold user:password or 'Bearer TOKEN'.")
    group.add_argument("--dicomweb", metavar="URL", help="read the series from this DICOMweb server (QIDO/WADO-RS)")
    group.add_argument("--study", metavar="UID", help="the study to segment (with --dicomweb; --series picks a series)")
    group.add_argument("--studies", metavar="FILE",
                       help="a file of studies to segment, one 'STUDY_UID [SERIES_UID]' per line (with --dicomweb)")
    group.add_argument("--store", action="store_true",
                       help="send each result (DICOM SEG; RTSTRUCT with --format rtstruct) to the PACS: --store-to, "
                            "else the --dicomweb server; -o is then optional")
    group.add_argument("--store-to", metavar="URL", help="a DICOMweb URL or dicom://AET@host:port (C-STORE); implies --store")
    group.add_argument("--auth-file", metavar="FILE", help=f"credentials for --dicomweb (default ${SOURCE_ENV})")
    group.add_argument("--store-auth-file", metavar="FILE",
                       help=f"credentials for --store-to (default ${TARGET_ENV}, else those of --dicomweb)")
    group.add_argument("--pacs-timeout", type=float, default=60.0, metavar="S", help="seconds per request (default 60)")
    group.add_argument("--pacs-retries", type=int, default=3, metavar="N",
                       help="retries of a refused connection or a busy answer, with back-off (default 3)")
    group.add_argument("--calling-aet", default="VOXTELL", help="our AE title for dicom:// (default VOXTELL)")


def uses_pacs(args: argparse.Namespace) -> bool:
    return bool(args.dicomweb or args.study or args.studies or args.store or args.store_to)


@contextmanager
def pacs_request(args: argparse.Namespace,
                 make_request: Callable[[argparse.Namespace], BatchRequest]) -> Iterator[BatchRequest]:
    """``make_request(args)``, with the PACS as the cases' source and the results' sink when
    the options ask for one. Temporary folders (fetched series, results without -o) are
    removed when the context ends."""
    if not uses_pacs(args):
        yield make_request(args)
        return
    store = args.store or bool(args.store_to)
    check_options(args, store)
    with tempfile.TemporaryDirectory(prefix="voxtell-pacs-") as work:
        options = argparse.Namespace(**vars(args))
        options.format = args.format or ("dicom-seg" if store else None)
        if not args.output:
            options.output = str(Path(work) / "results")
        source = None
        if args.dicomweb:
            from VoxTellCore.pacs.dicomweb import DicomWebServer
            from VoxTellCore.pacs.links import DicomWebSource

            server = DicomWebServer(args.dicomweb, auth_headers(args.auth_file, SOURCE_ENV), args.pacs_timeout,
                                    args.pacs_retries)
            source = DicomWebSource(server, Path(work) / "series")
            studies = cases_of_part([Case(study, (), series) for study, series in studies_of(args)],
                                    args.parts, args.part)
            cases = source.cases([(case.image, case.series) for case in studies], check_prompts(args.prompts, "-p"))
            options.input, options.series, options.parts, options.part = [c.image for c in cases], None, 1, 0
        sink = make_sink(args, options.format, source) if store else None
        if source is not None and not options.input:
            print(f"Part {args.part} of {args.parts} has no study: nothing to do.", file=sys.stderr)
            request = BatchRequest(cases=[], output=Path(options.output))
        else:
            request = make_request(options)
        yield dataclasses.replace(request, source=source, sink=sink)


def check_options(args: argparse.Namespace, store: bool) -> None:
    if args.dicomweb:
        if args.input or args.jobs:
            raise InputError("--dicomweb reads the images from the server: drop -i/--input and --jobs "
                             "(the prompts go with -p).")
        if bool(args.study) == bool(args.studies):
            raise InputError("--dicomweb needs exactly one of --study UID or --studies FILE.")
        if args.studies and args.series:
            raise InputError("--series goes with --study; in --studies FILE, write 'STUDY_UID SERIES_UID' per line.")
    elif args.study or args.studies:
        raise InputError("--study/--studies name studies on a DICOMweb server: add --dicomweb URL.")
    elif store and not args.store_to:
        raise InputError("--store sends the results to the --dicomweb server: add --dicomweb URL, or name the "
                         "target with --store-to URL or dicom://AET@host:port.")
    if store and (args.format or "dicom-seg") not in PACS_FORMATS:
        raise InputError(f"--store sends DICOM objects; --format {args.format} is not one. "
                         f"Use one of: {', '.join(PACS_FORMATS)}.")
    if not store and not args.output:
        raise InputError("No output folder given: pass -o OUTPUT_FOLDER, or --store to send the results to the PACS.")


def studies_of(args: argparse.Namespace) -> List[Tuple[str, Optional[str]]]:
    """``--study UID [--series UID]`` or the lines of ``--studies FILE`` ('#' starts a comment)."""
    if args.study:
        return [(args.study.strip(), args.series)]
    try:
        lines = Path(args.studies).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"Cannot read --studies {args.studies} ({error.strerror}).") from error
    studies = []
    for number, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if len(fields) > 2:
            raise InputError(f"--studies {args.studies} line {number}: write 'STUDY_UID' or 'STUDY_UID SERIES_UID'.")
        if fields:
            studies.append((fields[0], fields[1] if len(fields) == 2 else None))
    if not studies:
        raise InputError(f"--studies {args.studies} names no study: write one Study Instance UID per line.")
    return list(dict.fromkeys(studies))


def make_sink(args: argparse.Namespace, format: str, source):
    """Where results go: --store-to, else the --dicomweb server; checked now (reachable, credentials)."""
    from VoxTellCore.pacs.dicomweb import DicomWebServer
    from VoxTellCore.pacs.dimse import DimsePeer, is_dimse_url
    from VoxTellCore.pacs.links import PacsSink

    url = args.store_to or args.dicomweb
    if is_dimse_url(url):
        target = DimsePeer(url, args.calling_aet, args.pacs_timeout)
    elif source is not None and url == args.dicomweb:
        target = source.server
    else:
        headers = auth_headers(args.store_auth_file, TARGET_ENV) or auth_headers(args.auth_file, SOURCE_ENV)
        target = DicomWebServer(url, headers, args.pacs_timeout, args.pacs_retries, auth_hint=TARGET_ENV)
    sink = PacsSink(target, PACS_FORMATS[format], source)
    sink.check()
    return sink
