"""Case names and output file names, as the release (``voxtell-predict``) names them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

from VoxTellCore.io.reading import NIFTI_SUFFIXES

# Prompts can be whole report sentences; file names are limited to 255 bytes.
MAX_PROMPT_NAME_BYTES = 150

PathLike = Union[str, "os.PathLike[str]"]


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


def case_name(image: PathLike) -> str:
    """File name without its extension (as the release names cases); a DICOM folder's name."""
    path = Path(image)
    if path.is_dir():
        return path.resolve().name
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return os.path.splitext(path.name)[0]


def prompt_output_name(case: str, prompt: str, suffix: str) -> str:
    """``<case>_<prompt><suffix>``: one prompt's mask."""
    return f"{case}_{safe_prompt_name(prompt)}{suffix}"


def combined_output_name(case: str, suffix: str) -> str:
    """``<case>_combined<suffix>``: a case's label map of every prompt (``--save-combined``), named
    apart from the input (``<case><suffix>``) and from any prompt's own mask."""
    return f"{case}_combined{suffix}"


def legend_name(case: str) -> str:
    """``<case>_combined.labels.json``: which prompt each label value of the combined label map is."""
    return f"{case}_combined{LEGEND_SUFFIX}"


LEGEND_SUFFIX = ".labels.json"


def case_output_name(case: str, suffix: str) -> str:
    """``<case><suffix>``: a case's segmentation file (every prompt a segment: .seg.nrrd, DICOM SEG)."""
    return f"{case}{suffix}"
