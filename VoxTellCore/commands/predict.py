"""`voxtell-core predict`: segment images from text prompts; a drop-in for the release's
`voxtell-predict` (same options and output names) that also reads NRRD, MetaImage and DICOM
and writes Slicer .seg.nrrd and DICOM SEG. The work is done by the batch engine
(`VoxTellCore.inference.batch`), which Slicer's batch script calls too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.commands import window_progress
from VoxTellCore.errors import InputError
from VoxTellCore.inference.batch import BatchRequest, run_batch
from VoxTellCore.inference.cases import cases_from_jobs, find_cases
from VoxTellCore.inference.precision import DEFAULT_PRECISION, PRECISIONS
from VoxTellCore.inference.sliding_window import DEFAULT_STEP, check_step
from VoxTellCore.pacs.options import add_pacs_arguments, pacs_request

EPILOG = """\
Inputs (-i): image files (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd), folders of such files,
or DICOM series folders (--series UID picks one of several series in a folder). Prompts:
EITHER -p (the same prompts for every image) OR --jobs, a JSON list
[{"image": ..., "prompts": [...]}, ...] (inline or a .json file).

Outputs: <case>_<prompt>.<ext> per prompt, or <case>_combined.<ext> with --save-combined (label
i+1 = prompt i, listed in <case>_combined.labels.json). NIfTI and DICOM inputs give .nii.gz,
NRRD gives .nrrd, MetaImage gives .mha. Each file records the model that made it.
--format seg-nrrd (Slicer) and dicom-seg (DICOM input) write <case>.seg.nrrd / <case>.dcm
with one segment per prompt. No output ever replaces an input.

