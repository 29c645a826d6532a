"""`voxtell-core evaluate` on small NIfTI folders with hand-computed scores."""

import argparse
import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from VoxTellCore.commands import evaluate
from VoxTellCore.errors import InputError
from VoxTellCore.evaluation.evaluate import case_and_prompt


def cube(start=2, size=4) -> np.ndarray:
    mask = np.zeros((8, 8, 8), dtype=np.uint8)
    mask[start:start + size, 2:6, 2:6] = 1
    return mask


def save(mask: np.ndarray, path, spacing=(1.0, 1.0, 1.0)) -> None:
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    evaluate.add_parser(parser.add_subparsers(dest="command"))
    return evaluate.run(parser.parse_args(["evaluate", *argv]))


@pytest.fixture
def folders(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    save(cube(), gt / "case1_liver.nii.gz")
    save(cube(), pred / "case1_liver.nii.gz")  # Dice 1, NSD 1
    save(cube(), gt / "case2_liver.nii.gz")
    save(cube(start=3), pred / "case2_liver.nii.gz")  # shifted 1 mm: Dice 48/64 = 0.75, NSD@2mm 1
    save(cube(size=2), gt / "case1_lung_nodule.nii.gz")
    save(np.zeros((8, 8, 8), np.uint8), pred / "case1_lung_nodule.nii.gz")  # empty: Dice 0, NSD 0
    save(cube(), gt / "case3_liver.nii.gz")  # no prediction
    return pred, gt


def test_prints_per_prompt_table_and_mean_last(folders, capsys):
    pred, gt = folders
    assert run_cli("--pred", str(pred), "--gt", str(gt)) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split() == ["prompt", "cases", "Dice", "NSD@2mm"]
    assert lines[1].split() == ["liver", "2", "0.8750", "1.0000"]
    assert lines[2].split() == ["lung_nodule", "1", "0.0000", "0.0000"]
    assert lines[-1].split() == ["mean", "3", "0.5833", "0.6667"]
    assert "no prediction for ground truth case3_liver.nii.gz" in err


def test_writes_one_csv_row_per_pair(folders, tmp_path):
    pred, gt = folders
    out_csv = tmp_path / "scores" / "per_case.csv"
    assert run_cli("--pred", str(pred), "--gt", str(gt), "--csv", str(out_csv)) == 0
    with open(out_csv) as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"case1_liver.nii.gz", "case2_liver.nii.gz", "case1_lung_nodule.nii.gz"}
    row = rows["case2_liver.nii.gz"]
    assert (row["case"], row["prompt"]) == ("case2", "liver")
    assert float(row["dice"]) == pytest.approx(0.75)
    assert float(row["nsd"]) == pytest.approx(1.0)
    assert float(rows["case1_lung_nodule.nii.gz"]["nsd"]) == 0.0


def test_tolerance_changes_surface_dice(folders, capsys):
    pred, gt = folders
    run_cli("--pred", str(pred), "--gt", str(gt), "--tolerance-mm", "0")
    liver = capsys.readouterr().out.splitlines()[1].split()
    assert liver[0] == "liver" and float(liver[3]) < 1.0


def test_findings_prints_rexgroundingct_metrics(folders, capsys):
    pred, gt = folders
    assert run_cli("--pred", str(pred), "--gt", str(gt), "--findings") == 0
    out = capsys.readouterr().out
    # case1: findings Dice 1 and 0 -> 0.5; case2: 0.75 -> global Dice 0.625; 2 of 3 findings hit;
    # instances: 2 true positives, 0 false positives, 1 missed
    values = {line.rsplit(None, 1)[0].strip(): float(line.split()[-1])
              for line in out.splitlines() if line.startswith("  ")}
    assert values["global Dice"] == pytest.approx(0.625)
    assert values["hit rate (Dice >= 0.1)"] == pytest.approx(0.6667, abs=1e-4)
    assert values["instance precision"] == 1.0
    assert values["instance recall"] == pytest.approx(0.6667, abs=1e-4)
    assert values["instance F1"] == pytest.approx(0.8)
    assert "3 findings in 2 cases" in out
    assert out.strip().splitlines()[-1].split()[0] == "mean"


