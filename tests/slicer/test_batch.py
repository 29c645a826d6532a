"""VoxTellSlicer/batch.py under plain Python with slicer-core: .seg.nrrd outputs read back by slicerio."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from slicer_fixtures import SLICER_MODULE_DIR, phantom

from VoxTellCore.io import read_volume

PROMPTS = ["liver", "xyzzy structure"]


def load_batch_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("voxtell_batch", SLICER_MODULE_DIR / "batch.py")
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


@pytest.fixture
def batch_logic(slicer_scene, predictor_factory):
    from VoxTellSlicerLib import VoxTellLogic

    return VoxTellLogic(predictor_factory=predictor_factory)


def batch_args(inputs, output, run_options, terminologies_dir, *extra):
    return ["--", "-i", *map(str, inputs), "-o", str(output), "-p", *PROMPTS, "-m", run_options["modelPath"],
            "--embeddings", run_options["embeddingBank"], "--device", "cpu",
            "--terminologies", str(terminologies_dir), *extra]


def mask_kji(segmentation, name, shape_kji) -> np.ndarray:
    """A segment's voxels on the full reference grid, KJI (slicerio gives IJK, maybe cropped)."""
    import slicerio

    extracted = slicerio.extract_segments(segmentation, [(name, 1)])
    full = np.zeros(shape_kji[::-1], np.uint8)
    offset = extracted.get("referenceImageExtentOffset", [0, 0, 0])
    voxels = extracted["voxels"]
    full[tuple(slice(o, o + n) for o, n in zip(offset, voxels.shape))] = voxels
    return full.transpose(2, 1, 0)


def test_batch_writes_seg_nrrd_with_names_colours_terminology_and_voxels(
    tmp_path, batch_logic, run_options, terminologies_dir
):
    import slicerio

    batch = load_batch_module()
    images = [write_image(tmp_path / "case_a.nii.gz", phantom(seed=1)), write_image(tmp_path / "case_b.nrrd", phantom(seed=2))]
    status = batch.main(batch_args(images, tmp_path / "out", run_options, terminologies_dir), logic=batch_logic)

    assert status == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case_a.seg.nrrd", "case_b.seg.nrrd"]
    segmentation = slicerio.read_segmentation(str(tmp_path / "out" / "case_a.seg.nrrd"))
    assert slicerio.segment_names(segmentation) == PROMPTS
    liver = slicerio.segment_from_name(segmentation, "liver")
    assert tuple(round(c * 255) for c in liver["color"]) == (221, 130, 101)
    assert liver["terminology"]["type"] == ["SCT", "10200004", "Liver"]
    assert liver["terminology"]["contextName"].endswith("3D Slicer General Anatomy list")

    # The voxels are the predictor's masks for the image as VoxTellCore reads it.
    volume = read_volume(tmp_path / "case_a.nii.gz")
    predictor = batch_logic.predictor(run_options["modelPath"], "cpu", run_options["embeddingBank"])
    expected = predictor.predict_volume(volume, PROMPTS)
    for name, mask in zip(PROMPTS, expected):
        np.testing.assert_array_equal(mask_kji(segmentation, name, volume.array.shape), mask)


def test_batch_isolates_failures_and_resumes(tmp_path, batch_logic, run_options, terminologies_dir, capsys):
    batch = load_batch_module()
    good = write_image(tmp_path / "good.nii.gz", phantom(seed=3))
    bad = tmp_path / "bad.nii.gz"
    bad.write_text("not an image")
    missing = tmp_path / "missing.nrrd"
    out = tmp_path / "out"

    # As a script (plain Python + slicer-core), the way a user runs it outside Slicer.
    result = subprocess.run(
        [sys.executable, str(SLICER_MODULE_DIR / "batch.py"), *batch_args([bad, good, missing], out, run_options,
                                                                          terminologies_dir)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert [p.name for p in out.iterdir()] == ["good.seg.nrrd"], "no partial files, the good case is done"
    assert "bad.nii.gz" in result.stderr and "missing.nrrd" in result.stderr
    assert "2 of 3 case(s) failed" in result.stderr

    written = (out / "good.seg.nrrd").stat().st_mtime_ns
    status = batch.main(batch_args([good], out, run_options, terminologies_dir, "--no-overwrite"), logic=batch_logic)
    assert status == 0
    assert (out / "good.seg.nrrd").stat().st_mtime_ns == written
    assert "exists, skipped" in capsys.readouterr().out
