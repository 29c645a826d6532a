"""Jobs, their FIFO queue and one worker thread per device.

Each worker owns a predictor on its device and takes the oldest queued job of the images that
stick to it; while a job waits, its event stream tells its place in the queue and an estimate
of the wait. A job's events are kept in order, so a client that reconnects to the stream sees
them all again. Cancel takes a queued job out at once and stops a running one within a window.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.errors import Cancelled, VoxTellError
from VoxTellCore.io import kji_to_network
from VoxTellCore.server.images import ImageStore, StoredImage

log = logging.getLogger(__name__)
FINISHED = ("done", "cancelled", "error")


class QueueFull(Exception):
    """As many jobs wait as the server allows; retry later."""


@dataclass
class Job:
    image: StoredImage
    prompts: List[str]
    keep_largest: bool = False
    roi_ras: Optional[Tuple[float, ...]] = None
    job_id: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    status: str = "queued"  # queued | running | done | cancelled | error
    result: Optional[np.ndarray] = None
    error: Optional[str] = None
    #: True when the error is the request's (bad image or prompt), False when it is the server's.
    input_error: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    events: List[dict] = field(default_factory=list)
    finished_at: float = 0.0

    def post(self, event: dict) -> None:
        self.events.append(event)  # list.append is atomic; streams read by index

    def finish(self, status: str, error: Optional[str] = None) -> None:
        self.status, self.error, self.finished_at = status, error, time.monotonic()
        self.image.active_jobs -= 1
        self.post({"status": status, **({"message": error} if error else {})})


class Scheduler:
    """FIFO queues (one per worker), the workers, and the jobs by id."""

    def __init__(self, predictors: Sequence[Any], store: ImageStore, max_queued: int, max_finished: int = 64) -> None:
        self.predictors, self.store = list(predictors), store
        self.max_queued, self.max_finished = max_queued, max_finished
        self._queues: List[Deque[Job]] = [deque() for _ in self.predictors]
        self._seconds_per_job: List[Optional[float]] = [None for _ in self.predictors]
        self._jobs: "OrderedDict[str, Job]" = OrderedDict()
        self._condition = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, args=(index,), name=f"voxtell-worker-{index}", daemon=True)
                         for index in range(len(self.predictors))]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            for queue in self._queues:
                for job in queue:
                    job.cancel.set()
            self._condition.notify_all()
        for job in list(self._jobs.values()):
            job.cancel.set()

    def submit(self, job: Job) -> int:
        """Queues ``job``; returns the number of jobs ahead of it on its device."""
        with self._condition:
            if sum(len(queue) for queue in self._queues) >= self.max_queued:
                raise QueueFull(f"{self.max_queued} jobs are waiting already; try again shortly.")
            self._forget_old_jobs()
            queue = self._queues[job.image.worker]
            job.image.active_jobs += 1
            queue.append(job)
            self._jobs[job.job_id] = job
            position = len(queue) - 1 + self._running(job.image.worker)
            job.post(self._queued_event(job.image.worker, position))
            self._condition.notify_all()
            return position

    def get(self, job_id: str) -> Optional[Job]:
        return self._jobs.get(job_id)

    def cancel(self, job: Job) -> bool:
        """False when the job has finished already."""
        with self._condition:
            if job.status in FINISHED:
                return False
            job.cancel.set()
            queue = self._queues[job.image.worker]
            if job in queue:
                queue.remove(job)
                job.finish("cancelled")
                self._announce_positions(job.image.worker)
            return True

    def queue_lengths(self) -> List[int]:
        return [len(queue) for queue in self._queues]

    # ------------------------------------------------------------------ workers
    def _work(self, worker: int) -> None:
        while True:
            with self._condition:
                while not self._queues[worker] and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                job = self._queues[worker].popleft()
                job.status = "running"
                self._announce_positions(worker)
            started = time.monotonic()
            self._run(self.predictors[worker], job)
            elapsed = time.monotonic() - started
            previous = self._seconds_per_job[worker]
            self._seconds_per_job[worker] = elapsed if previous is None else 0.7 * previous + 0.3 * elapsed
            self.store.trim_features(worker)

    def _run(self, predictor: Any, job: Job) -> None:
        image = job.image
        try:
            predictor.use_feature_cache(image.features)
            masks = predictor.predict_volume(image.volume, job.prompts, roi_ras=job.roi_ras, cancel=job.cancel,
                                             progress=lambda done, total: job.post({"done": done, "total": total}))
            if job.keep_largest:
                masks = np.stack([keep_largest_component(mask) for mask in masks])
            if image.network_orientation:
                masks = kji_to_network(masks, image.volume.ijk_to_ras)
            job.result = masks
            job.finish("done")
        except Cancelled:
            job.finish("cancelled")
        except VoxTellError as error:
            job.input_error = True
            job.finish("error", str(error))
        except Exception as error:  # a job's failure must not stop the worker
            log.exception("Job %s failed", job.job_id)
            job.finish("error", f"The server failed on this job ({type(error).__name__}: {error}).")

    # ------------------------------------------------------------------ queue positions
    def _running(self, worker: int) -> int:
        return sum(1 for job in self._jobs.values() if job.status == "running" and job.image.worker == worker)

    def _queued_event(self, worker: int, position: int) -> dict:
        seconds = self._seconds_per_job[worker]
        return {"event": "queued", "position": position,
                "eta_s": None if seconds is None else round(position * seconds, 1)}

    def _announce_positions(self, worker: int) -> None:
        running = self._running(worker)
        for index, job in enumerate(self._queues[worker]):
            job.post(self._queued_event(worker, index + running))

    def _forget_old_jobs(self) -> None:
        """Finished jobs (and their results) are kept for the idle time, at most ``max_finished`` of them."""
        now = time.monotonic()
        finished = [job for job in self._jobs.values() if job.status in FINISHED]
        for index, job in enumerate(finished):
            if len(finished) - index > self.max_finished or now - job.finished_at > self.store.idle_seconds:
                del self._jobs[job.job_id]


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a binary mask (the release server's ``keep_largest``)."""
    from scipy.ndimage import label

    labels, count = label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return (labels == sizes.argmax()).astype(mask.dtype)
