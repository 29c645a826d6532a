"""`voxtell-core predict`: segment images from text prompts; a drop-in for the release's
`voxtell-predict` (same options and output names) that also reads NRRD, MetaImage and DICOM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from VoxTellCore.commands import window_progress
from VoxTellCore.errors import Cancelled, InputError, VoxTellError
from VoxTellCore.io import NIFTI_SUFFIXES, is_image_file, read_volume, write_mask

EPILOG = """\
Inputs (-i): image files (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd), folders of such files,
or folders that hold one DICOM series each. Prompts: EITHER -p (the same prompts for every
image) OR --jobs, a JSON list [{"image": ..., "prompts": [...]}, ...] (inline or a .json file).

Outputs: <case>_<prompt>.<ext> per prompt, or <case>.<ext> with --save-combined (label i+1 =
prompt i). NIfTI and DICOM inputs give .nii.gz, NRRD gives .nrrd, MetaImage gives .mha.

Examples:
  voxtell-core predict -i case001.nii.gz -o out -p liver "left kidney"
  voxtell-core predict -i images/ -o out -p liver --no-overwrite
  voxtell-core predict -i dicom/series1 -o out -p "lung nodule" -m /path/to/model
  voxtell-core predict -o out --jobs jobs.json --embeddings bank.npz
"""

# Prompts can be whole report sentences; file names are limited to 255 bytes.
MAX_PROMPT_NAME_BYTES = 150


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict", help="segment images from free-text prompts",
        description="Segment 3D images from free-text prompts (drop-in for the release's voxtell-predict).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", nargs="+", help="image files, folders of images, or DICOM series folders")
    parser.add_argument("-o", "--output", help="output folder (created if missing)")
    parser.add_argument("-p", "--prompts", nargs="+", help="text prompt(s) applied to every image")
    parser.add_argument("--jobs", help='per-image prompts: a .json file or JSON text [{"image": .., "prompts": [..]}]')
    parser.add_argument("-m", "--model", help="model folder (plans.json, fold_0/) or 'demo'; default $VOXTELL_MODEL, "
                                              "else the official model is downloaded")
    parser.add_argument("--embeddings", help="precomputed text-embedding bank (.npz); its prompts skip the text encoder")
    parser.add_argument("--text-encoder", help="Hugging Face id or local folder of the Qwen3 text encoder")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"], help="default: auto")
    parser.add_argument("--gpu", type=int, default=0, help="CUDA device number with --device cuda (default 0)")
    parser.add_argument("--roi", nargs=6, type=float, metavar=("X0", "Y0", "Z0", "X1", "Y1", "Z1"),
                        help="segment only inside this box, corners in RAS millimetres")
    parser.add_argument("--save-combined", action="store_true",
                        help="one multi-label file per image (later prompts overwrite overlaps)")
    parser.add_argument("--no-overwrite", action="store_true", help="skip images whose outputs all exist (resume)")
    parser.add_argument("--list-embeddings", action="store_true", help="list the prompts of the embedding bank and exit")
    parser.add_argument("--no-precomputed", action="store_true",
                        help="do not use the model's own or the published embedding bank: every prompt goes "
                             "through the text encoder (an --embeddings bank still applies)")
    parser.add_argument("--verbose", action="store_true", help="print a traceback for unexpected errors")
    parser.set_defaults(run=run)
    return parser


def make_predictor(args: argparse.Namespace) -> Any:
    """The predictor for ``args`` (tests replace this factory with a fake)."""
    from VoxTellCore.inference.predictor import VoxTellPredictor

    device = f"cuda:{args.gpu}" if args.device == "cuda" and args.gpu else args.device
    return VoxTellPredictor(model=args.model, device=device, text_encoder=args.text_encoder,
                            embedding_bank=args.embeddings, use_model_bank=not args.no_precomputed)


@dataclass
class Case:
    """One image and its prompts, and where its masks go."""

    image: str
    prompts: list[str]

    @property
    def name(self) -> str:
        return case_name(self.image)

    def outputs(self, folder: Path, combined: bool) -> list[Path]:
        suffix = output_suffix(self.image)
        if combined:
            return [folder / f"{self.name}{suffix}"]
        return [folder / f"{self.name}_{safe_prompt_name(prompt)}{suffix}" for prompt in self.prompts]


def safe_prompt_name(prompt: str) -> str:
    """The release's file-name fragment: letters and digits kept, anything else ``_``;
    past 150 UTF-8 bytes, cut and suffixed with 8 hex digits of the prompt's SHA-1."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in prompt)
    encoded = safe.encode("utf-8")
    if len(encoded) <= MAX_PROMPT_NAME_BYTES:
        return safe
    digest = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]
    head = encoded[: MAX_PROMPT_NAME_BYTES - len(digest) - 1].decode("utf-8", errors="ignore")
    return f"{head}_{digest}"


