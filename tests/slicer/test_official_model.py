"""The official model: found in the Hub cache without any network, downloaded from a fake Hub
on 127.0.0.1 (real huggingface_hub in a child process) with progress, Cancel and timeouts."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from fake_hub import FakeHub

from VoxTellCore.errors import Cancelled, ModelError
from VoxTellCore.text import download
from VoxTellSlicerLib import officialModel

PLANS = b'{"configurations": {}}'
BANK = b"bank" * 100
CHECKPOINT = bytes(range(256)) * 800  # 200 kB


def official_repo(checkpoint: bytes = CHECKPOINT) -> dict:
    return {
        "mrokuss/VoxTell": {
            "voxtell_v1.1/plans.json": PLANS,
            "voxtell_v1.1/fold_0/checkpoint_final.pth": checkpoint,
            "embeddings/voxtell_v1.1/text_embeddings.npz": BANK,
            "voxtell_v1.0/fold_0/checkpoint_final.pth": b"older release, never downloaded",
        }
    }


def refuse_network(*args, **kwargs):
    raise AssertionError("network access")


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection fails, as on a filtered network."""
    monkeypatch.setattr(socket.socket, "connect", refuse_network)
    monkeypatch.setattr(socket, "create_connection", refuse_network)


def test_nothing_cached_is_none_without_network(tmp_path, no_network):
    assert officialModel.cachedOfficialModel(tmp_path) is None


def test_download_reports_progress_then_the_cached_model_is_used_without_network(tmp_path, monkeypatch):
    seen = []
    with FakeHub(official_repo()) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        model, bank = officialModel.downloadOfficialModel(progress=lambda *p: seen.append(p), cacheDir=tmp_path)
    assert (model / "plans.json").read_bytes() == PLANS
    assert (model / "fold_0" / "checkpoint_final.pth").read_bytes() == CHECKPOINT
    assert bank is not None and bank.read_bytes() == BANK
    assert not any("voxtell_v1.0" in request for request in hub.requests), "only the files VoxTell uses"
    wanted = len(PLANS) + len(CHECKPOINT) + len(BANK)
    assert seen[-1][0] == seen[-1][1] >= wanted
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)

    with monkeypatch.context() as offline:
        offline.setattr(socket.socket, "connect", refuse_network)
        assert officialModel.cachedOfficialModel(tmp_path) == (model, bank)
        assert officialModel.downloadOfficialModel(cacheDir=tmp_path) == (model, bank), "cached: no download"


def test_cancel_stops_the_download_mid_file(tmp_path, monkeypatch):
    cancel = threading.Event()
    cancelled_at = []

    def progress(done, total):
        if done > 0 and not cancel.is_set():
            cancel.set()
            cancelled_at.append(time.monotonic())

    with FakeHub(official_repo(b"x" * (4 << 20)), chunk_delay_s=0.05) as hub:  # 4 MB take about 13 s
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(Cancelled, match="reused next time"):
            officialModel.downloadOfficialModel(progress=progress, cancel=cancel, cacheDir=tmp_path)
        assert time.monotonic() - cancelled_at[0] < 2
        folder = download.repo_cache_folder("mrokuss/VoxTell", tmp_path)
        size = download.bytes_in_folder(folder)
        time.sleep(0.5)
        assert download.bytes_in_folder(folder) == size < 4 << 20, "the child process was stopped"
    assert officialModel.cachedOfficialModel(tmp_path) is None


def test_a_hub_that_never_answers_is_given_up_with_the_hf_command(tmp_path, monkeypatch):
    # huggingface_hub leaves some requests without a timeout (or retries them with a longer one),
    # so the child is stopped when no byte and no message arrives for stall_timeout_s.
    with FakeHub(official_repo(), hang=True) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        start = time.monotonic()
        with pytest.raises(ModelError, match=r'got no data for 3 s.*hf download mrokuss/VoxTell --include "voxtell_v1.1/\*"'):
            download.download_snapshot(
                "mrokuss/VoxTell", officialModel.OFFICIAL_PATTERNS, cache_dir=tmp_path,
                request_timeout_s=1, stall_timeout_s=3,
            )
        assert time.monotonic() - start < 20
        assert hub.requests, "the child did ask the (silent) Hub"
    assert officialModel.cachedOfficialModel(tmp_path) is None


def test_a_failing_download_says_why_and_names_the_hf_command(tmp_path, monkeypatch):
    with FakeHub({}) as hub:  # the Hub answers 404: no such repository
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(ModelError, match=r"could not be downloaded.*hf download mrokuss/VoxTell"):
            officialModel.downloadOfficialModel(cacheDir=tmp_path)


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_text_encoder_question_states_download_size_and_memory(empty_hub_cache, no_network, monkeypatch):
    from VoxTellCore.text import encoder

    monkeypatch.setattr(encoder, "available_memory_bytes", lambda: 64 * 10**9)
    on_cpu = officialModel.textEncoderDownload(encoder.DEFAULT_TEXT_ENCODER, "cpu")
    assert "Qwen/Qwen3-Embedding-4B (about 8.0 GB to download" in on_cpu and "about 16 GB of free memory" in on_cpu
    on_gpu = officialModel.textEncoderDownload(encoder.DEFAULT_TEXT_ENCODER, "cuda:0")
    assert "about 8 GB of free memory" in on_gpu


def test_text_encoder_that_cannot_fit_is_refused_before_asking(empty_hub_cache, no_network, monkeypatch):
    from VoxTellCore.text import encoder

    monkeypatch.setattr(encoder, "available_memory_bytes", lambda: 12 * 10**9)
    with pytest.raises(ModelError, match=r"needs about 16.1 GB .* only 12.0 GB is free.*CUDA GPU"):
        officialModel.textEncoderDownload(encoder.DEFAULT_TEXT_ENCODER, "cpu")
    assert "about 8.0 GB to download" in officialModel.textEncoderDownload(encoder.DEFAULT_TEXT_ENCODER, "cuda")


def test_text_encoder_on_disk_needs_no_question(tmp_path, no_network):
    from text_fixtures import make_tiny_encoder

    assert officialModel.textEncoderDownload(str(make_tiny_encoder(tmp_path)), "cpu") is None