def test_geometry_mismatch_is_reported_for_that_pair_only(tmp_path, capsys):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    save(cube(), gt / "a_liver.nii.gz")
    save(cube(), pred / "a_liver.nii.gz")
    save(cube(), gt / "b_liver.nii.gz")
    save(cube(), pred / "b_liver.nii.gz", spacing=(1.0, 1.0, 2.5))
    assert run_cli("--pred", str(pred), "--gt", str(gt)) == 1
    out, err = capsys.readouterr()
    assert "b_liver.nii.gz" in err and "spacing" in err and "resample" in err
    assert out.strip().splitlines()[-1].split() == ["mean", "1", "1.0000", "1.0000"]


def test_case_folders_and_case_parts(tmp_path, capsys):
    assert case_and_prompt("valid_1016_c_1_bilateral_nodules.nii.gz", case_parts=4) == \
        ("valid_1016_c_1", "bilateral_nodules")
    assert case_and_prompt("case7/left kidney.nii.gz") == ("case7", "left kidney")
    assert case_and_prompt("case7.nii") == ("case7", "")
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    save(cube(), gt / "case7" / "left kidney.nii.gz")
    save(cube(start=3), pred / "case7" / "left kidney.nii.gz")
    assert run_cli("--pred", str(pred), "--gt", str(gt)) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-3:] == ["1", "0.7500", "1.0000"]


def test_no_pairs_or_missing_folder_is_an_input_error(tmp_path):
    (tmp_path / "pred").mkdir()
    save(cube(), tmp_path / "gt" / "x_liver.nii.gz")
    with pytest.raises(InputError, match="same file names"):
        run_cli("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"))
    with pytest.raises(InputError, match="not a folder"):
        run_cli("--pred", str(tmp_path / "nowhere"), "--gt", str(tmp_path / "gt"))


def test_demo_names_with_underscores_in_the_case_are_read(tmp_path, capsys):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    for folder, start in ((gt, 2), (pred, 3)):
        save(cube(start=start), folder / "phantom_2026_liver.nii.gz")
        save(cube(start=start), folder / "phantom_2026_left_kidney.nii.gz")
    save(cube(), pred / "phantom_2026.nii.gz")  # the phantom image the demo writes beside its masks
    assert run_cli("--pred", str(pred), "--gt", str(gt), "--findings") == 0
    out = capsys.readouterr().out
    assert "2 findings in 1 cases" in out
    assert [line.split()[0] for line in out.splitlines()[-3:]] == ["left_kidney", "liver", "mean"]


