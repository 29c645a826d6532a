"""Runs computed on a VoxTell server (`voxtell-core serve`, the main environment's .venv) through
the core's client: the same masks as this process's own demo model, and a wrong key is a message."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from browser import ROOT
from conftest import PROMPT

import VoxTellWeb  # noqa: F401  (VoxTellSlicerLib on the path)
from VoxTellCore.errors import VoxTellError
from VoxTellCore.ports import free_port
from VoxTellWeb.compute import server_factory
from VoxTellWeb.session import Upload, WebSession

SERVER_PYTHON = ROOT / ".venv" / "bin" / "python"
KEY = "web-test-key"


@pytest.fixture(scope="module")
def voxtell_server(tmp_path_factory):
    assert SERVER_PYTHON.exists(), f"{SERVER_PYTHON} (the main environment, with the server) is missing: setup.sh --test"
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VOXTELL_API_KEY": KEY}
    with open(log, "w") as output:
        server = subprocess.Popen([str(SERVER_PYTHON), "-m", "VoxTellCore.cli", "serve", "-m", "demo", "--device", "cpu",
                                   "--port", str(port)], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"voxtell-core serve did not answer: {log.read_text()}"
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def segment(phantom: Path, predictor_factory=None) -> np.ndarray:
    from trame_slicer.core import SlicerApp

    app = SlicerApp()
    session = WebSession(app.scene, app.terminologies_logic, model="demo", device="cpu",
                         predictor_factory=predictor_factory)
    session.open([Upload(phantom.name, phantom.read_bytes())])
    return session.predict(session.requests([PROMPT]))


def test_server_compute_gives_the_local_masks(voxtell_server, phantom):
    remote = segment(phantom, server_factory(voxtell_server, KEY))
    assert remote.any() and np.array_equal(remote, segment(phantom))


def test_a_wrong_key_is_a_message(voxtell_server, phantom):
    with pytest.raises(VoxTellError, match="refused the API key"):
        segment(phantom, server_factory(voxtell_server, "not-the-key"))
