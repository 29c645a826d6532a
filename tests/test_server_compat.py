"""Item 1: our server speaks voxtell-server 0.1.2's protocol (napari-voxtell 0.2.0's client drives
it unmodified), our client drives the release's server, and /version lets a client refuse an
incompatible server. Fast tests use the demo model; the oracle test runs the release's own
predictor and ours on one release-sized window."""

from __future__ import annotations

import gzip

import nibabel
import numpy as np
import pytest
import torch

from server_fixtures import load_napari_client, serve, serve_in_thread, smooth_volume
from VoxTellCore.errors import InputError
from VoxTellCore.evaluation.metrics import dice
from VoxTellCore.inference.predictor import VoxTellPredictor
from VoxTellCore.io import kji_to_network
from VoxTellCore.remote.client import RemotePredictor, ServerError, VoxTellClient, nifti_bytes

PROMPTS = ["liver", "spleen"]


@pytest.fixture(scope="module")
def local():
    return VoxTellPredictor("demo", device="cpu")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(["-m", "demo", "--device", "cpu"], tmp_path_factory.mktemp("srv") / "log") as running:
        yield running


def test_napari_client_unmodified_drives_our_server(server, local):
    napari = load_napari_client()
    volume = smooth_volume()
    client = napari.VoxTellRemoteClient(server.url)
    assert client.healthz()
    assert client.capabilities()["patch_size"] == [64, 64, 64]
    image_id, array, spacing, shape = client.upload_image(nifti_bytes(volume))
    network = volume.to_network()
    np.testing.assert_array_equal(array, network)  # the release's reoriented image, for display
    assert shape == network.shape and len(spacing) == 3
    job_id = client.start_job(image_id, PROMPTS)
    events = list(client.stream_events(job_id))
    assert events[-1] == {"status": "done"}
    assert any("done" in e and "total" in e for e in events)
    masks = client.get_result(job_id)
    expected = kji_to_network(local.predict_volume(volume, PROMPTS), volume.ijk_to_ras)
    assert masks.shape == (2, *network.shape) and masks.dtype == np.uint8
    assert 0 < masks.mean() < 1
    np.testing.assert_array_equal(masks, expected)

    exported = client.export(image_id, masks[0])  # back in the file's own orientation
    image = nibabel.Nifti1Image.from_bytes(gzip.decompress(exported))
    np.testing.assert_allclose(image.affine, volume.ijk_to_ras, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(image.dataobj).T, local.predict_volume(volume, PROMPTS)[0])
    client.close()


def test_napari_client_cancel_and_single_prompt_string(server):
    napari = load_napari_client()
    client = napari.VoxTellRemoteClient(server.url)
    image_id, array, _, _ = client.upload_image(nifti_bytes(smooth_volume((90, 90, 90), seed=3)), include_image=False)
    assert array is None
    job_id = client.start_job(image_id, "liver")
    client.cancel(job_id)
    assert list(client.stream_events(job_id))[-1]["status"] in ("cancelled", "done")
    client.close()


class ReleaseAdapter:
    """Our tiny predictor in the shape the release's server engine calls (``predict_single_image``)."""

    def __init__(self, predictor):
        self.predictor, self.patch_size, self.device = predictor, predictor.patch_size, torch.device("cpu")
        self.perform_everything_on_device = True

    def list_available_embeddings(self):
        return sorted(self.predictor.embedder.bank.labels)

    def predict_single_image(self, data, prompts, progress_callback=None):
        return self.predictor.predict_network_array(data[0], self.predictor.embed(prompts),
                                                    progress=progress_callback)


def test_our_client_drives_the_release_server_app(local):
    from voxtell.server.app import make_app

    volume = smooth_volume(seed=5)
    with serve_in_thread(make_app(ReleaseAdapter(local), model_name="demo")) as url:
        remote = RemotePredictor(url)
        assert remote.release_server and remote.info["protocol"] == 0
        masks = remote.predict_volume(volume, PROMPTS, progress=lambda done, total: None)
    np.testing.assert_array_equal(masks, local.predict_volume(volume, PROMPTS))
    assert 0 < masks.mean() < 1


def test_version_handshake(server, monkeypatch):
    client = VoxTellClient(server.url)
    info = client.version()
    assert info["protocol"] == 1 and info["devices"] == ["cpu"] and "demo model" in info["model"]
    monkeypatch.setattr("VoxTellCore.remote.client.PROTOCOL_VERSION", 2)
    with pytest.raises(ServerError, match="speaks VoxTell protocol 1, this client 2: update"):
        client.version()


def test_a_bad_url_is_named():
    with pytest.raises(InputError, match="http://HOST:PORT"):
        VoxTellClient("127.0.0.1:1527")


@pytest.mark.slow
@pytest.mark.oracle
def test_release_server_and_ours_give_the_same_masks_on_one_ct(tmp_path):
    """The real release predictor behind the real release server vs ours, same weights and CT."""
    from model_fixtures import RELEASE_COMPATIBLE, make_bank, make_model_folder
    from voxtell.inference.predictor import VoxTellPredictor as ReleasePredictor
    from voxtell.server.app import make_app

    folder = make_model_folder(tmp_path / "model", RELEASE_COMPATIBLE, seed=3)
    bank = make_bank(tmp_path / "bank.npz", ["liver"], RELEASE_COMPATIBLE.text_embedding_dim, seed=4)
    volume = smooth_volume((150, 170, 160), seed=7, ijk_to_ras=np.diag([-1.0, -1.0, 1.2, 1.0]))
    release = ReleasePredictor(model_dir=str(folder), device=torch.device("cpu"), embedding_bank=str(bank))
    with serve_in_thread(make_app(release, model_name="release")) as url:
        theirs = RemotePredictor(url).predict_volume(volume, ["liver"])
    del release
    with serve(["-m", folder, "--embeddings", bank, "--device", "cpu"], tmp_path / "log") as ours_server:
        ours = RemotePredictor(ours_server.url).predict_volume(volume, ["liver"])
    assert 0.02 < theirs.mean() < 0.98
    assert dice(ours[0] > 0, theirs[0] > 0) >= 0.99
