"""The cases of a batch: which images, with which prompts (files, folders, DICOM series, --jobs, parts)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from VoxTellCore.errors import InputError
from VoxTellCore.io import is_image_file
from VoxTellCore.io.naming import case_name


@dataclass(frozen=True)
class Case:
    """One image (file or DICOM series folder) and its prompts."""

    image: str
    prompts: Tuple[str, ...]
    series: Optional[str] = None

    @property
    def name(self) -> str:
        return case_name(self.image)



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
    return [prompt.strip() for prompt in prompts]  # "  liver " is "liver": same mask, same file name


def cases_of_part(cases: Sequence[Case], parts: int, part: int) -> List[Case]:
    """Share ``part`` of ``parts`` (nnU-Net's ``[part_id::num_parts]`` of the cases sorted by
    name), in the given order: processes started with the same inputs split them with no
    coordination and every case lands in exactly one share."""
    if parts < 1 or not 0 <= part < parts:
        raise InputError(f"--parts {parts} --part {part}: give --parts N (N >= 1) and --part I with 0 <= I < N.")
    ranked = sorted(range(len(cases)), key=lambda index: (cases[index].name, cases[index].image))
    mine = set(ranked[part::parts])
    return [case for index, case in enumerate(cases) if index in mine]
