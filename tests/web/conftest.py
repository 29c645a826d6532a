"""Fixtures of the web tests (run in .venv-web: tests/test_web_app.py starts them there).

The phantom is the demo's (seed 2026, the demo model's shape) written as NIfTI by the core; the
command line's `.seg.nrrd` of it is made by `voxtell-core predict` in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# tests/conftest.py (and pytest) put tests/ on sys.path; slicer-core 5.11's `slicer` package adds every
# `slicer` folder on sys.path to its own and imports what it holds, tests/slicer/conftest.py included.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != TESTS]
sys.path.insert(0, str(Path(__file__).parent))

from browser import ROOT, open_page, web_server, write_phantom  # noqa: E402

PROMPT = "liver"


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> Path:
    return write_phantom(tmp_path_factory.mktemp("input") / "phantom.nii.gz")


@pytest.fixture(scope="session")
def cli_seg_nrrd(phantom, tmp_path_factory) -> Path:
    """`voxtell-core predict --format seg-nrrd -m demo -p liver` on the phantom."""
    out = tmp_path_factory.mktemp("cli")
    subprocess.run([sys.executable, "-m", "VoxTellCore.cli", "predict", "-i", str(phantom), "-o", str(out),
                    "-p", PROMPT, "-m", "demo", "--device", "cpu", "--format", "seg-nrrd"],
                   check=True, cwd=ROOT, capture_output=True)
    return out / "phantom.seg.nrrd"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "voxtell-web.log"
    with web_server("-m", "demo", "--device", "cpu", log=log) as url:
        yield url


@pytest.fixture(scope="module")
def page(server_url):
    with open_page(server_url) as opened:
        yield opened
