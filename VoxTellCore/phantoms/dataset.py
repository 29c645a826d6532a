"""Phantom datasets in nnU-Net's raw layout, and the masks of every prompt of a case.

    <out_dir>/dataset.json            labels (partition name -> value), concept_masks (concept ->
                                      partition names whose union it is), nnU-Net keys
    <out_dir>/cases.json              case id -> seed, orientation, spacing, findings, report
    <out_dir>/imagesTr/<case>_0000.nii.gz   int16 HU
    <out_dir>/labelsTr/<case>.nii.gz        uint8 partition (labels.PARTITION)
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np

from VoxTellCore.errors import InputError

from .generator import generate_phantom
from .labels import CONCEPTS, PARTITION, concept_masks
from .report import write_report

DATASET_NAME = "Dataset900_VoxTellPhantoms"  # the vocabulary's "datasets" key for these labels


def case_seed(dataset_seed: int, index: int) -> int:
    """Independent phantom seeds per (dataset seed, case): datasets of different seeds never share cases."""
    return int(np.random.SeedSequence([dataset_seed, index]).generate_state(1)[0])


def write_phantom_dataset(out_dir: str | Path, n_cases: int, seed: int, case_prefix: str = "phantom",
                          progress: Callable[[int, int], None] | None = None, workers: int = 1,
                          **phantom_options: Any) -> Path:
    """Generate n_cases phantoms (phantom_options go to generate_phantom) into out_dir,
    using `workers` processes."""
    out = Path(out_dir)
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    jobs = [(out, f"{case_prefix}_{index:04d}", case_seed(seed, index), phantom_options) for index in range(n_cases)]
    cases = {}
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        results = pool.map(_write_case, jobs) if pool else map(_write_case, jobs)
        for done, (case_id, case) in enumerate(results, start=1):
            cases[case_id] = case
            if progress:
                progress(done, n_cases)
    description = {
        "name": DATASET_NAME,
        "description": "Synthetic thoracoabdominal CT phantoms (VoxTellCore.phantoms); organ concepts include "
                       "the lesions inside them, see concept_masks.",
        "channel_names": {"0": "CT"},
        "labels": PARTITION,
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
        "concept_masks": CONCEPTS,
        "generator": {"seed": seed, "options": {k: _jsonable(v) for k, v in phantom_options.items()}},
    }
    (out / "dataset.json").write_text(json.dumps(description, indent=2))
    (out / "cases.json").write_text(json.dumps(cases, indent=1))
    return out


def masks_for_case(dataset_dir: str | Path, case_id: str) -> dict[str, np.ndarray]:
    """Every concept of dataset.json's concept_masks as a (K, J, I) bool mask of the case (absent
    findings give empty masks: valid negative prompts). K, J, I as SimpleITK's GetArrayFromImage."""
    dataset_dir = Path(dataset_dir)
    description = json.loads((dataset_dir / "dataset.json").read_text(encoding="utf-8"))
    path = dataset_dir / "labelsTr" / f"{case_id}.nii.gz"
    if not path.is_file():
        raise InputError(f"Phantom case {case_id!r} has no label map at {path}; use a case id of "
                         f"{dataset_dir / 'cases.json'}.")
    label_map = np.asarray(nib.load(path).dataobj).transpose(2, 1, 0)
    return concept_masks(label_map, description["concept_masks"], description["labels"])


def _write_case(job: tuple[Path, str, int, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    out, case_id, seed, options = job
    phantom = generate_phantom(seed, **options)
    _save_nifti(np.round(phantom.image).astype(np.int16), phantom.ijk_to_ras,
                out / "imagesTr" / f"{case_id}_0000.nii.gz")
    _save_nifti(phantom.label_map, phantom.ijk_to_ras, out / "labelsTr" / f"{case_id}.nii.gz")
    return case_id, {
        "seed": phantom.seed, "orientation": phantom.axcodes, "spacing": list(phantom.spacing),
        "shape_kji": list(phantom.image.shape), "contrast": phantom.contrast,
        "findings": phantom.findings, "report": write_report(phantom),
    }


def _save_nifti(array_kji: np.ndarray, ijk_to_ras: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(np.ascontiguousarray(array_kji.transpose(2, 1, 0)), ijk_to_ras)
    image.set_qform(ijk_to_ras, code=1)
    image.set_sform(ijk_to_ras, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
