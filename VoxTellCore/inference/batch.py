"""The batch engine: many images, many prompts, one call (as nnU-Net's ``predict_from_files``).

``voxtell-core predict`` and Slicer's batch script both call ``run_batch``. It finds the
cases (image files, folders of images, DICOM series folders), names the outputs as the
release does, checks everything it can before the model is loaded or a folder is made
(inputs readable, output folder writable, no output overwriting an input), skips finished
cases with ``no_overwrite``, keeps going when a case fails and returns the exit code
``voxtell-core`` documents: 0 all done, 1 some cases failed (``VoxTellError``: 2).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.errors import Cancelled, InputError, VoxTellError
from VoxTellCore.io import is_image_file, read_volume
from VoxTellCore.io.naming import case_name, case_output_name, prompt_output_name
from VoxTellCore.progress import Progress

#: ``window_progress(case_name)``: a context manager giving the predictor's progress callback.
WindowProgress = Callable[[str], ContextManager[Progress]]


@dataclass(frozen=True)
class Case:
    """One image (file or DICOM series folder) and its prompts."""

    image: str
    prompts: Tuple[str, ...]
    series: Optional[str] = None

    @property
    def name(self) -> str:
        return case_name(self.image)


@dataclass
class BatchRequest:
    """What to segment and where the results go."""

    cases: List[Case]
    output: Path
    format: Optional[str] = None  # a writer name; None: the input's own format (release behaviour)
    save_combined: bool = False  # label-map formats: one label map per case (label i+1 = prompt i)
    no_overwrite: bool = False  # skip cases whose outputs all exist (resume)
    roi: Optional[Tuple[float, ...]] = None  # RAS mm (x0, y0, z0, x1, y1, z1)
    parts: int = 1  # split the sorted cases into this many shares ...
    part: int = 0  # ... and run this one (0-based, as nnU-Net's -part_id)
    # A PACS (VoxTellCore.pacs): the source checked the cases when it listed them and fetches
    # each one's files while it runs; the sink stores each case's files once written and tells
    # no_overwrite which cases it already holds.
    source: Optional[Any] = None
    sink: Optional[Any] = None


@dataclass
class BatchResult:
    written: List[Path] = field(default_factory=list)
    skipped: List[Case] = field(default_factory=list)
    failed: List[Tuple[Case, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


# ---------------------------------------------------------------------- finding cases
def find_cases(inputs: Sequence[str], prompts: Sequence[str], series: Optional[str] = None) -> List[Case]:
    """Files stay as given; a folder holding image files gives those (sorted by name, hidden
    files skipped); any other folder is a DICOM series folder (``series`` picks one of several).
    Duplicates are dropped, order is kept."""
    if not inputs:
        raise InputError("No input image given: pass -i IMAGE [IMAGE ...] or a folder, or use --jobs.")
    prompts = check_prompts(list(prompts), "-p/--prompts")
    images: List[str] = []
    for entry in inputs:
        path = Path(entry)
        inside = []
        if path.is_dir() and os.access(path, os.R_OK | os.X_OK):
            inside = sorted(str(p) for p in path.iterdir()
                            if p.is_file() and is_image_file(p.name) and not p.name.startswith("."))
        images += inside or [str(entry)]
    return [Case(image, tuple(prompts), series) for image in dict.fromkeys(images)]


def cases_from_jobs(value: str, series: Optional[str] = None) -> List[Case]:
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
        cases.append(Case(job["image"], tuple(check_prompts(prompts, f"--jobs entry {number}")), series))
    if not cases:
        raise InputError("No images to segment: the --jobs list is empty.")
    return cases


def check_prompts(prompts: Any, where: str) -> List[str]:
    if not isinstance(prompts, list) or not prompts:
        raise InputError(f"{where} has no prompts: give at least one text prompt such as 'liver'.")
    for number, prompt in enumerate(prompts, start=1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"{where}: prompt {number} ({prompt!r}) is empty; give a text such as 'left kidney'.")
    return list(prompts)


def cases_of_part(cases: Sequence[Case], parts: int, part: int) -> List[Case]:
    """Share ``part`` of ``parts`` (nnU-Net's ``[part_id::num_parts]`` of the cases sorted by
    name), in the given order: processes started with the same inputs split them with no
    coordination and every case lands in exactly one share."""
    if parts < 1 or not 0 <= part < parts:
        raise InputError(f"--parts {parts} --part {part}: give --parts N (N >= 1) and --part I with 0 <= I < N.")
    ranked = sorted(range(len(cases)), key=lambda index: (cases[index].name, cases[index].image))
    mine = set(ranked[part::parts])
    return [case for index, case in enumerate(cases) if index in mine]


# ---------------------------------------------------------------------- outputs
def writer_of(case: Case, format: Optional[str]) -> Any:
    from VoxTellCore.io.formats import writer_for

    return writer_for(format, case.image)


def output_paths(case: Case, folder: Path, writer: Any, combined: bool) -> List[Path]:
    """Where a case's results go: one file per prompt for label-map formats (one label map
    with ``combined``), one file holding every prompt as a segment otherwise."""
    if writer.label_map and not combined:
        return [folder / prompt_output_name(case.name, prompt, writer.suffix) for prompt in case.prompts]
    return [folder / case_output_name(case.name, writer.suffix)]


def input_files(case: Case) -> List[Path]:
    """The files a case reads (a DICOM folder: every file in it)."""
    path = Path(case.image)
    if path.is_dir():
        return [path, *(p for p in path.iterdir() if p.is_file())]
    return [path]


# ---------------------------------------------------------------------- checks before running
def check_inputs(cases: Sequence[Case]) -> None:
    """Every input exists and can be read, and each DICOM folder names one series to segment
    (corrupt contents fail later, case by case)."""
    from VoxTellCore.io.formats.dicom import choose_series, list_dicom_series

    for case in cases:
        path = Path(case.image)
        if not path.exists():
            raise InputError(f"Image not found: {path}. Check the -i/--jobs paths "
                             f"(relative paths start at {Path.cwd()}).")
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise InputError(f"{path} is not readable by this user: fix its permissions or copy it elsewhere.")
        if path.is_dir():
            choose_series(path, list_dicom_series(path), case.series)


def check_outputs(plans: Dict[Case, List[Path]]) -> None:
    """No output overwrites an input, and no two outputs share a file name."""
    inputs = {path.resolve(): case for case in plans for path in input_files(case)}
    owners: Dict[Path, Case] = {}
    for case, paths in plans.items():
        for path in paths:
            resolved = path.resolve()
            if resolved in inputs:
                raise InputError(f"The output {path} would overwrite the input {inputs[resolved].image}: "
                                 "choose another output folder (-o).")
            if resolved in owners:
                other = owners[resolved]
                what = (f"the prompts {list(case.prompts)} of {case.image} give" if other is case
                        else f"{other.image} and {case.image} both give")
                raise InputError(f"{what} the output file {path.name}, so one result would overwrite the other: "
                                 "run them into different output folders or rename one.")
            owners[resolved] = case


def check_output_folder(folder: Path) -> None:
    """The output folder exists and is writable, or can be created; nothing is created here."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            raise InputError(f"The output folder {folder} is a file: pass a folder with -o.")
        raise InputError(f"The output folder {folder} cannot be created: {existing} is a file. Pass another -o.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        what = "The output folder" if existing == folder else f"The output folder {folder} cannot be created: its parent"
        raise InputError(f"{what} {existing} is not writable ({error.strerror}): "
                         "pass a folder you can write to with -o.") from error


# ---------------------------------------------------------------------- running
def run_batch(
    request: BatchRequest,
    make_predictor: Callable[[], Any],
    window_progress: Optional[WindowProgress] = None,
    verbose: bool = False,
) -> BatchResult:
    """Segment every case of ``request`` (of its part) and write the results.

    Raises ``VoxTellError`` (nothing created) when the run cannot start: a missing input,
    an output that would overwrite an input, an unwritable output folder, a missing model.
    A case that fails is reported and counted in the result; the others still run.
    """
    output = Path(request.output)
    if request.source is None:
        check_inputs(request.cases)
    # Every part plans every case, so that no part's output can overwrite another part's input.
    writers = {case: writer_of(case, request.format) for case in request.cases}
    plans = {case: output_paths(case, output, writers[case], request.save_combined) for case in request.cases}
    check_outputs(plans)
    cases = cases_of_part(request.cases, request.parts, request.part)
    check_output_folder(output)

    result = BatchResult()
    todo = list(cases)
    if request.no_overwrite:
        done = request.sink.holds_result if request.sink else lambda case: all(path.is_file() for path in plans[case])
        todo = [case for case in cases if not done(case)]
        result.skipped = [case for case in cases if case not in todo]
        if result.skipped:
            where = "the PACS holds" if request.sink else "exist"
            print(f"Skipping {len(result.skipped)} image(s) whose outputs {where} (--no-overwrite).", file=sys.stderr)
    if not todo:
        print("Nothing to do: every output exists.")
        return result

    predictor = make_predictor()
    print(f"Model: {predictor.description}", file=sys.stderr)
    embeddings = embed_once(predictor, todo)
    output.mkdir(parents=True, exist_ok=True)

    from tqdm import tqdm

    for case in tqdm(todo, desc="Images", unit="image", file=sys.stderr, disable=len(todo) < 2):
        try:
            with request.source.fetch(case) if request.source else nullcontext():
                written = predict_case(predictor, case, embeddings(case), writers[case], plans[case], request.roi,
                                       window_progress)
                if request.sink:
                    store_case(request.sink, case, written)
            result.written += written
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as error:  # one bad image must not stop the batch
            message = str(error) if isinstance(error, VoxTellError) else f"{type(error).__name__}: {error}"
            result.failed.append((case, message))
            print(f"Error: {case.image}: {message}", file=sys.stderr)
            if verbose:
                traceback.print_exc(file=sys.stderr)

    print(f"Wrote {len(result.written)} file(s) to {output}.")
    if result.failed:
        print(f"{len(result.failed)} of {len(todo)} image(s) failed: "
              f"{', '.join(case.image for case, _ in result.failed)}", file=sys.stderr)
    return result


def announce_text_encoder(predictor: Any, prompts: Sequence[str]) -> None:
    """Before prompts outside the embedding bank load the text encoder: refuse when it cannot
    fit in memory, and say so when it must be downloaded first (about 8 GB for Qwen3-Embedding-4B)."""
    from VoxTellCore.text.encoder import check_text_encoder_memory, text_encoder_download_bytes

    embedder = getattr(predictor, "embedder", None)
    encoder = getattr(embedder, "encoder", None)
    needing = embedder.prompts_needing_encoder(prompts) if encoder is not None else []
    if not needing:
        return
    check_text_encoder_memory(encoder.name_or_path, predictor.device)
    missing = text_encoder_download_bytes(encoder.name_or_path)
    shown = ", ".join(repr(prompt) for prompt in needing[:3]) + (", ..." if len(needing) > 3 else "")
    if missing:
        print(f"{len(needing)} prompt(s) are not in the embedding bank ({shown}): downloading the text encoder "
              f"{encoder.name_or_path} first, about {missing / 1e9:.1f} GB, once. Prompts from the bank need no "
              "download (voxtell-core predict --list-embeddings).", file=sys.stderr)


def embed_once(predictor: Any, cases: Sequence[Case]) -> Callable[[Case], Any]:
    """Embed every distinct prompt of the batch once; returns a case's embedding rows."""
    unique = list(dict.fromkeys(prompt for case in cases for prompt in case.prompts))
    announce_text_encoder(predictor, unique)
    table = predictor.embed(unique)
    row = {prompt: index for index, prompt in enumerate(unique)}
    return lambda case: table[[row[prompt] for prompt in case.prompts]]


def model_info(predictor: Any) -> Any:
    import VoxTellCore
    from VoxTellCore.io.formats import ModelInfo

    return ModelInfo(name=predictor.description, version=VoxTellCore.__version__, is_demo=predictor.is_demo)


def predict_case(
    predictor: Any,
    case: Case,
    embeddings: Any,
    writer: Any,
    paths: List[Path],
    roi: Optional[Tuple[float, ...]],
    window_progress: Optional[WindowProgress],
) -> List[Path]:
    """Segment one case and write its files; on failure no file of this case remains."""
    from VoxTellCore.io.formats import segment_infos

    volume = read_volume(case.image, case.series)
    writer.check_input(volume)
    with window_progress(case.name) if window_progress else nullcontext(None) as progress:
        masks = np.asarray(predictor.predict_volume(volume, embeddings, roi_ras=roi, progress=progress), dtype=np.uint8)
    expected = (len(case.prompts), *volume.array.shape)
    if masks.shape != expected:
        raise RuntimeError(f"the predictor returned masks of shape {masks.shape}, expected {expected}")

    segments = segment_infos(list(case.prompts))
    model = model_info(predictor)
    if len(paths) == 1:
        files = [(masks, segments, paths[0])]
    else:
        files = [(masks[index : index + 1], segments[index : index + 1], path) for index, path in enumerate(paths)]
    written: List[Path] = []
    try:
        for file_masks, file_segments, path in files:
            writer.write(file_masks, file_segments, volume, path, model)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def store_case(sink: Any, case: Case, paths: List[Path]) -> None:
    """Send a case's files to the sink; if it fails, the case counts as failed and leaves no file."""
    try:
        sink.store(case, paths)
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
