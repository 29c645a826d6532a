"""Item 6: bad input and faults get a 4xx naming the problem, and the server stays healthy
(checked after the whole matrix, then a normal job still runs). Item 5's size limits: 413
from the declared length before the body is read, declared shape x dtype before inflating."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import time

import nibabel
import numpy as np
import pytest

from server_fixtures import serve, smooth_volume, tiny_model
from VoxTellCore.remote.client import VoxTellClient
from VoxTellCore.remote.wire import ARRAY_CONTENT_TYPE, MAGIC, META_HEADER, pack_array

LIMIT_MB = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    model, bank = tiny_model(folder)
    args = ["-m", model, "--embeddings", bank, "--device", "cpu", "--max-upload-gb", LIMIT_MB / 1000]
    with serve(args, folder / "log") as running:
        yield running


def call(server, method, path, body=None, headers=None, payload=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = dict(headers or {})
    if payload is not None:
        body, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read()
    connection.close()
    try:
        detail = json.loads(text).get("detail", "")
    except (ValueError, AttributeError):
        detail = text
    return response.status, str(detail), response


def array_upload(array, matrix=None, raw=None):
    meta = json.dumps({"ijk_to_ras": (np.eye(4) if matrix is None else matrix).tolist()})
    return raw if raw is not None else pack_array(array), {"Content-Type": ARRAY_CONTENT_TYPE, META_HEADER: meta}


def nifti_header_only(shape, dtype=np.int16) -> bytes:
    header = nibabel.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    return gzip.compress(header.binaryblock + b"\0" * 4 + bytes(1_000_000))


def vxa2_frame(dtype: str, shape, chunks) -> bytes:
    out = bytearray(MAGIC) + bytes([len(dtype)]) + dtype.encode() + bytes([len(shape)])
    for size in shape:
        out += int(size).to_bytes(8, "little")
    out += (int(np.prod(shape)) * np.dtype(dtype).itemsize).to_bytes(8, "little")
    for length, data in chunks:
        out += length.to_bytes(8, "little") + len(data).to_bytes(8, "little") + data
    return bytes(out)


def bad_uploads():
    import blosc2

    good = smooth_volume((20, 20, 20)).array.astype(np.int16)
    nan, inf = good.astype(np.float32), good.astype(np.float32)
    nan[3, 3, 3], inf[4, 4, 4] = np.nan, np.inf
    packed = pack_array(good)
    return {
        "truncated array": (array_upload(good, raw=packed[: len(packed) // 2]), "Truncated"),
        "wrong magic": (array_upload(good, raw=b"XXXX" + packed[4:]), "does not start with VXA2"),
        "random bytes": ((os.urandom(5000), {}), "not a NIfTI"),
        "a PNG": ((b"\x89PNG\r\n\x1a\n" + os.urandom(2000), {}), "not a NIfTI"),
        "gz bomb header": ((nifti_header_only((4000, 4000, 4000)), {}), "would take"),
        "gz of zeros": ((gzip.compress(bytes(50_000_000)), {}), "not a NIfTI"),
        "array bomb": (array_upload(None, raw=vxa2_frame("<i2", (3000, 3000, 3000), [])), "would take"),
        "lying chunk": (array_upload(None, raw=vxa2_frame("<i2", (10, 10, 10), [
            (2000, blosc2.compress(bytes(10_000_000), typesize=2))])), "inflate to more"),
        "NaN volume": (array_upload(nan), "NaN or infinite"),
        "Inf volume": (array_upload(inf), "NaN or infinite"),
        "0-sized image": (array_upload(np.zeros((0, 10, 10), np.int16)), "single slice"),
        "2-D image": (array_upload(np.zeros((10, 10), np.int16)), "send a 3D"),
        "2-D NIfTI": ((gzip.compress(nibabel.Nifti1Image(np.zeros((9, 9), np.int16), np.eye(4)).to_bytes()), {}),
                      "3D"),
        "absurd spacing": (array_upload(good, np.diag([1e6, 1e6, 1e6, 1.0])), "spacing"),
        "singular geometry": (array_upload(good, np.diag([1.0, 0.0, 1.0, 1.0])), "spacing"),
        "no geometry": ((packed, {"Content-Type": ARRAY_CONTENT_TYPE}), "ijk_to_ras"),
        "meta not JSON": ((packed, {"Content-Type": ARRAY_CONTENT_TYPE, META_HEADER: "{oops"}), "not JSON"),
    }


def wait_status(client, job_id, wanted, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get_json(f"/jobs/{job_id}")["status"]
        if status in wanted:
            return status
        time.sleep(0.05)
    raise TimeoutError(job_id)


def test_bad_input_matrix_then_healthy(server):
    failures = []
    for name, ((body, headers), message) in bad_uploads().items():
        status, detail, _ = call(server, "POST", "/images", body, headers)
        if not (400 <= status < 500 and message in detail):
            failures.append((name, status, detail[:200]))

    client = VoxTellClient(server.url)
    image_id, _ = client.upload_array(smooth_volume((20, 20, 20)).array, np.eye(4))
    long_volume = smooth_volume((260, 40, 40))
    long_id, _ = client.upload_array(long_volume.array, long_volume.ijk_to_ras)
    job_checks = {
        "no prompts": ({"image_id": image_id, "prompts": []}, 400, "No prompts"),
        "10,000 prompts": ({"image_id": image_id, "prompts": ["liver"] * 10_000}, 400, "at most"),
        "100 kB prompt": ({"image_id": image_id, "prompts": ["x" * 100_000]}, 400, "characters"),
        "unknown image": ({"image_id": "nope", "prompts": ["liver"]}, 404, "Unknown image_id"),
        "bad roi": ({"image_id": image_id, "prompts": ["liver"], "roi_ras": [1, 2]}, 400, "roi_ras"),
        "roi outside": ({"image_id": image_id, "prompts": ["liver"], "roi_ras": [900, 900, 900, 901, 901, 901]},
                        422, "does not overlap"),
        "prompt not text": ({"image_id": image_id, "prompts": [3]}, 400, "non-empty strings"),
    }
    for name, (payload, code, message) in job_checks.items():
        status, detail, _ = call(server, "POST", "/jobs", payload=payload)
        if status != code or message not in detail:
            failures.append((name, status, detail[:200]))
    status, _, _ = call(server, "POST", "/jobs", b"{not json", {"Content-Type": "application/json"})
    failures += [] if status == 422 else [("malformed JSON", status, "")]
    for path in ("/jobs/nope/events", "/jobs/nope/result", "/jobs/nope"):
        status, detail, _ = call(server, "GET", path)
        failures += [] if status == 404 and "Unknown job_id" in detail else [(path, status, detail)]
    status, _, _ = call(server, "POST", "/jobs/nope/cancel")
    failures += [] if status == 404 else [("cancel unknown", status, "")]

    running = client.start_job(long_id, ["liver"])  # 7 windows: still running for the next calls
    status, detail, _ = call(server, "GET", f"/jobs/{running}/result")
    failures += [] if status == 409 and "not finished" in detail else [("result before done", status, detail)]
    disconnect_mid_stream(server, running)
    disconnect_mid_upload(server)
    status, _, _ = call(server, "POST", f"/jobs/{running}/cancel")
    failures += [] if status == 200 else [("cancel", status, "")]
    assert wait_status(client, running, ("cancelled",)) == "cancelled"
    status, detail, _ = call(server, "POST", f"/jobs/{running}/cancel")
    failures += [] if status == 409 and "already finished" in detail else [("double cancel", status, detail)]

    small = client.start_job(image_id, ["liver"])
    assert wait_status(client, small, ("done",)) == "done"
    status, detail, _ = call(server, "POST", f"/jobs/{small}/cancel")
    failures += [] if status == 409 else [("cancel after done", status, detail)]

    assert not failures, failures
    assert call(server, "GET", "/healthz")[0] == 200
    job = client.start_job(image_id, ["spleen"])
    assert wait_status(client, job, ("done",)) == "done"
    assert client.result(job).shape == (1, 20, 20, 20)
    assert server.process.poll() is None


def disconnect_mid_upload(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 1000000\r\n\r\n" + bytes(1000))


def disconnect_mid_stream(server, job_id):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")


def test_oversized_upload_is_refused_before_its_body_is_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /images HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 5000000000\r\n\r\n")  # no body byte is ever sent
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413") and b"limit of 40 MB" in answer

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:  # no Content-Length:
        sock.sendall(b"POST /images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")  # counted
        chunk = b"%x\r\n" % 1_000_000 + bytes(1_000_000) + b"\r\n"
        try:
            for _ in range(LIMIT_MB + 5):
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert call(server, "GET", "/healthz")[0] == 200


def test_cancel_takes_effect_within_one_window(server):
    client = VoxTellClient(server.url)
    volume = smooth_volume((330, 40, 40), seed=4)  # 9 windows
    image_id, _ = client.upload_array(volume.array, volume.ijk_to_ras)
    job = client.start_job(image_id, ["liver"])
    done_when_cancelled, last = None, 0
    for event in client.events(job):
        if "done" in event:
            last = event["done"]
            if done_when_cancelled is None:
                client.cancel(job)
                done_when_cancelled = last
        final = event.get("status")
    assert final == "cancelled"
    assert last <= done_when_cancelled + 1 < 9  # at most the window that was running
