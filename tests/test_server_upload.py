"""Items 3 and 6: upload once (content-hash dedupe, compressed int16 upload), cropped results,
and a server killed mid-job: the client says so clearly, and after a restart it uploads again, once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from server_fixtures import serve, smooth_volume, tiny_model
from VoxTellCore.ports import free_port
from VoxTellCore.remote.client import RemotePredictor, ServerError, VoxTellClient
from VoxTellCore.remote.wire import compact, content_hash, crop_to_content, pack_array, uncrop


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("upload"))


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    folder, bank = model
    with serve(["-m", folder, "--embeddings", bank, "--device", "cpu"], tmp_path_factory.mktemp("log") / "log") as s:
        yield s


def test_a_reopened_volume_is_not_uploaded_again(server):
    volume = smooth_volume((30, 40, 50), seed=11)
    first = RemotePredictor(server.url)
    first.predict_volume(volume, ["liver"])
    assert first.uploads == 1 and first.uploaded_bytes > 0
    reopened = RemotePredictor(server.url)  # another session, same CT (float32 here, int16 there)
    volume.array = volume.array.astype(np.int16).astype(np.float32)
    reopened.predict_volume(volume, ["spleen"])
    assert reopened.uploads == 0
    other = smooth_volume((30, 40, 50), seed=12)
    reopened.predict_volume(other, ["spleen"])
    assert reopened.uploads == 1
    assert VoxTellClient(server.url).find_image("0" * 64) is None  # the server hashes what it got itself


def test_upload_is_compressed_int16_and_lossless():
    volume = smooth_volume((60, 64, 64))
    assert compact(volume.array).dtype == np.int16
    np.testing.assert_array_equal(compact(volume.array), volume.array)
    assert len(pack_array(compact(volume.array))) < volume.array.nbytes / 3
    fractional = volume.array + 0.5
    assert compact(fractional) is fractional
    assert content_hash(compact(volume.array), volume.ijk_to_ras) == content_hash(volume.array, volume.ijk_to_ras)


def test_cropped_result_equals_the_full_one(server):
    volume = smooth_volume((30, 40, 50), seed=13)
    client = VoxTellClient(server.url)
    image_id, _ = client.upload_array(volume.array, volume.ijk_to_ras)
    job = client.start_job(image_id, ["liver", "aorta"], roi_ras=[70, 50, -20, 90, 70, 20])
    assert list(client.events(job))[-1] == {"status": "done"}
    full, cropped = client.result(job, crop=False), client.result(job, crop=True)
    np.testing.assert_array_equal(full, cropped)
    assert full.any() and not full.all()
    masks, start = crop_to_content(full)
    assert masks.size < full.size
    np.testing.assert_array_equal(uncrop(masks, start, full.shape[1:]), full)
    empty, start = crop_to_content(np.zeros((2, 4, 5, 6), np.uint8))
    np.testing.assert_array_equal(uncrop(empty, start, (4, 5, 6)), np.zeros((2, 4, 5, 6)))


def test_killed_server_is_reported_and_the_client_reuploads_once_after_restart(model, tmp_path):
    folder, bank = model
    args = ["-m", folder, "--embeddings", bank, "--device", "cpu"]
    volume = smooth_volume((200, 40, 40), seed=14)  # 5 windows: time to kill it mid-job
    port = free_port()
    outcome = {}
    with serve(args, tmp_path / "log1", port=port) as server:
        remote = RemotePredictor(server.url)
        started = threading.Event()

        def run():
            try:
                remote.predict_volume(volume, ["liver"], progress=lambda done, total: started.set())
            except Exception as error:  # recorded for the assertions below
                outcome["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        assert started.wait(120)
        server.kill_hard()
        thread.join(60)
    assert isinstance(outcome.get("error"), ServerError)
    assert "Lost the connection to the VoxTell server" in str(outcome["error"])
    assert "Nothing was changed" in str(outcome["error"])
    assert remote.uploads == 1

    with serve(args, tmp_path / "log2", port=port):
        uploads = remote.uploads
        masks = remote.predict_volume(volume, ["liver"])
        assert remote.uploads == uploads + 1  # the restarted server forgot it: uploaded again, once
    assert masks.shape == (1, 200, 40, 40) and masks.any()
