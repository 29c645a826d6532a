"""Slicer's batch script (VoxTellSlicerLib/batch.py): voxtell-core predict's engine, .seg.nrrd out.

Its segments are compared with the module's own (real MRML, Slicer's storage node), its files
with `voxtell-core predict`'s, and its model resolution, DICOM input and exit codes with the core's.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from conftest_io_helpers import write_dicom_series
from slicer_fixtures import SLICER_MODULE_DIR, phantom

from VoxTellCore.io import read_volume

PROMPTS = ["liver", "left kidney", "xyzzy structure"]
# What Slicer's storage node writes for a segment that has no terminology (the module sets none
# for prompts outside the list): the same as no entry at all.
SLICER_DEFAULT_TERMINOLOGY = {"contextName": "Segmentation category and type - 3D Slicer General Anatomy list",
                              "category": ["SCT", "85756007", "Tissue"], "type": ["SCT", "85756007", "Tissue"],
                              "anatomicContextName": "Anatomic codes - DICOM master list"}
BATCH_SCRIPT = SLICER_MODULE_DIR / "VoxTellSlicerLib" / "batch.py"


def load_batch_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("voxtell_batch", BATCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_image(path, array, spacing=(0.8, 1.1, 2.5), direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    image.SetOrigin((12.0, -7.0, 3.0))
    sitk.WriteImage(image, str(path))
    return path


def model_args(run_options) -> list:
    return ["-m", run_options["modelPath"], "--embeddings", run_options["embeddingBank"], "--device", "cpu"]


def mask_kji(segmentation, name, shape_kji) -> np.ndarray:
    """A segment's voxels on the full reference grid, KJI (slicerio gives IJK, maybe cropped)."""
    import slicerio

    extracted = slicerio.extract_segments(segmentation, [(name, 1)])
    full = np.zeros(shape_kji[::-1], np.uint8)
    offset = extracted.get("referenceImageExtentOffset", [0, 0, 0])
    voxels = extracted["voxels"]
    full[tuple(slice(o, o + n) for o, n in zip(offset, voxels.shape))] = voxels
    return full.transpose(2, 1, 0)


def save_module_segmentation(logic, options, image, path):
    """What the module makes of ``image``: Slicer's reader, the module's logic, Slicer's writer."""
    import slicer

    scene = slicer.mrmlScene
    volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "case")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(image))
    volume.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.ReadData(volume)
    segmentation = logic.segment(volume, PROMPTS, options=options)
    writer = slicer.vtkMRMLSegmentationStorageNode()
    writer.SetFileName(str(path))
    assert writer.WriteData(segmentation)


def test_the_script_is_outside_the_scripted_module_folder():
    """Slicer loads every top-level .py of the module folder as a module."""
    assert sorted(p.name for p in SLICER_MODULE_DIR.glob("*.py")) == ["VoxTellSlicer.py"]
    cmake = (SLICER_MODULE_DIR / "CMakeLists.txt").read_text()
    assert "VoxTellSlicerLib/batch.py" in cmake and not re.search(r"^\s*batch\.py\s*$", cmake, re.MULTILINE)


def test_segments_equal_the_modules_names_colours_terminology_and_voxels(tmp_path, logic, options, run_options):
    import slicerio

    image = write_image(tmp_path / "case.nii.gz", phantom(seed=1))
    save_module_segmentation(logic, options, image, tmp_path / "module.seg.nrrd")
    status = load_batch_module().main(["--", "-i", str(image), "-o", str(tmp_path / "out"), "-p", *PROMPTS,
                                       *model_args(run_options)])
    assert status == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["case.seg.nrrd"]

    module = slicerio.read_segmentation(str(tmp_path / "module.seg.nrrd"))
    batch = slicerio.read_segmentation(str(tmp_path / "out" / "case.seg.nrrd"))
    assert slicerio.segment_names(batch) == slicerio.segment_names(module) == PROMPTS
    shape = read_volume(image).array.shape
    for name in PROMPTS:
        ours, theirs = slicerio.segment_from_name(batch, name), slicerio.segment_from_name(module, name)
        assert np.allclose(ours["color"], theirs["color"], atol=1 / 255), name
        default = SLICER_DEFAULT_TERMINOLOGY
        assert ours.get("terminology", default) == theirs.get("terminology", default), name
        assert ours["tags"]["VoxTell.Prompt"] == theirs["tags"]["VoxTell.Prompt"]
        np.testing.assert_array_equal(mask_kji(batch, name, shape), mask_kji(module, name, shape))
    assert slicerio.segment_from_name(batch, "liver")["terminology"]["type"] == ["SCT", "10200004", "Liver"]
    assert any(mask_kji(batch, name, shape).any() for name in PROMPTS)


@pytest.mark.parametrize("format", ["seg-nrrd", "nifti"])
def test_both_entry_points_write_identical_files(tmp_path, run_options, format):
    from VoxTellCore.cli import main as voxtell_core

    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "a.nii.gz", phantom(seed=2))
    write_image(images / "b.nrrd", phantom(seed=3))
    common = ["-i", str(images), "-p", *PROMPTS[:2], *model_args(run_options), "--format", format]
    assert voxtell_core(["predict", *common, "-o", str(tmp_path / "core")]) == 0
    assert load_batch_module().main(["--", *common, "-o", str(tmp_path / "slicer")]) == 0
    core, slicer_batch = sorted((tmp_path / "core").iterdir()), sorted((tmp_path / "slicer").iterdir())
    assert [p.name for p in core] == [p.name for p in slicer_batch] and len(core) == (2 if format == "seg-nrrd" else 4)
    for ours, theirs in zip(core, slicer_batch):
        if format == "seg-nrrd":
            assert without_date(ours.read_bytes()) == without_date(theirs.read_bytes()), ours.name
        else:
            np.testing.assert_array_equal(read_volume(ours).array, read_volume(theirs).array)


