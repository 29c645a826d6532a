"""The HTTP front end: voxtell-server 0.1.2's routes and messages, and what ours adds.

Release routes (same paths, bodies, ``X-Meta`` header and NDJSON events, so napari-voxtell's
client works unchanged): ``/healthz``, ``/capabilities``, ``POST /images`` (.nii.gz bytes),
``POST /jobs``, ``GET /jobs/{id}/events``, ``GET /jobs/{id}/result``, ``POST /jobs/{id}/cancel``,
``POST /images/{id}/export``. Added: ``/version`` (protocol handshake), array uploads
(``Content-Type: application/x-voxtell-array``, masks on the image's own grid),
``POST /images/lookup`` (content-hash dedupe), ``GET /jobs/{id}``, ``roi_ras`` on a job,
``?crop=true`` on a result, queue events, 413/503 limits and a required key off loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from typing import Any, Optional

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

import VoxTellCore
from VoxTellCore.errors import InputError
from VoxTellCore.inference.predictor import roi_to_network_box
from VoxTellCore.io import Volume, write_mask
from VoxTellCore.remote.wire import (
    ARRAY_CONTENT_TYPE,
    META_HEADER,
    OCTET_STREAM,
    PROTOCOL_VERSION,
    WireError,
    crop_to_content,
    pack_array,
    unpack_array,
)
from VoxTellCore.server.images import ImageStore, StoreFull, decode_array_upload, decode_nifti_upload
from VoxTellCore.server.jobs import Job, QueueFull, Scheduler
from VoxTellCore.server.limits import BodyLimit, Limits
from VoxTellCore.server.security import key_matches

EVENT_POLL_S = 0.05


def make_app(scheduler: Scheduler, store: ImageStore, limits: Limits, api_key: Optional[str] = None) -> FastAPI:
    """The app around running workers (``scheduler``) and their image ``store``."""
    predictor = scheduler.predictors[0]
    app = FastAPI(title="VoxTell server", version=VoxTellCore.__version__)

    def require_key(authorization: Optional[str] = Header(default=None)) -> None:
        if api_key is not None and not key_matches(authorization, api_key):
            raise HTTPException(401, "Invalid or missing API key: send the header 'Authorization: Bearer KEY'.")

    api = APIRouter(dependencies=[Depends(require_key)])

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @api.get("/version")
    def version() -> dict:
        return {"protocol": PROTOCOL_VERSION, "server": "voxtell-core", "version": VoxTellCore.__version__,
                "model": predictor.description, "is_demo": bool(predictor.is_demo),
                "devices": [str(p.device) for p in scheduler.predictors], "compatible_with": "voxtell-server 0.1.2"}

    @api.get("/capabilities")
    def capabilities() -> dict:
        bank = getattr(predictor.embedder, "bank", None)
        return {"model": predictor.description, "patch_size": list(predictor.patch_size),
                "available_embeddings": sorted(bank.labels) if bank is not None else [],
                "protocol": PROTOCOL_VERSION, "queued": scheduler.queue_lengths(), **store.stats()}

    @api.post("/images")
    async def upload_image(request: Request, include_image: bool = True) -> Response:
        body = await request.body()
        as_array = request.headers.get("content-type", "").startswith(ARRAY_CONTENT_TYPE)
        meta = _meta(request) if as_array else None
        volume = await run_in_threadpool(
            lambda: decode_array_upload(body, meta, limits.max_image_bytes) if as_array
            else decode_nifti_upload(body, limits.max_image_bytes))
        del body
        try:
            image = store.add(volume, network_orientation=not as_array)
        except StoreFull as error:
            raise _busy(str(error), limits) from None
        # The grid the masks come back on: the array's own (KJI) or, for a .nii.gz, the release's (S, A, R).
        matrix, shape = ((image.volume.ijk_to_ras @ np.eye(4)[[2, 1, 0, 3]], image.volume.array.shape) if as_array
                         else (image.volume.network_to_ras, image.volume.network_shape))
        info = {"image_id": image.image_id, "sha256": image.sha256, "shape": list(shape),
                "spacing": [float(s) for s in np.linalg.norm(matrix[:3, :3], axis=0)]}
        content = b""
        if include_image and not as_array:  # the release returns the reoriented image for display
            content = await run_in_threadpool(pack_array, image.volume.to_network())
        return Response(content, media_type=OCTET_STREAM, headers={META_HEADER: json.dumps(info)})

    @api.post("/images/lookup")
    def lookup_image(payload: dict) -> dict:
        image = store.find(str(payload.get("sha256", "")))
        if image is None:
            raise HTTPException(404, "No image with this content hash: upload it.")
        return {"image_id": image.image_id, "shape": list(image.volume.array.shape)}

    @api.post("/jobs")
    def start_job(payload: dict) -> dict:
        image = store.get(str(payload.get("image_id")))
        if image is None:
            raise HTTPException(404, "Unknown image_id (upload it first; the server may have restarted or "
                                     "forgotten an idle image).")
        prompts = _prompts(payload.get("prompts"), limits)
        roi = payload.get("roi_ras")
        if roi is not None and (not isinstance(roi, list) or len(roi) != 6
                                or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in roi)):
            raise HTTPException(400, "roi_ras must be 6 finite numbers: x0 y0 z0 x1 y1 z1 (RAS millimetres).")
        if roi is not None:
            roi_to_network_box(image.volume, roi)  # InputError (422) now when the ROI misses the image
        job = Job(image=image, prompts=prompts, keep_largest=bool(payload.get("keep_largest", False)),
                  roi_ras=None if roi is None else tuple(float(v) for v in roi))
        try:
            position = scheduler.submit(job)
        except QueueFull as error:
            raise _busy(str(error), limits) from None
        return {"job_id": job.job_id, "position": position}

    @api.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        job = _job(scheduler, job_id)
        return {"status": job.status, "message": job.error, "events": len(job.events)}

    @api.get("/jobs/{job_id}/events")
    def stream_events(job_id: str) -> StreamingResponse:
        job = _job(scheduler, job_id)

        async def lines():
            sent = 0
            while True:
                events = job.events[sent:]
                for event in events:
                    yield json.dumps(event) + "\n"
                sent += len(events)
                if events and "status" in events[-1]:
                    return
                await asyncio.sleep(EVENT_POLL_S)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @api.get("/jobs/{job_id}/result")
    def job_result(job_id: str, crop: bool = False) -> Response:
        job = _job(scheduler, job_id)
        if job.status == "error":
            raise HTTPException(422 if job.input_error else 500, job.error or "Inference failed.")
        if job.status != "done" or job.result is None:
            raise HTTPException(409, f"Job not finished (status={job.status}): wait for its 'done' event.")
        store.get(job.image.image_id)  # keeps it from being reaped while in use
        masks, start = crop_to_content(job.result) if crop else (job.result, (0,) * (job.result.ndim - 1))
        info = {"offset": list(start), "grid_shape": list(job.result.shape[1:]), "cropped": crop}
        return Response(pack_array(masks), media_type=OCTET_STREAM, headers={META_HEADER: json.dumps(info)})

    @api.post("/jobs/{job_id}/cancel")
    def cancel_job(job_id: str) -> dict:
        job = _job(scheduler, job_id)
        if not scheduler.cancel(job):
            raise HTTPException(409, f"Job already finished (status={job.status}); nothing to cancel.")
        return {"cancelling": True}

    @api.post("/images/{image_id}/export")
    async def export_labelmap(image_id: str, request: Request) -> Response:
        image = store.get(image_id)
        if image is None or not image.network_orientation:
            raise HTTPException(404, "Unknown image_id (export is for images uploaded as .nii.gz).")
        try:
            labelmap = unpack_array(await request.body(), max_bytes=image.volume.array.size * 2)
        except WireError as error:
            raise HTTPException(400, str(error)) from None
        if tuple(labelmap.shape) != tuple(image.volume.network_shape):
            raise HTTPException(400, f"Label map shape {labelmap.shape} is not the image's {image.volume.network_shape}.")
        content = await run_in_threadpool(_nifti_bytes, image.volume, image.volume.from_network(labelmap))
        return Response(content, media_type=OCTET_STREAM)

    app.include_router(api)

    @app.exception_handler(InputError)
    async def input_error(request: Request, error: InputError) -> Response:
        return Response(json.dumps({"detail": str(error)}), status_code=422, media_type="application/json")

    is_upload = lambda method, path: method == "POST" and path.startswith("/images") and path != "/images/lookup"
    app.add_middleware(BodyLimit, limits=limits, is_upload=is_upload)
    return app


def _job(scheduler: Scheduler, job_id: str) -> Job:
    job = scheduler.get(job_id)
    if job is None:
        raise HTTPException(404, "Unknown job_id (finished jobs are forgotten after the idle time).")
    return job


def _meta(request: Request) -> Any:
    try:
        return json.loads(request.headers.get(META_HEADER, "{}"))
    except ValueError:
        raise HTTPException(400, f"The {META_HEADER} header is not JSON.") from None


def _prompts(prompts: Any, limits: Limits) -> list:
    if isinstance(prompts, str):
        prompts = [prompts]  # as the release: one prompt, not a sequence of characters
    if not prompts:
        raise HTTPException(400, "No prompts given.")
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise HTTPException(400, "prompts must be a list of non-empty strings.")
    if len(prompts) > limits.max_prompts:
        raise HTTPException(400, f"{len(prompts)} prompts in one job; this server takes at most "
                                 f"{limits.max_prompts}. Split them over several jobs.")
    longest = max(len(p) for p in prompts)
    if longest > limits.max_prompt_chars:
        raise HTTPException(400, f"A prompt of {longest} characters; this server takes at most "
                                 f"{limits.max_prompt_chars}. Shorten it.")
    return list(prompts)


def _busy(message: str, limits: Limits) -> HTTPException:
    return HTTPException(503, message, headers={"Retry-After": str(limits.retry_after_s)})


def _nifti_bytes(volume: Volume, labelmap: np.ndarray) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "labels.nii.gz")
        write_mask(labelmap, volume, path)
        with open(path, "rb") as handle:
            return handle.read()
