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
