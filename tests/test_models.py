"""Which model a command uses: -m, then $VOXTELL_MODEL, then the official download; the demo
only when asked; clear advice when a folder is missing or the download is impossible."""

from __future__ import annotations

import pytest

from VoxTellCore import models
from VoxTellCore.errors import ModelError
from VoxTellCore.models import DEMO_MODEL_DIR, OFFICIAL_MODEL, OFFICIAL_REPO, resolve_model_dir


@pytest.fixture
def official(monkeypatch, tmp_path):
    """The official download, replaced by a folder here (no network in tests); counts its calls."""
    calls = []

    def download():
        calls.append(1)
        return tmp_path / "hub" / OFFICIAL_MODEL

    monkeypatch.setattr(models, "download_official_model", download)
    monkeypatch.delenv("VOXTELL_MODEL", raising=False)
    return calls


def test_model_option_wins_over_the_environment(tmp_path, monkeypatch, official):
    (tmp_path / "mine").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("VOXTELL_MODEL", str(tmp_path / "env"))
    assert resolve_model_dir(tmp_path / "mine") == tmp_path / "mine"
    assert resolve_model_dir(None) == tmp_path / "env"
    assert resolve_model_dir("") == tmp_path / "env"
    assert official == []


def test_demo_only_when_asked(monkeypatch, official):
    assert resolve_model_dir("demo") == DEMO_MODEL_DIR
    monkeypatch.setenv("VOXTELL_MODEL", "demo")
    assert resolve_model_dir(None) == DEMO_MODEL_DIR
    assert official == []
    monkeypatch.delenv("VOXTELL_MODEL")
    assert resolve_model_dir(None) == models.download_official_model()
    assert resolve_model_dir(None).name == OFFICIAL_MODEL != DEMO_MODEL_DIR.name


@pytest.mark.parametrize("source", ["option", "environment"])
def test_missing_folder_names_the_path(tmp_path, monkeypatch, official, source):
    missing = tmp_path / "not-here"
    if source == "environment":
        monkeypatch.setenv("VOXTELL_MODEL", str(missing))
    with pytest.raises(ModelError, match=f"The model folder {missing} does not exist"):
        resolve_model_dir(missing if source == "option" else None)
    assert official == [], "a missing folder never falls back to a download"


def test_offline_download_gives_the_hf_command_and_the_alternatives(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    monkeypatch.delenv("VOXTELL_MODEL", raising=False)
    with pytest.raises(ModelError) as error:
        resolve_model_dir(None)
    message = str(error.value)
    assert f"hf download {OFFICIAL_REPO} --include '{OFFICIAL_MODEL}/*'" in message
    assert "huggingface-cli" not in message
    assert "-m or $VOXTELL_MODEL" in message and "-m demo" in message
