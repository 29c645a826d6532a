"""Torch-free client of a VoxTell server: ``VoxTellClient`` (the HTTP calls) and
``RemotePredictor`` (the local predictor's ``predict_volume``, run on a server).

Standard library + numpy + blosc2 only, Python 3.9, so Slicer 5.6/5.8 and the command line
both import it without PyTorch. It speaks our server's protocol and falls back to the
release's (voxtell-server 0.1.2 has no ``/version``): the image then goes up as .nii.gz and the
masks come back in the release's network orientation (that path needs nibabel).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.errors import Cancelled, InputError, VoxTellError
from VoxTellCore.progress import CancelCheck, Progress, is_cancelled
from VoxTellCore.remote.wire import (
    ARRAY_CONTENT_TYPE,
    META_HEADER,
    OCTET_STREAM,
    PROTOCOL_VERSION,
    compact,
    content_hash,
    pack_array,
    uncrop,
    unpack_array,
)

#: The ``/version`` answer we make up for voxtell-server 0.1.2, which has no such route.
RELEASE_PROTOCOL = 0


class ServerError(VoxTellError):
    """The server cannot be reached, refused the key, is busy, or failed; the message says what to do."""


class VoxTellClient:
    """The HTTP calls of a VoxTell server (ours or voxtell-server 0.1.2)."""

    def __init__(self, url: str, api_key: Optional[str] = None, timeout: float = 600.0,
                 ca_file: Optional[str] = None) -> None:
        parsed = urllib.parse.urlparse(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"Server URL {url!r}: write it as http://HOST:PORT or https://HOST:PORT.")
        self.url = url.strip().rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._context = ssl.create_default_context(cafile=ca_file) if parsed.scheme == "https" else None

    # ------------------------------------------------------------------ plumbing
    def request(self, method: str, path: str, body: Optional[bytes] = None, json_body: Any = None,
                headers: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> http.client.HTTPResponse:
        """The open response of a 2xx answer; ServerError / InputError naming the problem otherwise."""
        all_headers = dict(self._headers, **(headers or {}))
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=all_headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout, context=self._context)
        except urllib.error.HTTPError as error:
            raise self._http_error(error) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise ServerError(f"Cannot reach the VoxTell server at {self.url} ({reason}). Check the URL, that the "
                              "server runs (voxtell-core serve) and any SSH tunnel.") from None

    def _http_error(self, error: urllib.error.HTTPError) -> VoxTellError:
        try:
            detail = json.loads(error.read() or b"{}").get("detail") or error.reason
        except (ValueError, AttributeError, OSError):
            detail = error.reason
        detail = detail if isinstance(detail, str) else json.dumps(detail)
        if error.code == 401:
            return ServerError(f"The VoxTell server at {self.url} refused the API key ({detail}). Enter the key "
                               "its administrator gave you.")
        if error.code == 503:
            wait = error.headers.get("Retry-After", "a few")
            return ServerError(f"The VoxTell server is busy: {detail} Try again in {wait} s.")
        if error.code in (400, 413, 422):
            return InputError(f"The VoxTell server refused the request: {detail}")
        failure = ServerError(f"The VoxTell server answered {error.code}: {detail}")
        failure.status = error.code  # type: ignore[attr-defined]
        return failure

    def get_json(self, path: str) -> Any:
        with self.request("GET", path) as response:
            return json.loads(response.read())

    def post_json(self, path: str, payload: Any) -> Any:
        with self.request("POST", path, json_body=payload) as response:
            return json.loads(response.read())

    # ------------------------------------------------------------------ calls
    def version(self) -> dict:
        """``/version``; for voxtell-server 0.1.2 (no such route) its ``/capabilities`` as protocol 0."""
        try:
            info = self.get_json("/version")
        except ServerError as error:
            if getattr(error, "status", None) != 404:
                raise
            capabilities = self.get_json("/capabilities")
            return {"protocol": RELEASE_PROTOCOL, "server": "voxtell-server", "version": "0.1.2",
                    "model": capabilities.get("model", "?"), "devices": ["?"], "is_demo": False}
        if info.get("protocol") != PROTOCOL_VERSION:
            raise ServerError(f"The server at {self.url} speaks VoxTell protocol {info.get('protocol')}, this client "
                              f"{PROTOCOL_VERSION}: update the older of the two (voxtell-core "
                              f"{info.get('version', '?')} on the server).")
        return info

    def find_image(self, sha256: str) -> Optional[str]:
        try:
            return self.post_json("/images/lookup", {"sha256": sha256})["image_id"]
        except ServerError as error:
            if getattr(error, "status", None) == 404:
                return None
            raise

    def upload_array(self, array: np.ndarray, ijk_to_ras: np.ndarray) -> Tuple[str, int]:
        """Uploads a KJI volume (int16 when lossless); returns its image id and the bytes sent."""
        body = pack_array(compact(np.asarray(array)))
        meta = json.dumps({"ijk_to_ras": np.asarray(ijk_to_ras, dtype=float).tolist()})
        headers = {"Content-Type": ARRAY_CONTENT_TYPE, META_HEADER: meta}
        with self.request("POST", "/images?include_image=false", body=body, headers=headers) as response:
            return json.loads(response.headers[META_HEADER])["image_id"], len(body)

    def upload_nifti(self, nifti_bytes: bytes) -> Tuple[str, Tuple[int, ...]]:
        """The release's upload: .nii.gz bytes; returns the image id and its network shape."""
        headers = {"Content-Type": OCTET_STREAM}
        with self.request("POST", "/images?include_image=false", body=nifti_bytes, headers=headers) as response:
            meta = json.loads(response.headers[META_HEADER])
        return meta["image_id"], tuple(meta["shape"])

    def start_job(self, image_id: str, prompts: Sequence[str], roi_ras: Optional[Sequence[float]] = None,
                  keep_largest: bool = False) -> str:
        payload: Dict[str, Any] = {"image_id": image_id, "prompts": list(prompts), "keep_largest": keep_largest}
        if roi_ras is not None:
            payload["roi_ras"] = [float(v) for v in roi_ras]
        return self.post_json("/jobs", payload)["job_id"]

    def events(self, job_id: str) -> Iterator[dict]:
        """The job's NDJSON events up to the terminal ``{"status": ...}``; ServerError if the stream breaks first."""
        with self.request("GET", f"/jobs/{job_id}/events", timeout=24 * 3600) as response:
            try:
                for line in response:
                    if line.strip():
                        event = json.loads(line)
                        yield event
                        if "status" in event:
                            return
            except (OSError, http.client.HTTPException, ValueError):
                pass
        raise ServerError(f"Lost the connection to the VoxTell server at {self.url} during the job (the server "
                          "stopped or the network failed). Nothing was changed; when the server runs again, "
                          "run once more (the image is uploaded again if needed).")

    def result(self, job_id: str, crop: bool = True) -> np.ndarray:
        """The job's masks on the full grid; ``crop`` fetches only the box holding them (ours only)."""
        with self.request("GET", f"/jobs/{job_id}/result" + ("?crop=true" if crop else "")) as response:
            meta = json.loads(response.headers.get(META_HEADER) or "{}")
            masks = unpack_array(response.read())
        if meta.get("cropped"):
            masks = uncrop(masks, meta["offset"], meta["grid_shape"])
        return masks

    def cancel(self, job_id: str) -> None:
        try:
            self.request("POST", f"/jobs/{job_id}/cancel").close()
        except ServerError:
            pass  # finished meanwhile, or gone: either way nothing runs


