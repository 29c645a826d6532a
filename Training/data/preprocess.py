"""``voxtell-train preprocess``: fill the cache before training, resumably and in parallel.

Each case is written atomically, its JSON last (``cache.py``), so a killed run leaves only
complete cases and stray temporaries; a rerun does the cases that are missing. The work can be
split over processes and nodes: part I of N takes the cases whose position in the config's
list (datasets in order, cases sorted) is I mod N, and ``workers`` processes share a part. A
case's random draws (foreground locations) depend only on the seed, its dataset and its id, so
any split writes the same cache.

A case that fails (unreadable file, grids that differ, ...) gets a failure marker holding its
error (``cache.failure_path``): the exclude list. Training leaves such cases out and says how
many; a rerun tries them again. Each dataset's case list is saved beside the cache
(``manifest.py``), so training needs no access to the raw data.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from tqdm import tqdm

from VoxTellCore.errors import InputError
from VoxTellCore.atomic import atomic_write
from Training.data.cache import FAILED_SUFFIX, failure_path, is_cached, write_case
from Training.data.manifest import remove_manifest, write_case_list
from Training.data.nnunet_raw import NnUNetRawDataset
from Training.data.sources import open_dataset
from Training.distributed import environment_ranks


SHOWN_FAILURES = 20


@dataclass
class PreprocessReport:
    written: int = 0
    already_cached: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset, case, error)

    def summary(self, root: Path | None = None) -> str:
        text = f"{self.written} case(s) preprocessed, {self.already_cached} already cached"
        if self.failed:
            listing = "\n".join(f"  {d}/{c}: {e}" for d, c, e in self.failed[:SHOWN_FAILURES])
            if len(self.failed) > SHOWN_FAILURES:
                listing += f"\n  ... and {len(self.failed) - SHOWN_FAILURES} more"
            where = f" (errors in {root}/<dataset>/<case>{FAILED_SUFFIX})" if root else ""
            text += (f", {len(self.failed)} FAILED{where}; training leaves them out, a rerun of preprocess "
                     f"tries them again:\n{listing}")
        return text


def case_seed(seed: int, dataset: str, case_id: str) -> list[int]:
    """Per-case random stream, independent of how the work is split."""
    digest = hashlib.sha256(f"{dataset}/{case_id}".encode()).hexdigest()
    return [seed, int(digest[:8], 16), int(digest[8:16], 16)]


def work_part(part: int | None = None, parts: int | None = None,
              env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(part, parts): given explicitly, else a SLURM array task, else the torchrun / srun rank."""
    env = os.environ if env is None else env
    if parts is None and part is None:
        if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
            part, parts = int(env["SLURM_ARRAY_TASK_ID"]) - first, int(env["SLURM_ARRAY_TASK_COUNT"])
        else:
            part, parts, _ = environment_ranks(dict(env))
    part, parts = int(part or 0), int(parts or 1)
    if not 0 <= part < parts:
        raise InputError(f"preprocess: part {part} of {parts} does not exist (use --parts N --part I, 0 <= I < N).")
    return part, parts


def all_cases(datasets: list[dict[str, Any]], root: Path | None = None) -> list[tuple[dict[str, Any], str]]:
    """(dataset spec, case id) for every case of the config, in the order parts are cut from; with
    ``root``, each dataset's case list is saved there for the manifest."""
    cases = []
    for spec in datasets:
        source = open_dataset(spec)
        case_ids = source.case_ids()
        if root is not None:
            labels = source.labels if isinstance(source, NnUNetRawDataset) else None
            write_case_list(root, spec["name"], case_ids, labels)
        cases += [(spec, case_id) for case_id in case_ids]
    return cases


def preprocess(datasets: list[dict[str, Any]], preprocessed_dir: str | Path, seed: int, workers: int = 1,
               part: int = 0, parts: int = 1, progress: bool = True) -> PreprocessReport:
    """Cache the cases of part ``part`` of ``parts`` that are not cached yet, with ``workers`` processes."""
    if not datasets:
        raise InputError("The training config lists no datasets. Add entries to 'datasets'.")
    root = Path(preprocessed_dir)
    report = PreprocessReport()
    jobs = []
    for index, (spec, case_id) in enumerate(all_cases(datasets, root)):
        if index % parts != part:
            continue
        if is_cached(root / spec["name"], case_id):
            report.already_cached += 1
        else:
            jobs.append((spec, case_id, str(root / spec["name"]), case_seed(seed, spec["name"], case_id)))
    if jobs:
        remove_manifest(root)  # the cache changes: rank 0 of the next training rebuilds it
    bar = tqdm(total=len(jobs), desc=f"preprocess part {part + 1}/{parts}", unit="case", disable=not progress)
    if workers <= 1:
        results = (_preprocess_case(job) for job in jobs)
        _collect(results, report, bar)
    else:
        # spawn: the workers do not inherit the parent's threads (torch, blosc2)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            _collect((f.result() for f in as_completed([pool.submit(_preprocess_case, j) for j in jobs])), report, bar)
    bar.close()
    return report


def _collect(results, report: PreprocessReport, bar: tqdm) -> None:
    for dataset, case_id, error in results:
        if error is None:
            report.written += 1
        else:
            report.failed.append((dataset, case_id, error))
        bar.update()


_SOURCES: dict[str, Any] = {}  # per worker process: each dataset (name and path) is opened once


def _preprocess_case(job: tuple[dict[str, Any], str, str, list[int]]) -> tuple[str, str, str | None]:
    spec, case_id, folder, seed = job
    try:
        key = json.dumps(spec, sort_keys=True, default=str)  # two configs may reuse a name for other files
        source = _SOURCES.get(key) or _SOURCES.setdefault(key, open_dataset(spec))
        write_case(Path(folder), case_id, source.load_case(case_id), np.random.default_rng(seed))
    except Exception as error:  # one unreadable case must not stop the other 62,000
        message = f"{type(error).__name__}: {error}"
        atomic_write(failure_path(Path(folder), case_id), lambda tmp: Path(tmp).write_text(message + "\n"))
        return spec["name"], case_id, message
    return spec["name"], case_id, None