Exit codes: 0 all done, 1 some images failed (the others are written), 2 unusable input
(checked from each file's header), output folder or model (nothing is written).
--no-overwrite writes only missing outputs and never touches an existing file.

Examples:
  voxtell-core predict -i case001.nii.gz -o out -p liver "left kidney"
  voxtell-core predict -i images/ -o out -p liver --no-overwrite
  voxtell-core predict -i dicom/ct -o out -p "lung nodule" --format dicom-seg --series 1.2.840...
  voxtell-core predict -i images/ -o out -p liver --parts 4 --part 0   # one of 4 processes
  voxtell-core predict -o out --jobs jobs.json --embeddings bank.npz
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict", help="segment images from free-text prompts",
        description="Segment 3D images from free-text prompts (drop-in for the release's voxtell-predict).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `voxtell-core predict` (Slicer's batch script takes the same)."""
    parser.add_argument("-i", "--input", nargs="+", help="image files, folders of images, or DICOM series folders")
    parser.add_argument("-o", "--output", help="output folder (created if missing)")
    parser.add_argument("-p", "--prompts", nargs="+", help="text prompt(s) applied to every image")
    parser.add_argument("--jobs", help='per-image prompts: a .json file or JSON text [{"image": .., "prompts": [..]}]')
    parser.add_argument("--format", help="output format: nifti, nrrd, mha, seg-nrrd (Slicer), dicom-seg "
                                         "(DICOM input); default: the input's own (NIfTI for DICOM)")
    add_model_arguments(parser)
    parser.add_argument("--roi", nargs=6, type=float, metavar=("X0", "Y0", "Z0", "X1", "Y1", "Z1"),
                        help="segment only inside this box, corners in RAS millimetres")
    parser.add_argument("--save-combined", action="store_true",
                        help="one multi-label file per image (later prompts overwrite overlaps)")
    parser.add_argument("--no-overwrite", action="store_true",
                        help="write only the outputs that are missing; never replace a file (resume)")
    parser.add_argument("--parts", type=int, default=1, metavar="N",
                        help="split the images into N shares, one per process (as nnU-Net's -num_parts)")
    parser.add_argument("--part", type=int, default=0, metavar="I",
                        help="the share this process runs, 0 to N-1 (as nnU-Net's -part_id)")
    parser.add_argument("--list-embeddings", action="store_true", help="list the prompts of the embedding bank and exit")
    parser.add_argument("--verbose", action="store_true", help="print a traceback for unexpected errors")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The input-series and model options that `predict` and `ground` share (``make_predictor`` reads them)."""
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to segment when a DICOM folder holds several")
    parser.add_argument("-m", "--model", help="model folder (plans.json, fold_0/) or 'demo'; default $VOXTELL_MODEL, "
                                              "else the official model is downloaded")
    parser.add_argument("--embeddings", help="precomputed text-embedding bank (.npz); its prompts skip the text encoder")
    parser.add_argument("--text-encoder", help="Hugging Face id or local folder of the Qwen3 text encoder")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--gpu", type=int, default=0, help="CUDA device number with --device cuda (default 0)")
    parser.add_argument("--step", type=float, default=DEFAULT_STEP,
                        help=f"sliding-window step as a fraction of the patch (default {DEFAULT_STEP}, as the "
                             "release); other values change the masks")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                        help="network arithmetic: auto (default: as the release, fp16 autocast on CUDA, fp32 "
                             "elsewhere), fp32, fp16 (GPU) or bf16 (about 2x faster on CPUs with native bf16, "
                             "e.g. AMD Zen 4, Intel Sapphire Rapids; masks differ slightly at borders)")
    parser.add_argument("--no-precomputed", action="store_true",
                        help="do not use the model's own or the published embedding bank: every prompt goes "
                             "through the text encoder (an --embeddings bank still applies)")
    parser.add_argument("--server", metavar="URL", help="run on a VoxTell server (voxtell-core serve) instead of "
                        "here; the key comes from $VOXTELL_API_KEY or --api-key-file; the server's model, device "
                        "and step apply")
    parser.add_argument("--api-key-file", help="file whose first line is the server's key (with --server)")
    add_pacs_arguments(parser)


def make_predictor(args: argparse.Namespace, feature_cache_bytes: Optional[int] = 0) -> Any:
    """The predictor for ``args`` (tests replace this factory with a fake). Every prompt of a case
    runs in one call, so by default no encoder features are kept (see ``VoxTellPredictor``)."""
    if args.server:
        from VoxTellCore.remote.client import RemotePredictor
        from VoxTellCore.server.security import load_api_key

        return RemotePredictor(args.server, load_api_key(None, args.api_key_file))
    from VoxTellCore.inference.predictor import VoxTellPredictor

    device = f"cuda:{args.gpu}" if args.device == "cuda" and args.gpu else args.device
    return VoxTellPredictor(model=args.model, device=device, text_encoder=args.text_encoder,
                            embedding_bank=args.embeddings, use_model_bank=not args.no_precomputed, step=args.step,
                            precision=args.precision, feature_cache_bytes=feature_cache_bytes)


def run(args: argparse.Namespace) -> int:
    if args.list_embeddings:
        return list_embeddings(args)
    with pacs_request(args, batch_request) as request:
        result = run_batch(request, lambda: make_predictor(args), window_progress, verbose=args.verbose)
    return result.exit_code


def batch_request(args: argparse.Namespace) -> BatchRequest:
    """The engine's request for the parsed options, validated."""
    if bool(args.prompts) == bool(args.jobs):
        given = "both" if args.prompts else "neither"
        raise InputError(f"Give the prompts with exactly one of -p/--prompts or --jobs ({given} was given).")
    if args.jobs:
        if args.input:
            print("Warning: -i/--input is ignored when --jobs is given.", file=sys.stderr)
        cases = cases_from_jobs(args.jobs, args.series)
    else:
        cases = find_cases(args.input or [], args.prompts, args.series)
    if not args.output:
        raise InputError("No output folder given: pass -o OUTPUT_FOLDER.")
    check_step(args.step, "--step")
    return BatchRequest(cases=cases, output=Path(args.output), format=args.format, save_combined=args.save_combined,
                        no_overwrite=args.no_overwrite, roi=parse_roi(args.roi), parts=args.parts, part=args.part)


def parse_roi(roi: Optional[Sequence[float]]) -> Optional[Tuple[float, ...]]:
    """``--roi x0 y0 z0 x1 y1 z1`` (RAS mm, any corner order) -> (min corner, max corner)."""
    if roi is None:
        return None
    values = np.asarray(roi, dtype=float)
    if not np.all(np.isfinite(values)):
        raise InputError(f"--roi {' '.join(map(str, roi))} holds a non-finite number; give 6 numbers in mm.")
    low, high = np.minimum(values[:3], values[3:]), np.maximum(values[:3], values[3:])
    flat = [axis for axis, size in zip("xyz", high - low) if size <= 0]
    if flat:
        raise InputError(f"--roi has zero size along {', '.join(flat)}; give two opposite corners of a box "
                         "(x0 y0 z0 x1 y1 z1, RAS millimetres).")
    return tuple(float(v) for v in (*low, *high))


def list_embeddings(args: argparse.Namespace) -> int:
    """Print the prompts of --embeddings (or of the model's bank) and exit."""
    if args.embeddings:
        from VoxTellCore.text.bank import EmbeddingBank

        labels = EmbeddingBank.load(args.embeddings).labels
    else:
        predictor = make_predictor(args)
        labels = list(predictor.embedder.bank.labels)
    print(f"{len(labels)} precomputed embeddings available:")
    for label in sorted(labels):
        print(f"  {label}")
    return 0
