"""Regenerate the pictures in docs/images with the built-in demo model.

    .venv/bin/python scripts/make_doc_figures.py
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import SimpleITK as sitk

from Training.demo_model import PHANTOM_SHAPE
from VoxTellCore.phantoms import generate_phantom
from VoxTellCore.phantoms.report import write_report
from VoxTellCore.cli import main
from VoxTellCore.io import volume_to_sitk

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


def main_figures() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        assert main(["demo", "-o", str(work / "demo"), "--seed", "2026"]) == 0
        shutil.copy(work / "demo" / "phantom_2026_overlay.png", IMAGES / "demo_overlay.png")

        phantom = generate_phantom(seed=31, shape=PHANTOM_SHAPE, n_nodules=2, effusions=("right",))
        sitk.WriteImage(volume_to_sitk(phantom.to_volume()), str(work / "chest.nii.gz"))
        report = write_report(phantom)
        (work / "report.txt").write_text(report)
        grounding = IMAGES / "grounding"
        shutil.rmtree(grounding, ignore_errors=True)
        assert main(["ground", "-i", str(work / "chest.nii.gz"), "-r", str(work / "report.txt"),
                     "-o", str(grounding), "-m", "demo"]) == 0
        (grounding / "report.txt").write_text(report)
        for mask in grounding.glob("*.nii.gz"):  # the pictures and reports are what the docs show
            mask.unlink()
        for written in grounding.glob("grounded_report.*"):  # no path of this machine in the docs
            written.write_text(written.read_text(encoding="utf-8").replace(str(ROOT), "<checkout>"), encoding="utf-8")


if __name__ == "__main__":
    main_figures()
