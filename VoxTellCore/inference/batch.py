"""The batch engine: many images, many prompts, one call (as nnU-Net's ``predict_from_files``).

``voxtell-core predict`` and Slicer's batch script both call ``run_batch``. It finds the
cases (image files, folders of images, DICOM series folders), names the outputs as the
release does, checks everything it can before the model is loaded or a folder is made
(each input's header: readable, 3D, one channel; output folder writable; no output
overwriting an input), with ``no_overwrite`` writes only the missing outputs (an existing
file is never touched), keeps going when a case fails and returns the exit code
``voxtell-core`` documents: 0 all done, 1 some cases failed (``VoxTellError``: 2).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.errors import Cancelled, InputError, VoxTellError
from VoxTellCore.inference.cases import Case, cases_of_part
from VoxTellCore.inference.prompts import check_vocabulary, embed_once
from VoxTellCore.io import check_image, read_volume
from VoxTellCore.io.naming import LEGEND_SUFFIX, case_output_name, combined_output_name, legend_name, prompt_output_name
from VoxTellCore.progress import Progress

#: ``window_progress(case_name)``: a context manager giving the predictor's progress callback.
WindowProgress = Callable[[str], ContextManager[Progress]]


@dataclass
class BatchRequest:
    """What to segment and where the results go."""

    cases: List[Case]
    output: Path
    format: Optional[str] = None  # a writer name; None: the input's own format (release behaviour)
    save_combined: bool = False  # label-map formats: one label map per case (label i+1 = prompt i)
    no_overwrite: bool = False  # write only missing outputs, never replace a file (resume)
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


# ---------------------------------------------------------------------- outputs
def writer_of(case: Case, format: Optional[str]) -> Any:
    from VoxTellCore.io.formats import writer_for

    return writer_for(format, case.image)


def output_paths(case: Case, folder: Path, writer: Any, combined: bool) -> List[Path]:
    """Where a case's results go: one file per prompt for label-map formats (with ``combined``, one
    label map and its legend), one file holding every prompt as a segment otherwise."""
    if writer.label_map and not combined:
        return [folder / prompt_output_name(case.name, prompt, writer.suffix) for prompt in case.prompts]
    if writer.label_map:
        return [folder / combined_output_name(case.name, writer.suffix), folder / legend_name(case.name)]
    return [folder / case_output_name(case.name, writer.suffix)]


def input_files(case: Case) -> List[Path]:
    """The files a case reads (a DICOM folder: every file in it)."""
    path = Path(case.image)
    if path.is_dir():
        return [path, *(p for p in path.iterdir() if p.is_file())]
    return [path]


def missing_outputs(cases: Sequence[Case], plans: Dict[Case, List[Path]],
                    writers: Dict[Case, Any]) -> Tuple[List[Case], Dict[Case, List[Path]]]:
    """``--no-overwrite``: each case cut down to the prompts whose output file is missing, with
    their paths (in ``writers`` too). A file holding every prompt of a case (a combined label map,
    .seg.nrrd, DICOM SEG) is kept whole when it exists. No existing file is planned again."""
    todo: List[Case] = []
    remaining: Dict[Case, List[Path]] = {}
    for case in cases:
        missing = [path for path in plans[case] if not path.exists()]
        some_exist = len(missing) < len(plans[case])
        if not missing or (some_exist and not per_prompt(case, plans[case])):
            continue  # done, or a file of every prompt (with its legend) that is kept whole once there
        if some_exist:
            part = replace(case, prompts=tuple(prompt for prompt, path in zip(case.prompts, plans[case])
                                               if path in missing))
            writers[part] = writers[case]
            case = part
        todo.append(case)
        remaining[case] = missing
    kept = sum(path.exists() for case in cases for path in plans[case])
    if kept:
        print(f"Keeping {kept} existing output file(s) untouched; writing the {sum(map(len, remaining.values()))} "
              f"missing one(s) (--no-overwrite).", file=sys.stderr)
    return todo, remaining


def per_prompt(case: Case, paths: Sequence[Path]) -> bool:
    """Whether a case's outputs are one file per prompt (so that some can exist without the others)."""
    return len(paths) == len(case.prompts) and not any(path.name.endswith(LEGEND_SUFFIX) for path in paths)


# ---------------------------------------------------------------------- checks before running
def check_inputs(cases: Sequence[Case]) -> None:
    """Every input exists, can be read, and its header shows a 3D scalar volume; each DICOM folder
    names one series to segment (corrupt voxel data fails later, case by case)."""
    for case in cases:
        path = Path(case.image)
        if not path.exists():
            raise InputError(f"Image not found: {path}. Check the -i/--jobs paths "
                             f"(relative paths start at {Path.cwd()}).")
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            raise InputError(f"{path} is not readable by this user: fix its permissions or copy it elsewhere.")
        check_image(path, case.series)


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
    if not cases:
        print(f"Nothing to do: part {request.part} of --parts {request.parts} holds none of the "
              f"{len(request.cases)} image(s) (each part gets every {request.parts}th image; use fewer parts).")
        return result
    todo = list(cases)
    if request.no_overwrite:
        if request.sink:  # "done" is what the PACS holds: a whole case is either there or not
            todo = [case for case in cases if not request.sink.holds_result(case)]
            result.skipped = [case for case in cases if case not in todo]
            if result.skipped:
                print(f"Skipping {len(result.skipped)} image(s) whose outputs the PACS holds (--no-overwrite).",
                      file=sys.stderr)
        else:
            result.skipped = [case for case in cases if all(path.exists() for path in plans[case])]
            todo, plans = missing_outputs(cases, plans, writers)
        if not todo:
            print("Nothing to do: every output exists.")
            return result

    predictor = make_predictor()
    print(f"Model: {predictor.description}", file=sys.stderr)
    check_vocabulary(predictor, [prompt for case in todo for prompt in case.prompts])
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
    legends = [path for path in paths if path.name.endswith(LEGEND_SUFFIX)]
    mask_paths = [path for path in paths if path not in legends]
    if len(mask_paths) == 1:
        files = [(masks, segments, mask_paths[0])]
    else:
        files = [(masks[index : index + 1], segments[index : index + 1], path) for index, path in enumerate(mask_paths)]
    written: List[Path] = []
    try:
        for file_masks, file_segments, path in files:
            writer.write(file_masks, file_segments, volume, path, model)
            written.append(path)
        for path in legends:
            write_legend(path, case, mask_paths[0], model)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def write_legend(path: Path, case: Case, label_map_path: Path, model: Any) -> None:
    """The combined label map's legend: label value -> prompt, and who made it."""
    from dataclasses import asdict

    from VoxTellCore.atomic import atomic_write

    legend = {"image": case.image, "label_map": label_map_path.name, "model": asdict(model),
              "labels": {"0": "background", **{str(label): prompt for label, prompt in enumerate(case.prompts, 1)}}}
    text = json.dumps(legend, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def store_case(sink: Any, case: Case, paths: List[Path]) -> None:
    """Send a case's files to the sink; if it fails, the case counts as failed and leaves no file."""
    try:
        sink.store(case, paths)
    except BaseException:
        for path in paths:
            path.unlink(missing_ok=True)
        raise