def case_name(image: str | os.PathLike) -> str:
    """File name without its extension (as the release names cases); a DICOM folder's name."""
    path = Path(image)
    if path.is_dir():
        return path.resolve().name
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return os.path.splitext(path.name)[0]


def output_suffix(image: str | os.PathLike) -> str:
    name = str(image).lower()
    if name.endswith((".nrrd", ".nhdr")):
        return ".nrrd"
    if name.endswith((".mha", ".mhd")):
        return ".mha"
    return ".nii.gz"


def run(args: argparse.Namespace) -> int:
    if args.list_embeddings:
        return list_embeddings(args)
    cases = collect_cases(args)
    if not args.output:
        raise InputError("No output folder given: pass -o OUTPUT_FOLDER.")
    roi = parse_roi(args.roi)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    warn_about_name_clashes(cases, output, args.save_combined)

    todo = cases
    if args.no_overwrite:
        todo = [case for case in cases if not all(p.is_file() for p in case.outputs(output, args.save_combined))]
        if len(todo) < len(cases):
            print(f"Skipping {len(cases) - len(todo)} image(s) whose outputs exist (--no-overwrite).", file=sys.stderr)
    if not todo:
        print("Nothing to do: every output exists.")
        return 0

    predictor = make_predictor(args)
    print(f"Model: {predictor.description}", file=sys.stderr)
    prompt_inputs = embed_once(predictor, todo)

    written: list[Path] = []
    failed: list[str] = []
    for case in tqdm(todo, desc="Images", unit="image", file=sys.stderr, disable=len(todo) < 2):
        try:
            written += predict_case(predictor, case, prompt_inputs(case), output, args.save_combined, roi)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as error:  # one bad image must not stop the batch
            failed.append(case.image)
            message = str(error) if isinstance(error, VoxTellError) else f"{type(error).__name__}: {error}"
            print(f"Error: {case.image}: {message}", file=sys.stderr)
            if args.verbose:
                traceback.print_exc(file=sys.stderr)

    print(f"Wrote {len(written)} file(s) to {output}.")
    if failed:
        print(f"{len(failed)} of {len(todo)} image(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def collect_cases(args: argparse.Namespace) -> list[Case]:
    """The images and their prompts from -i/-p or --jobs, validated."""
    if bool(args.prompts) == bool(args.jobs):
        given = "both" if args.prompts else "neither"
        raise InputError(f"Give the prompts with exactly one of -p/--prompts or --jobs ({given} was given).")
    if args.jobs:
        if args.input:
            print("Warning: -i/--input is ignored when --jobs is given.", file=sys.stderr)
        cases = parse_jobs(args.jobs)
    else:
        if not args.input:
            raise InputError("No input image given: pass -i IMAGE [IMAGE ...] or a folder, or use --jobs.")
        prompts = check_prompts(args.prompts, "-p/--prompts")
        cases = [Case(image, prompts) for image in expand_inputs(args.input)]
    if not cases:
        raise InputError("No images to segment: the inputs and jobs list are empty.")
    return cases


def expand_inputs(entries: list[str]) -> list[str]:
    """Files stay as given; a folder holding image files gives those files (sorted by
    name); any other folder is one DICOM series. Duplicates are dropped, order is kept."""
    images: list[str] = []
    for entry in entries:
        path = Path(entry)
        inside = sorted(str(p) for p in path.iterdir() if p.is_file() and is_image_file(p.name)) if path.is_dir() else []
        images += inside or [entry]
    return list(dict.fromkeys(images))


def parse_jobs(value: str) -> list[Case]:
    """``--jobs``: a .json file or inline JSON, a list of {"image": ..., "prompts": [...]}."""
    from_file = os.path.isfile(value)
    try:
        jobs = json.loads(Path(value).read_text(encoding="utf-8") if from_file else value)
    except json.JSONDecodeError as error:
        what = f"file {value}" if from_file else "text (and not an existing file)"
        raise InputError(f"--jobs: the {what} is not valid JSON ({error}). "
                         'Write a list like [{"image": "a.nii.gz", "prompts": ["liver"]}].') from error
    if not isinstance(jobs, list):
        raise InputError('--jobs must be a JSON list of {"image": ..., "prompts": [...]} objects.')
    cases = []
    for number, job in enumerate(jobs, start=1):
        if not isinstance(job, dict) or not isinstance(job.get("image"), str) or "prompts" not in job:
            raise InputError(f'--jobs entry {number} ({job!r}) needs "image" (a path) and "prompts" (a list of texts).')
        prompts = [job["prompts"]] if isinstance(job["prompts"], str) else job["prompts"]
        cases.append(Case(job["image"], check_prompts(prompts, f"--jobs entry {number}")))
    return cases


def check_prompts(prompts: Any, where: str) -> list[str]:
    if not isinstance(prompts, list) or not prompts:
        raise InputError(f"{where} has no prompts: give at least one text prompt such as 'liver'.")
    for number, prompt in enumerate(prompts, start=1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"{where}: prompt {number} ({prompt!r}) is empty; give a text such as 'left kidney'.")
    return list(prompts)


def parse_roi(roi: list[float] | None) -> tuple[float, ...] | None:
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


def warn_about_name_clashes(cases: list[Case], output: Path, combined: bool) -> None:
    outputs = [path for case in cases for path in dict.fromkeys(case.outputs(output, combined))]
    clashes = sorted({str(p) for p in outputs if outputs.count(p) > 1})
    if clashes:
        print(f"Warning: {len(clashes)} output file name(s) are produced more than once (images with the same "
              f"name in different folders); later results overwrite earlier ones: {', '.join(clashes[:5])}",
              file=sys.stderr)
    for case in cases:
        if not combined and len(set(case.outputs(output, combined))) < len(set(case.prompts)):
            print(f"Warning: different prompts of {case.name} give the same output file name ({case.prompts}); "
                  "later prompts overwrite earlier ones.", file=sys.stderr)


def embed_once(predictor: Any, cases: list[Case]):
    """Embed every distinct prompt of the batch once, if the predictor can; returns a
    function giving what ``predict_volume`` takes for a case (embedding rows or texts)."""
    if not hasattr(predictor, "embed"):
        return lambda case: case.prompts
    unique = list(dict.fromkeys(prompt for case in cases for prompt in case.prompts))
    table = predictor.embed(unique)
    row = {prompt: index for index, prompt in enumerate(unique)}
    return lambda case: table[[row[prompt] for prompt in case.prompts]]


def predict_case(predictor: Any, case: Case, prompts: Any, output: Path, combined: bool,
                 roi: tuple[float, ...] | None) -> list[Path]:
    """Segment one image and write its masks; on failure no file of this case remains."""
    volume = read_volume(case.image)
    with window_progress(case.name, leave=False) as progress:
        masks = np.asarray(predictor.predict_volume(volume, prompts, roi_ras=roi, progress=progress))
    expected = (len(case.prompts), *volume.array.shape)
    if masks.shape != expected:
        raise RuntimeError(f"the predictor returned masks of shape {masks.shape}, expected {expected}")

    if combined:
        labels = np.zeros(volume.array.shape, dtype=np.uint8 if len(case.prompts) < 255 else np.uint16)
        for label, mask in enumerate(masks, start=1):
            labels[mask > 0] = label
        files = [(labels, case.outputs(output, True)[0])]
    else:
        files = list(zip(masks, case.outputs(output, False)))
    written: list[Path] = []
    try:
        for mask, path in files:
            write_mask(mask, volume, path)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def list_embeddings(args: argparse.Namespace) -> int:
    """Print the prompts of --embeddings (or of the model's bank) and exit."""
    if args.embeddings:
        from VoxTellCore.text.bank import EmbeddingBank

        labels = EmbeddingBank.load(args.embeddings).labels
    else:
        predictor = make_predictor(args)
        labels = list(predictor.embedder.bank.labels) if hasattr(predictor, "embedder") else []
    print(f"{len(labels)} precomputed embeddings available:")
    for label in sorted(labels):
        print(f"  {label}")
    return 0
