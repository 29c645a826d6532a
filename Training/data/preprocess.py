"""``voxtell-train preprocess``: fill the cache before training, resumably and in parallel.

Each case is written atomically, its JSON last (``cache.py``), so a killed run leaves only
complete cases and stray temporaries; a rerun does the cases that are missing. The work can be
split over processes and nodes: part I of N takes the cases whose position in the config's
list (datasets in order, cases sorted) is I mod N, and ``workers`` processes share a part. A
case's random draws (foreground locations) depend only on the seed, its dataset and its id, so
any split writes the same cache.
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
from Training.data.cache import is_cached, write_case
from Training.data.sources import open_dataset
from Training.distributed import environment_ranks


@dataclass
class PreprocessReport:
    written: int = 0
    already_cached: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset, case, error)

    def summary(self) -> str:
        text = f"{self.written} case(s) preprocessed, {self.already_cached} already cached"
        if self.failed:
            examples = "; ".join(f"{d}/{c}: {e}" for d, c, e in self.failed[:5])
            text += f", {len(self.failed)} FAILED ({examples})"
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


def all_cases(datasets: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """(dataset spec, case id) for every case of the config, in the order parts are cut from."""
    return [(spec, case_id) for spec in datasets for case_id in open_dataset(spec).case_ids()]


def preprocess(datasets: list[dict[str, Any]], preprocessed_dir: str | Path, seed: int, workers: int = 1,
               part: int = 0, parts: int = 1, progress: bool = True) -> PreprocessReport:
    """Cache the cases of part ``part`` of ``parts`` that are not cached yet, with ``workers`` processes."""
    if not datasets:
        raise InputError("The training config lists no datasets. Add entries to 'datasets'.")
    root = Path(preprocessed_dir)
    report = PreprocessReport()
    jobs = []
    for index, (spec, case_id) in enumerate(all_cases(datasets)):
        if index % parts != part:
            continue
        if is_cached(root / spec["name"], case_id):
            report.already_cached += 1
        else:
            jobs.append((spec, case_id, str(root / spec["name"]), case_seed(seed, spec["name"], case_id)))
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
        return spec["name"], case_id, f"{type(error).__name__}: {error}"
    return spec["name"], case_id, None
