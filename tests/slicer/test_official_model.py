"""Downloading the official model: progress from the bytes in the cache, cancel, errors
(the Hub is replaced by a fake that writes into a temporary cache folder)."""

from __future__ import annotations

import threading
import time

import pytest

from VoxTellCore import models
from VoxTellCore.errors import Cancelled, ModelError
from VoxTellSlicerLib import officialModel


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    cache = tmp_path / "models--mrokuss--VoxTell"
    release = threading.Event()

    def download_model():
        blob = cache / "blobs" / "checkpoint.incomplete"
        blob.parent.mkdir(parents=True)
        for _ in range(4):
            with blob.open("ab") as stream:
                stream.write(b"x" * 1000)
            time.sleep(0.05)
        release.wait(5)
        (cache / "voxtell_v1.1").mkdir()
        return cache / "voxtell_v1.1"

    monkeypatch.setattr(officialModel, "cacheFolder", lambda: cache)
    monkeypatch.setattr(officialModel, "expectedBytes", lambda: 4000)
    monkeypatch.setattr(models, "download_official_model", download_model)
    monkeypatch.setattr(models, "download_official_bank", lambda: cache / "text_embeddings.npz")
    return cache, release


def test_progress_follows_the_bytes_in_the_cache(fake_hub):
    cache, release = fake_hub
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done >= 4000:
            release.set()

    model, bank = officialModel.downloadOfficialModel(progress=progress, pollSeconds=0.02)
    assert model == cache / "voxtell_v1.1" and bank == cache / "text_embeddings.npz"
    assert all(total == 4000 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1][0] == 4000 and seen[0][0] < 4000


def test_cancel_stops_waiting(fake_hub):
    _, release = fake_hub
    cancel = threading.Event()
    with pytest.raises(Cancelled, match="reused next time"):
        officialModel.downloadOfficialModel(progress=lambda done, total: cancel.set(), cancel=cancel, pollSeconds=0.02)
    release.set()


def test_download_errors_reach_the_caller(monkeypatch):
    def offline():
        raise ModelError("could not be downloaded from the Hugging Face Hub")

    monkeypatch.setattr(models, "download_official_model", offline)
    with pytest.raises(ModelError, match="Hugging Face Hub"):
        officialModel.downloadOfficialModel(pollSeconds=0.01)
