"""`voxtell-core ground` end to end on a phantom and the report the phantom generator writes."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from Training.demo_model import PHANTOM_SHAPE
from VoxTellCore.phantoms import generate_phantom
from VoxTellCore.phantoms.report import write_report
from VoxTellCore.cli import main
from VoxTellCore.findings import extract_findings
from VoxTellCore.io import Volume, volume_to_sitk
from VoxTellCore.models import DEMO_DESCRIPTION


def test_ground_writes_one_mask_per_positive_finding_with_matching_statistics(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("VOXTELL_CACHE_DIR", str(tmp_path / "cache"))
    phantom = generate_phantom(seed=31, shape=PHANTOM_SHAPE, n_nodules=2, effusions=("right",))
    import SimpleITK as sitk

    image = tmp_path / "chest.nii.gz"
    sitk.WriteImage(volume_to_sitk(Volume(phantom.image, phantom.ijk_to_ras)), str(image))
    report = tmp_path / "report.txt"
    report.write_text(write_report(phantom))
    out = tmp_path / "out"
    # The built-in demo model, with its own small text encoder for finding texts outside its bank.
    code = main(["ground", "-i", str(image), "-r", str(report), "-o", str(out), "-m", "demo", "--device", "cpu"])
    assert code == 0

    expected = [f for f in extract_findings(report.read_text()) if not f.negated]
    assert len(expected) >= 3  # two nodules and an effusion, each named in the report
    assert any(f.negated for f in extract_findings(report.read_text()))  # negatives exist and are skipped
    document = json.loads((out / "grounded_report.json").read_text())
    assert [f["text"] for f in document["findings"]] == [f.text for f in expected]
    for entry in document["findings"]:
        mask_image = nib.load(out / entry["mask_file"])
        mask = np.asarray(mask_image.dataobj) > 0
        assert mask.shape == phantom.image.shape[::-1]
        voxel_ml = abs(np.linalg.det(mask_image.affine[:3, :3])) / 1000
        assert entry["voxels"] == int(mask.sum())
        assert np.isclose(entry["volume_ml"], mask.sum() * voxel_ml, atol=1e-3)
        if entry["voxels"]:
            i, j, k = np.nonzero(mask)
            centre = mask_image.affine @ np.array([i.mean(), j.mean(), k.mean(), 1])
            np.testing.assert_allclose(entry["centroid_ras"], centre[:3], atol=0.02)
            assert entry["slice_range"] == [int(k.min()), int(k.max())]
        assert (out / entry["picture"]).stat().st_size > 1000
    markdown = (out / "grounded_report.md").read_text(encoding="utf-8")
    html = (out / "grounded_report.html").read_text(encoding="utf-8")
    for entry in document["findings"]:
        assert entry["text"] in markdown and entry["picture"] in html
    # The files say which model made the masks and carry the demo model's warning.
    assert document["model"]["demo"] is True and document["model"]["folder"].endswith("DemoModel")
    assert DEMO_DESCRIPTION in document["model"]["warning"]
    assert DEMO_DESCRIPTION in markdown and DEMO_DESCRIPTION in html and "WARNING" in markdown
    assert all("uncertain" in entry for entry in document["findings"])
    # One progress bar: the windows; the text encoder's "Loading weights" bar is not shown.
    err = capfd.readouterr().err
    # A bar without a total ("windows: 0window [00:00, ?window/s]") is the one to avoid; a rate
    # such as "339.40window/s" is fine.
    assert "windows" in err and "Loading weights" not in err and "0window [" not in err


def test_report_files_without_findings_say_no_model_ran(tmp_path):
    from VoxTellCore.commands.ground import ModelInfo, write_reports

    write_reports(tmp_path, "ct.nii.gz", [])
    assert json.loads((tmp_path / "grounded_report.json").read_text())["model"] is None
    assert "no model was run" in (tmp_path / "grounded_report.md").read_text()
    write_reports(tmp_path, "ct.nii.gz", [], ModelInfo("VoxTell v1.1", "/models/voxtell_v1.1", False))
    document = json.loads((tmp_path / "grounded_report.json").read_text())
    assert document["model"] == {"description": "VoxTell v1.1", "folder": "/models/voxtell_v1.1", "demo": False,
                                 "warning": None}
    assert "WARNING" not in (tmp_path / "grounded_report.html").read_text()


def test_ground_reports_a_missing_report_file(tmp_path, capsys):
    code = main(["ground", "-i", str(tmp_path / "ct.nii.gz"), "-r", str(tmp_path / "missing.txt"),
                 "-o", str(tmp_path / "out"), "-m", "demo"])
    assert code == 2
    assert "missing.txt does not exist" in capsys.readouterr().err