# ---------------------------------------------------------------- ReXGroundingCT's own layout
def scan_masks(seed: int) -> np.ndarray:
    """(3 findings, 12, 12, 12) masks: a nodule, two entities labelled 1 and 2, and a speckled finding."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 12, 12, 12), dtype=np.uint8)
    masks[0, 2:6, 2:6, 2:6] = 1
    masks[1, 1:4, 7:10, 7:10] = 1
    masks[1, 7:11, 1:5, 6:9] = 2
    masks[2] = rng.random((12, 12, 12)) > 0.93
    return masks


def prediction_masks(seed: int) -> np.ndarray:
    masks = scan_masks(seed)
    masks[0] = np.roll(masks[0], 1, axis=0)
    masks[1][masks[1] == 2] = 0  # one entity missed
    masks[1, 0, 0, 0] = 1  # a speck
    return (masks > 0).astype(np.uint8)


FINDINGS = {"0": "6 mm nodule in the right upper lobe", "1": "Consolidation in both lower lobes",
            "2": "Scattered micronodules"}


def save_4d(masks: np.ndarray, path, findings_last: bool = False) -> None:
    import nibabel

    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.moveaxis(masks, 0, 3) if findings_last else masks
    nibabel.save(nibabel.Nifti1Image(data, np.diag([0.8, 0.8, 1.5, 1.0])), str(path))


def save_3d(mask: np.ndarray, path) -> None:
    import nibabel

    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(mask, np.diag([0.8, 0.8, 1.5, 1.0])), str(path))


@pytest.fixture
def dataset(tmp_path):
    """The same masks in both layouts: 4-D per scan (findings first for the truth, last for the
    predictions) with dataset.json, and one 3-D file per finding in case folders."""
    entries = [{"name": f"valid_{i}_a_1.nii.gz", "findings": FINDINGS, "shape": [12, 12, 12]} for i in (1, 2)]
    (tmp_path / "dataset.json").write_text(json.dumps({"val": entries, "test": []}))
    for i in (1, 2):
        save_4d(scan_masks(i), tmp_path / "gt4d" / "val" / f"valid_{i}_a_1.nii.gz")
        save_4d(prediction_masks(i), tmp_path / "pred4d" / f"valid_{i}_a_1.nii.gz", findings_last=True)
        for channel in range(3):
            save_3d(scan_masks(i)[channel], tmp_path / "gt3d" / f"valid_{i}_a_1" / f"finding_{channel}.nii.gz")
            save_3d(prediction_masks(i)[channel], tmp_path / "pred3d" / f"valid_{i}_a_1" / f"finding_{channel}.nii.gz")
    return tmp_path


def finding_values(out: str) -> dict[str, float]:
    return {line.rsplit(None, 1)[0].strip(): float(line.split()[-1]) for line in out.splitlines() if line.startswith("  ")}


def test_dataset_layout_gives_the_numbers_of_per_finding_files(dataset, capsys):
    assert run_cli("--pred", str(dataset / "pred4d"), "--gt", str(dataset / "gt4d"),
                   "--dataset-json", str(dataset / "dataset.json"), "--split", "val",
                   "--csv", str(dataset / "rows.csv")) == 0
    four_d = capsys.readouterr().out
    assert run_cli("--pred", str(dataset / "pred3d"), "--gt", str(dataset / "gt3d"), "--findings") == 0
    per_file = capsys.readouterr().out
    assert "6 findings in 2 cases" in four_d
    assert finding_values(four_d) == finding_values(per_file)
    values = finding_values(four_d)
    # finding 1 of each scan: entity 2 missed, the speck (1 voxel < 10) is not an instance; the micronodule
    # specks of finding 2 are below 10 voxels too, so no predicted instance is a false positive
    assert values["instance recall"] < 1.0 and values["instance precision"] == 1.0
    with open(dataset / "rows.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["file"] == "valid_1_a_1.nii.gz#0" and rows[0]["prompt"] == FINDINGS["0"]
    assert rows[1]["false_positives"] == "0" and rows[1]["false_negatives"] == "1"


def test_minimum_instance_size_and_connectivity_are_options(dataset, capsys):
    common = ["--pred", str(dataset / "pred4d"), "--gt", str(dataset / "gt4d"),
              "--dataset-json", str(dataset / "dataset.json")]
    run_cli(*common)
    default = finding_values(capsys.readouterr().out)["instance precision"]
    run_cli(*common, "--min-instance-voxels", "0")
    every_speck = finding_values(capsys.readouterr().out)["instance precision"]
    run_cli(*common, "--min-instance-voxels", "0", "--connectivity", "6")
    six = finding_values(capsys.readouterr().out)["instance precision"]
    assert every_speck < default == 1.0 and six != every_speck


def test_dataset_layout_bad_inputs_are_clear_errors(dataset, capsys):
    common = ["--gt", str(dataset / "gt4d"), "--dataset-json", str(dataset / "dataset.json")]
    save_4d(prediction_masks(1)[:2], dataset / "wrong_count" / "valid_1_a_1.nii.gz")
    save_4d(prediction_masks(2), dataset / "wrong_count" / "valid_2_a_1.nii.gz")
    assert run_cli("--pred", str(dataset / "wrong_count"), *common) == 1
    assert "lists 3 finding(s) for valid_1_a_1.nii.gz" in capsys.readouterr().err

    save_4d(np.zeros((3, 12, 12, 10), np.uint8), dataset / "wrong_grid" / "valid_1_a_1.nii.gz")
    save_4d(prediction_masks(2), dataset / "wrong_grid" / "valid_2_a_1.nii.gz")
    save_4d(prediction_masks(2), dataset / "wrong_grid" / "valid_9_a_1.nii.gz")
    assert run_cli("--pred", str(dataset / "wrong_grid"), *common) == 1
    err = capsys.readouterr().err
    assert "differs from the scan shape" in err and "lists no scan named valid_9_a_1.nii.gz" in err

    with pytest.raises(InputError, match="has no 'train' list"):
        run_cli("--pred", str(dataset / "pred4d"), *common, "--split", "train")
    (dataset / "broken.json").write_text(json.dumps({"val": [{"name": "valid_1_a_1.nii.gz"}]}))
    with pytest.raises(InputError, match="has no 'name' and 'findings'"):
        run_cli("--pred", str(dataset / "pred4d"), "--gt", str(dataset / "gt4d"),
                "--dataset-json", str(dataset / "broken.json"))


def test_a_4d_file_without_the_dataset_json_is_an_input_error_not_a_crash(dataset, capsys):
    assert run_cli("--pred", str(dataset / "pred4d"), "--gt", str(dataset / "gt4d" / "val"), "--findings") == 1
    assert "--dataset-json" in capsys.readouterr().err
