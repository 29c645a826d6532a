"""Helpers for the Slicer extension's tests: paths, Slicer's terminology lists, test volumes.

The ``slicer-core`` wheel has MRML and the module logics but no ``.term.json`` files; the
``trame-slicer`` wheel ships them, so the first run downloads that wheel, pinned (without
installing it), and extracts the lists into ``tests/slicer/.cache/terminologies-<version>``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SLICER_MODULE_DIR = ROOT / "VoxTellSlicer"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
TERMINOLOGY_MEMBERS = "trame_slicer/resources/terminologies/"
# Pinned: the colours and labels the tests expect come from these lists (test_static checks them).
TRAME_SLICER_VERSION = "2.0.0"

for path in (ROOT, SLICER_MODULE_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def fetch_terminologies(cache_dir: Path = CACHE_DIR) -> Path:
    """Folder with Slicer's ``*.term.json`` lists, downloaded once from the trame-slicer wheel."""
    target = cache_dir / f"terminologies-{TRAME_SLICER_VERSION}"
    if any(target.glob("*.term.json")):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             f"trame-slicer=={TRAME_SLICER_VERSION}", "-d", download],
            check=True,
        )
        wheel = next(Path(download).glob(f"trame_slicer-{TRAME_SLICER_VERSION}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(TERMINOLOGY_MEMBERS) and member.endswith(".json"):
                    (target / Path(member).name).write_bytes(archive.read(member))
    return target


def add_volume(array: np.ndarray, ijk_to_ras: np.ndarray, name: str = "volume"):
    import slicer

    return slicer.util.addVolumeFromArray(array, ijk_to_ras, name)


def oblique_ijk_to_ras() -> np.ndarray:
    """30 degrees about S then 20 degrees about R, anisotropic spacing, LPS-like axis signs."""
    a, b = np.radians(30), np.radians(20)
    about_s = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    about_r = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    matrix = np.eye(4)
    matrix[:3, :3] = about_r @ about_s @ np.diag([-0.8, -1.1, 2.5])
    matrix[:3, 3] = [40.0, -12.0, 7.5]
    return matrix


def lps_ijk_to_ras() -> np.ndarray:
    """An LPS-stored image (as from DICOM): i runs to the left, j to posterior."""
    return np.array([[-0.7, 0, 0, 90.0], [0, -0.9, 0, 110.0], [0, 0, 3.0, -50.0], [0, 0, 0, 1]])


def phantom(shape=(14, 18, 22), seed: int = 0) -> np.ndarray:
    """A small CT-like image: a bright ellipsoid and a darker blob on noise, KJI order."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    image = rng.normal(0.0, 20.0, shape)
    image += 300.0 * ((k / 0.8) ** 2 + (j / 0.6) ** 2 + (i / 0.5) ** 2 < 1)
    image += 120.0 * (((k - 0.3) / 0.3) ** 2 + ((j + 0.4) / 0.3) ** 2 + ((i - 0.5) / 0.3) ** 2 < 1)
    return image.astype(np.float32)


# Every prompt the tests use is in the bank, so the text encoder is never needed.
BANK_PROMPTS = ["liver", "hepatic organ", "left kidney", "spleen", "xyzzy structure", "lesion"]


def run_probe(script: str, *args: str) -> dict:
    """Runs ``script`` in a fresh interpreter (argv: tests/slicer, VoxTellSlicer, ``args``) and returns
    the JSON it prints after ``REPORT `` on its last such line (a fresh ``sys.modules`` each time)."""
    import json

    completed = subprocess.run([sys.executable, "-c", script, str(ROOT / "tests" / "slicer"), str(SLICER_MODULE_DIR),
                                *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    reports = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    assert reports, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(reports[-1][len("REPORT "):])