class RemotePredictor:
    """``predict_volume`` as the local ``VoxTellPredictor`` has it, computed on a VoxTell server.

    An image is uploaded once per server (the server is first asked for its content hash);
    when the server has forgotten it (a restart), it is uploaded again, once.
    ``notify(text)`` receives the queue position while a job waits.
    """

    def __init__(self, url: str, api_key: Optional[str] = None, ca_file: Optional[str] = None,
                 notify: Optional[Callable[[str], None]] = None, crop: bool = True) -> None:
        self.client = VoxTellClient(url, api_key, ca_file=ca_file)
        self.notify, self.crop = notify, crop
        self.info = self.client.version()
        self.description = str(self.info.get("model"))
        self.is_demo = bool(self.info.get("is_demo"))
        self.device = f"server {self.client.url} ({', '.join(self.info.get('devices') or ['?'])})"
        self.release_server = self.info["protocol"] == RELEASE_PROTOCOL
        self._image_ids: Dict[str, str] = {}
        self.uploads = 0
        self.uploaded_bytes = 0

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """The prompts themselves: the server embeds them (so the batch engine's lookup tables work)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if len(prompts) == 0:
            raise InputError("No prompt given: pass at least one text prompt, e.g. -p liver.")
        return np.array(list(prompts), dtype=object)

    def predict_volume(self, volume: Any, prompts: Sequence[str], roi_ras: Optional[Sequence[float]] = None,
                       progress: Optional[Progress] = None, cancel: CancelCheck = None) -> np.ndarray:
        """uint8 masks (N, K, J, I) on ``volume``'s grid (``volume``: ``array`` KJI and ``ijk_to_ras``)."""
        prompts = [str(p) for p in self.embed(prompts)]
        digest = content_hash(volume.array, volume.ijk_to_ras)
        for attempt in range(2):
            image_id = self._image_id(volume, digest)
            try:
                job_id = self.client.start_job(image_id, prompts, roi_ras)
                break
            except ServerError as error:
                if getattr(error, "status", None) != 404 or attempt:
                    raise
                self._image_ids.pop(digest, None)  # the server restarted or forgot it: upload again, once
        masks = self._follow(job_id, progress, cancel)
        if self.release_server:
            from VoxTellCore.io.volume import network_to_kji

            masks = network_to_kji(masks, volume.ijk_to_ras)
        expected = (len(prompts), *volume.array.shape)
        if masks.shape != expected:
            raise ServerError(f"The server sent masks of shape {masks.shape}, expected {expected}.")
        return masks.astype(np.uint8, copy=False)

    def _image_id(self, volume: Any, digest: str) -> str:
        if digest in self._image_ids:
            return self._image_ids[digest]
        image_id = None if self.release_server else self.client.find_image(digest)
        if image_id is None:
            if self.release_server:
                image_id, _ = self.client.upload_nifti(nifti_bytes(volume))
            else:
                image_id, sent = self.client.upload_array(volume.array, volume.ijk_to_ras)
                self.uploaded_bytes += sent
            self.uploads += 1
        self._image_ids[digest] = image_id
        return image_id

    def _follow(self, job_id: str, progress: Optional[Progress], cancel: CancelCheck) -> np.ndarray:
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(0.1):
                if is_cancelled(cancel):
                    self.client.cancel(job_id)
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            for event in self.client.events(job_id):
                if "done" in event and progress is not None:
                    progress(int(event["done"]), int(event["total"]))
                elif event.get("event") == "queued" and self.notify is not None:
                    eta = event.get("eta_s")
                    self.notify(f"Waiting on the server: {event['position']} job(s) ahead"
                                + (f", about {eta:.0f} s." if eta is not None else "."))
                status = event.get("status")
                if status == "cancelled":
                    raise Cancelled("Inference cancelled.")
                if status == "error":
                    raise InputError(f"The server could not segment this image: {event.get('message')}")
        finally:
            finished.set()
        return self.client.result(job_id, crop=self.crop and not self.release_server)


def nifti_bytes(volume: Any) -> bytes:
    """``volume`` as .nii.gz bytes (the release server's upload): data in (i, j, k) order, affine IJK-to-RAS."""
    import gzip

    import nibabel

    image = nibabel.Nifti1Image(np.ascontiguousarray(np.asarray(volume.array).T), np.asarray(volume.ijk_to_ras, float))
    return gzip.compress(image.to_bytes(), compresslevel=1)
