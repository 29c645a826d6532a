"""The DICOM SEG we write passes the reference IOD validator (dciodvfy: zero errors) and reads
back voxel for voxel with dcmqi (Slicer's DICOM SEG reader), on a synthetic oblique series
and on a real CT (TotalSegmentator's test series, JPEG 2000, UIDs filled in)."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_checks import dcmqi_masks, dciodvfy_errors, totalsegmentator_ct
from test_dicom_seg import MODEL, PROMPTS, oblique_series, threshold_masks

from VoxTellCore.io import read_volume, segment_infos, writer_for


@pytest.fixture(scope="module")
def real_ct(tmp_path_factory) -> Path:
    return totalsegmentator_ct(tmp_path_factory.mktemp("real") / "ct")


def body_masks(volume) -> np.ndarray:
    """Masks of a real CT by thresholds: body, bone, air inside, one empty."""
    data = volume.array
    return np.stack([data > -300, data > 300, (data < -900) & (data > -2000), np.zeros_like(data, bool)]).astype(np.uint8)


def organ_like_masks(volume) -> np.ndarray:
    """Masks shaped as a model's are (solid, smooth, some with holes): the body with its lungs
    left as holes, the bones, a ball; and an empty one."""
    from scipy import ndimage

    data = volume.array
    body = ndimage.binary_opening(data > -300, iterations=3)
    bone = ndimage.binary_opening(data > 250, iterations=1)
    k, j, i = np.indices(data.shape)
    ball = (k - 10) ** 2 * 25 + (j - 300) ** 2 + (i - 200) ** 2 < 60 ** 2
    return np.stack([body, bone, ball, np.zeros_like(body)]).astype(np.uint8)


def test_dicom_seg_is_explicit_little_endian_valid_and_read_back_by_dcmqi(tmp_path):
    oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    masks = threshold_masks(volume)
    writer_for("dicom-seg").write(masks, segment_infos(PROMPTS), volume, tmp_path / "seg.dcm", MODEL)

    assert pydicom.dcmread(tmp_path / "seg.dcm").file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []
    assert np.array_equal(dcmqi_masks(tmp_path / "seg.dcm", volume, tmp_path), masks)


def test_deflate_only_when_asked_and_dciodvfy_cannot_read_it(tmp_path):
    oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    masks = threshold_masks(volume)
    writer_for("dicom-seg-deflated").write(masks, segment_infos(PROMPTS), volume, tmp_path / "seg.dcm", MODEL)
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    assert seg.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert dciodvfy_errors(tmp_path / "seg.dcm")  # why it is not the default
    assert np.array_equal(dcmqi_masks(tmp_path / "seg.dcm", volume, tmp_path), masks)


def test_dicom_seg_of_a_real_ct_is_valid_and_read_back_by_dcmqi(real_ct, tmp_path):
    volume = read_volume(real_ct)
    assert volume.array.shape == (20, 512, 512)
    masks = body_masks(volume)
    assert masks[0].mean() > 0.1 and masks[1].any() and masks[2].any()
    writer_for("dicom-seg").write(masks, segment_infos(PROMPTS), volume, tmp_path / "seg.dcm", MODEL)
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []
    assert np.array_equal(dcmqi_masks(tmp_path / "seg.dcm", volume, tmp_path), masks)


@pytest.mark.parametrize("series", ["oblique", "real CT"])
def test_rtstruct_is_valid_and_its_contours_fill_back_the_masks(series, tmp_path, request):
    from dicom_checks import rasterised_rtstruct

    from VoxTellCore.evaluation.metrics import dice

    if series == "oblique":
        oblique_series(tmp_path / "ct")
        volume = read_volume(tmp_path / "ct")
        masks = threshold_masks(volume)
    else:
        volume = read_volume(request.getfixturevalue("real_ct"))
        masks = organ_like_masks(volume)
    writer_for("rtstruct").write(masks, segment_infos(PROMPTS), volume, tmp_path / "rt.dcm", MODEL)
    rtstruct = pydicom.dcmread(tmp_path / "rt.dcm")
    assert rtstruct.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert [roi.ROIName for roi in rtstruct.StructureSetROISequence] == PROMPTS
    assert dciodvfy_errors(tmp_path / "rt.dcm") == []
    filled = rasterised_rtstruct(tmp_path / "rt.dcm", volume)
    for index in range(3):
        assert dice(filled[index], masks[index]) >= 0.95, (series, PROMPTS[index])
    assert not filled[3].any()