def without_date(nrrd: bytes) -> bytes:
    """The file without pynrrd's "# on <date and time>" header comment."""
    return re.sub(rb"\n# on [^\n]*\n", b"\n", nrrd, count=1)


def test_missing_model_is_exit_2_naming_it_and_nothing_is_written(tmp_path, capsys):
    image = write_image(tmp_path / "case.nii.gz", phantom(seed=4))
    missing = tmp_path / "no-such-model"
    status = load_batch_module().main(["--", "-i", str(image), "-o", str(tmp_path / "out"), "-p", "liver",
                                       "-m", str(missing), "--device", "cpu"])
    assert status == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_in_slicer_missing_packages_are_listed_not_installed(tmp_path, monkeypatch, capsys):
    from VoxTellSlicerLib import dependencies

    batch = load_batch_module()
    monkeypatch.setattr(batch, "inSlicerApplication", lambda: True)
    monkeypatch.setattr(dependencies, "installPlan", lambda installTorch: [
        dependencies.PlannedInstall("nibabel", "nibabel is not installed", "about 3 MB")])
    monkeypatch.setattr(dependencies, "setupDependencies", lambda **kwargs: pytest.fail("batch mode installed"))
    image = write_image(tmp_path / "case.nii.gz", phantom(seed=4))
    status = batch.main(["--", "-i", str(image), "-o", str(tmp_path / "out"), "-p", "liver", "-m", "demo"])
    assert status == 2
    assert "missing Python packages: nibabel (nibabel is not installed)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_model_is_resolved_as_voxtell_core_does(tmp_path, monkeypatch, capsys, run_options):
    """No -m: $VOXTELL_MODEL, else the official model; never the demo model unasked."""
    from VoxTellCore import models
    from VoxTellCore.errors import ModelError
    from VoxTellCore.inference.predictor import VoxTellPredictor

    image = write_image(tmp_path / "case.nii.gz", phantom(seed=5))
    argv = ["--", "-i", str(image), "-p", "liver", "--embeddings", run_options["embeddingBank"], "--device", "cpu",
            "--format", "nifti"]
    monkeypatch.setenv("VOXTELL_MODEL", run_options["modelPath"])
    assert load_batch_module().main([*argv, "-o", str(tmp_path / "env")]) == 0
    assert f"VoxTell model {run_options['modelPath']}" in capsys.readouterr().err
    expected = VoxTellPredictor(model=run_options["modelPath"], device="cpu",
                                embedding_bank=run_options["embeddingBank"]).predict_volume(read_volume(image), ["liver"])
    np.testing.assert_array_equal(read_volume(tmp_path / "env" / "case_liver.nii.gz").array, expected[0])

    def offline():
        raise ModelError("the official voxtell_v1.1 could not be downloaded (test)")

    monkeypatch.delenv("VOXTELL_MODEL")
    monkeypatch.setattr(models, "download_official_model", offline)
    assert load_batch_module().main([*argv, "-o", str(tmp_path / "official")]) == 2
    assert "official voxtell_v1.1 could not be downloaded" in capsys.readouterr().err
    assert not (tmp_path / "official").exists()


def test_dicom_series_folder_gives_a_seg_nrrd(tmp_path, run_options):
    import slicerio

    array = (phantom(seed=6) * 1.0).astype(np.int16)
    write_dicom_series(tmp_path / "ct_series", array, "1.2.826.0.1.3680043.2.1125.601")
    status = load_batch_module().main(["--", "-i", str(tmp_path / "ct_series"), "-o", str(tmp_path / "out"),
                                       "-p", *PROMPTS[:2], *model_args(run_options)])
    assert status == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ct_series.seg.nrrd"]
    segmentation = slicerio.read_segmentation(str(tmp_path / "out" / "ct_series.seg.nrrd"))
    assert slicerio.segment_names(segmentation) == PROMPTS[:2]
    assert mask_kji(segmentation, "liver", array.shape).shape == read_volume(tmp_path / "ct_series").array.shape


def run_script(command: list) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", timeout=300)


def test_as_a_script_a_bad_case_fails_alone_and_a_rerun_resumes(tmp_path, run_options):
    good = write_image(tmp_path / "good.nii.gz", phantom(seed=7))
    bad = tmp_path / "bad.nii.gz"
    bad.write_text("not an image")
    out = tmp_path / "out"
    command = [sys.executable, str(BATCH_SCRIPT), "-i", str(bad), str(good), "-o", str(out), "-p", "liver",
               *model_args(run_options)]
    result = run_script(command)
    assert result.returncode == 1, result.stderr
    assert [p.name for p in out.iterdir()] == ["good.seg.nrrd"], "no partial files, the good case is done"
    assert "bad.nii.gz" in result.stderr and "1 of 2 image(s) failed" in result.stderr

    written = (out / "good.seg.nrrd").stat().st_mtime_ns
    result = run_script([*command[:3], str(good), *command[5:], "--no-overwrite"])
    assert result.returncode == 0, result.stderr
    assert (out / "good.seg.nrrd").stat().st_mtime_ns == written
    assert "every output exists" in result.stdout
