"""The web app's tests (tests/web: the app driven in headless Chromium, the session on Slicer's
scene) run in the web app's own environment, .venv-web (trame-slicer pins slicer-core<5.12,
this suite has 5.13): this test starts them there, so the README's one test command covers them,
and shows their output when they fail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_WEB_PYTHON = ROOT / ".venv-web" / "bin" / "python"
BROWSER = (Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver"))
TIMEOUT_S = 900


def test_web_app_tests_pass_in_their_environment() -> None:
    assert VENV_WEB_PYTHON.exists(), f"{VENV_WEB_PYTHON} is missing: run `bash scripts/setup.sh --test` (or --web)."
    missing = [str(path) for path in BROWSER if not path.exists()]
    assert not missing, f"{missing} missing: apt-get install chromium chromium-driver (setup.sh --test does, as root)."
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([str(VENV_WEB_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/web"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    print(result.stdout[-4000:])
    assert result.returncode == 0, f"tests/web failed in .venv-web:\n{result.stdout[-12000:]}\n{result.stderr[-4000:]}"
    assert " passed" in result.stdout.splitlines()[-1]
