"""`voxtell-core ground` end to end on a phantom and the report the phantom generator writes."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

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
        assert "DEMO model, not for clinical use" in mask_image.header["descrip"].item().decode()
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


# ---------------------------------------------------------------------- what a reader sees
class TruthPredictor:
    """Masks from the phantom's labels, chosen per text, so each flag can be provoked on purpose."""

    description = "truth-lookup predictor for tests"
    model_dir = "/models/truth"
    is_demo = False

    def __init__(self, masks: dict[str, np.ndarray], bank: list[str]):
        self.masks = masks
        self.embedder = type("Embedder", (), {"bank": type("Bank", (), {"labels": bank})()})()
        self.segmented: list[str] = []

    def embed(self, texts):
        return list(texts)

    def predict_volume(self, volume, texts, progress=None, **kwargs):
        self.segmented += texts
        progress(1, 1)
        return np.stack([self.masks.get(t, np.zeros(volume.array.shape, np.uint8)) for t in texts]).astype(np.uint8)


HEDGED_REPORT = ("Possible 4 mm ground-glass nodule in the right upper lobe. Moderate right pleural effusion. "
                 "There is a 20 mm solid nodule in the left upper lobe. There is an 18 mm solid nodule in the right "
                 "upper lobe. No pneumothorax.")


def phantom_case(tmp_path):
    import SimpleITK as sitk

    phantom = generate_phantom(seed=31, shape=PHANTOM_SHAPE, n_nodules=2, effusions=("right",))
    image = tmp_path / "chest.nii.gz"
    sitk.WriteImage(volume_to_sitk(phantom.to_volume()), str(image))
    report = tmp_path / "report.txt"
    report.write_text(HEDGED_REPORT)
    return phantom, image, report


def test_grounded_report_keeps_hedges_and_flags_masks_that_contradict_their_finding(tmp_path, monkeypatch):
    from VoxTellCore import visualization
    from VoxTellCore.commands import predict

    phantom, image, report = phantom_case(tmp_path)
    labels = phantom.labels
    masks = {"4 mm ground-glass nodule in the right upper lobe": labels["right lung"],  # 1.3 L for 4 mm
             "Moderate right pleural effusion": labels["left lung"],  # the other side
             "18 mm solid nodule in the right upper lobe": labels["nodule in the right upper lobe"],  # right
             "right upper lobe": labels["right lung upper lobe"]}  # "20 mm ... left upper lobe": empty
    made = []
    monkeypatch.setattr(predict, "make_predictor",
                        lambda args: made.append(TruthPredictor(masks, ["right upper lobe", "liver"])) or made[-1])
    texts = []
    real_save = visualization._save
    monkeypatch.setattr(visualization, "_save", lambda figure, path, dpi=100: (
        texts.append(" | ".join(t.get_text() for t in figure.texts + figure.axes[0].texts)), real_save(figure, path)))
    out = tmp_path / "out"
    assert main(["ground", "-i", str(image), "-r", str(report), "-o", str(out)]) == 0

    assert "right upper lobe" in made[0].segmented, "the stated lobe is segmented for the location check"
    flags = {f["text"]: f["flags"] for f in json.loads((out / "grounded_report.json").read_text())["findings"]}
    assert flags["18 mm solid nodule in the right upper lobe"] == [], "a correct mask raises no flag"
    assert any(f.startswith("size: the report says 4 mm") for f in flags["4 mm ground-glass nodule in the right "
                                                                         "upper lobe"])
    assert [f[:39] for f in flags["Moderate right pleural effusion"]] == ["side: the report says right, the mask's"]
    assert "to the patient's left" in flags["Moderate right pleural effusion"][0]
    assert flags["20 mm solid nodule in the left upper lobe"][0].startswith("no voxels found")
    html = (out / "grounded_report.html").read_text(encoding="utf-8")
    markdown = (out / "grounded_report.md").read_text(encoding="utf-8")
    for text in (html, markdown):  # the hedge is kept word for word, and the flags are shown
        assert "Possible 4 mm ground-glass nodule in the right upper lobe." in text and "UNCERTAIN" in text
        assert "the mask&#x27;s centre lies" in text or "the mask's centre lies" in text
    # every picture names the model and the patient's sides; the empty one says so
    assert len(texts) == 4 and all("Model: truth-lookup predictor for tests" in t for t in texts)
    assert all(all(f"| {side}" in t or f"{side} |" in t for side in "RLAP") for t in texts)
    assert ["no voxels found" in t for t in texts] == [False, False, True, False]


