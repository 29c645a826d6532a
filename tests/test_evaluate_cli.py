"""`voxtell-core evaluate` on small NIfTI folders with hand-computed scores."""

import argparse
import csv

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
