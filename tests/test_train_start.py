"""`voxtell-train` as a new user starts it: a start that fails leaves no output folder behind."""

from __future__ import annotations

import json

from test_training_support import write_config

from Training.cli import main


def test_a_failed_start_writes_no_config_and_no_folder(tmp_path, capsys):
    config = write_config(tmp_path / "data")
    raw = json.loads(config.read_text())
    raw["embedding_bank"] = str(tmp_path / "missing_bank.npz")
    config.write_text(json.dumps(raw))
    out = tmp_path / "run"
    assert main([str(config), "--output", str(out)]) == 1
    assert "missing_bank.npz" in capsys.readouterr().err
    assert not out.exists(), "no training_config.json of a run that never started"


def test_a_configs_relative_paths_start_at_its_own_folder_from_any_launch_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    config = write_config(project / "data")
    raw = json.loads(config.read_text())
    raw["datasets"][0]["path"] = "../data/Dataset900_Tiny"
    raw["vocabulary"] = ["../data/vocabulary.json"]
    raw["preprocessed_dir"] = "../data/fresh_cache"
    (project / "configs").mkdir()
    (project / "configs" / "train.json").write_text(json.dumps(raw))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["preprocess", "../project/configs/train.json", "--no-progress"]) == 0
    assert any((project / "data" / "fresh_cache").iterdir())
    # --set values are typed at the command line: they start at the launch folder
    assert main(["preprocess", "../project/configs/train.json", "--no-progress",
                 "--set", "preprocessed_dir=cache_here"]) == 0
    assert any((tmp_path / "elsewhere" / "cache_here").iterdir())