@pytest.mark.parametrize("seed", range(5))
def test_true_masks_of_the_phantom_reports_raise_no_flag(tmp_path, monkeypatch, seed):
    """The tolerances (midline margin, size ratio, share inside the lobe) pass the ground truth of
    every nodule and effusion that the phantom's own report states: flags mark real contradictions."""
    import SimpleITK as sitk

    from VoxTellCore.commands import predict

    phantom = generate_phantom(seed=seed, shape=PHANTOM_SHAPE, n_nodules=3, effusions=("right", "left"))
    sitk.WriteImage(volume_to_sitk(phantom.to_volume()), str(tmp_path / "chest.nii.gz"))
    (tmp_path / "report.txt").write_text(write_report(phantom))
    findings = [f.text for f in extract_findings(write_report(phantom)) if not f.negated]
    truth = {text: phantom.labels[max((n for n in phantom.labels if n in text.lower()), key=len)] for text in findings}
    lobes = {f"{side} {lobe} lobe": phantom.labels[f"{side} lung {lobe} lobe"] for side in ("right", "left")
             for lobe in ("upper", "middle", "lower") if f"{side} lung {lobe} lobe" in phantom.labels}
    monkeypatch.setattr(predict, "make_predictor", lambda args: TruthPredictor({**truth, **lobes}, list(lobes)))
    assert main(["ground", "-i", str(tmp_path / "chest.nii.gz"), "-r", str(tmp_path / "report.txt"),
                 "-o", str(tmp_path / "out")]) == 0
    document = json.loads((tmp_path / "out" / "grounded_report.json").read_text())
    assert len(document["findings"]) == 5
    assert {f["text"]: f["flags"] for f in document["findings"]} == {text: [] for text in findings}


def test_ground_takes_predicts_checks_and_options_before_the_model_loads(tmp_path, monkeypatch, capsys):
    from conftest_io_helpers import write_dicom_series

    from VoxTellCore.commands import predict

    from VoxTellCore.errors import ModelError

    made = []

    def refused_model(args):
        made.append(args)
        raise ModelError("The model folder does not exist.")

    monkeypatch.setattr(predict, "make_predictor", refused_model)
    phantom, image, report = phantom_case(tmp_path)
    (tmp_path / "a file").write_text("x")
    (tmp_path / "latin1.txt").write_bytes("Épanchement pleural droit modéré.".encode("latin-1"))
    rng = np.random.default_rng(0)
    for uid in ("1.2.826.0.1.3680043.2.1125.501", "1.2.826.0.1.3680043.2.1125.502"):
        write_dicom_series(tmp_path / "study", rng.integers(0, 200, size=(4, 6, 5)).astype(np.int16), uid)
    (tmp_path / "flat.nii.gz").write_bytes(b"")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 1), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    cases = [
        (["-i", str(image), "-r", str(report), "-o", str(tmp_path / "a file")], "is a file"),
        (["-i", str(image), "-r", str(tmp_path / "latin1.txt"), "-o", str(tmp_path / "o")], "is not UTF-8"),
        (["-i", str(tmp_path / "study"), "-r", str(report), "-o", str(tmp_path / "o")], "--series"),
        (["-i", str(tmp_path / "flat.nii.gz"), "-r", str(report), "-o", str(tmp_path / "o")], "single slice"),
        (["-i", str(image), "-r", str(report), "-o", str(tmp_path)], "not from an earlier `voxtell-core ground`"),
    ]
    for argv, message in cases:
        assert main(["ground", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert made == [] and not (tmp_path / "o").exists()
    # --series picks one series as in predict; a model that is refused leaves no folder either
    assert main(["ground", "-i", str(tmp_path / "study"), "--series", "1.2.826.0.1.3680043.2.1125.502", "-r",
                 str(report), "-o", str(tmp_path / "o")]) == 2
    assert made[0].series == "1.2.826.0.1.3680043.2.1125.502"
    assert not (tmp_path / "o").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_new_ground_run_replaces_the_earlier_set_as_a_whole(tmp_path, monkeypatch):
    from VoxTellCore.commands import predict

    phantom, image, report = phantom_case(tmp_path)
    everything = {t: phantom.labels["right lung"] for t in ("4 mm ground-glass nodule in the right upper lobe",
                                                             "Moderate right pleural effusion",
                                                             "20 mm solid nodule in the left upper lobe",
                                                             "18 mm solid nodule in the right upper lobe")}
    monkeypatch.setattr(predict, "make_predictor", lambda args: TruthPredictor(everything, []))
    out = tmp_path / "out"
    assert main(["ground", "-i", str(image), "-r", str(report), "-o", str(out)]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert len(first) == 3 + 2 * 4

    report.write_text("Moderate right pleural effusion.")
    assert main(["ground", "-i", str(image), "-r", str(report), "-o", str(out)]) == 0
    second = sorted(p.name for p in out.iterdir())
    assert second == sorted(["grounded_report.json", "grounded_report.md", "grounded_report.html",
                             "finding_01_Moderate_right_pleural_effusion.nii.gz",
                             "finding_01_Moderate_right_pleural_effusion.png"])

    def broken(args):
        raise OSError("disk full")

    monkeypatch.setattr("VoxTellCore.commands.ground.write_reports", lambda *a, **k: broken(None))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    report.write_text(HEDGED_REPORT)
    with pytest.raises(OSError):
        main(["ground", "-i", str(image), "-r", str(report), "-o", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before, "a failed run leaves the earlier set"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
