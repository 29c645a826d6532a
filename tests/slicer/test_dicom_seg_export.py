"""Saving the VoxTell segments as DICOM SEG from Slicer (VoxTellSlicerLib.dicomSeg), on Slicer's
real MRML (slicer-core): the SEG references the volume's DICOM files, holds only VoxTell's
segments, passes dciodvfy and reads back voxel for voxel with dcmqi."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import pydicom
from conftest_io_helpers import write_full_dicom_series
from dicom_checks import dcmqi_masks, dciodvfy_errors

from VoxTellCore.errors import InputError
from VoxTellCore.io import read_volume
from VoxTellCore.terminology import PROMPT_TAG


@pytest.fixture
def dicom_volume(slicer_scene, tmp_path):
    """A volume as Slicer's DICOM plugin loads an oblique series, and the database's lookup."""
    import slicer

    angle = np.radians(25)
    array = np.random.default_rng(5).integers(-200, 400, size=(6, 9, 11)).astype(np.int16)
    files = write_full_dicom_series(tmp_path / "ct", array, "1.2.826.0.1.3680043.2.1125.6601",
                                    row_direction=(np.cos(angle), np.sin(angle), 0.0), column_direction=(0, 0, -1))
    reference = read_volume(tmp_path / "ct")
    node = slicer.util.addVolumeFromArray(reference.array, reference.ijk_to_ras, "CT oblique")
    node.SetAttribute("DICOM.instanceUIDs", " ".join(reference.dicom.sop_instance_uids))
    lookup = {pydicom.dcmread(path).SOPInstanceUID: str(path) for path in files}
    return node, reference, lookup.get


def test_voxtell_segments_saved_as_a_valid_seg_equal_to_the_segments(dicom_volume, tmp_path):
    import slicer

    from VoxTellSlicerLib.dicomSeg import saveAsDicomSeg

    node, reference, lookup = dicom_volume
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
    masks = np.stack([reference.array > 100, reference.array > 250]).astype(np.uint8)
    for name, mask in zip(["liver", "left kidney"], masks):
        segmentId = segmentation.GetSegmentation().AddEmptySegment(name, name, [0.8, 0.3, 0.2])
        segmentation.GetSegmentation().GetSegment(segmentId).SetTag(PROMPT_TAG, name)
        slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation, segmentId, node)
    mine = segmentation.GetSegmentation().AddEmptySegment("my edit", "my edit", [0.1, 0.9, 0.1])
    slicer.util.updateSegmentBinaryLabelmapFromArray(np.ones_like(masks[0]), segmentation, mine, node)

    path = saveAsDicomSeg(segmentation, node, tmp_path / "out", fileForInstance=lookup, addToDatabase=False)

    seg = pydicom.dcmread(path)
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["liver", "left kidney"]  # not "my edit"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == reference.dicom.series_uid
    assert dciodvfy_errors(path) == []
    assert np.array_equal(dcmqi_masks(path, reference, tmp_path), masks)


def test_a_volume_not_loaded_from_dicom_is_refused(slicer_scene, tmp_path):
    import slicer

    from VoxTellSlicerLib.dicomSeg import saveAsDicomSeg

    node = slicer.util.addVolumeFromArray(np.zeros((3, 4, 5), np.int16), np.eye(4), "nifti volume")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentId = segmentation.GetSegmentation().AddEmptySegment("liver", "liver", [1, 0, 0])
    segmentation.GetSegmentation().GetSegment(segmentId).SetTag(PROMPT_TAG, "liver")
    with pytest.raises(InputError, match="was not loaded from DICOM"):
        saveAsDicomSeg(segmentation, node, tmp_path / "out", addToDatabase=False)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def module_widget(slicer_scene, tmp_path, monkeypatch):
    """The module's widget on a real scene, with a DICOM database that records what it is given."""
    import slicer
    from module_harness import load_module
    from PyQt5.QtCore import QSettings

    module = load_module(monkeypatch, QSettings(str(tmp_path / "user.ini"), QSettings.IniFormat))
    monkeypatch.setattr(slicer.app, "temporaryPath", str(tmp_path / "temporary"), raising=False)
    (tmp_path / "temporary").mkdir()
    widget = module.VoxTellSlicerWidget()
    widget.logic = module.VoxTellSlicerLogic()
    widget._parameterNode = widget.logic.getParameterNode()
    widget.ui = SimpleNamespace(statusLabel=SimpleNamespace(text=""))
    errors = []
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda text, **kwargs: errors.append(text))
    return widget, errors


def test_the_modules_save_button_puts_a_valid_seg_of_the_voxtell_segments_in_the_dicom_database(
        dicom_volume, module_widget, monkeypatch, tmp_path):
    import slicer

    widget, errors = module_widget
    node, reference, lookup = dicom_volume
    inserted = []
    monkeypatch.setattr(slicer, "dicomDatabase", SimpleNamespace(fileForInstance=lookup, insert=inserted.append),
                        raising=False)
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
    mask = (reference.array > 100).astype(np.uint8)
    segmentId = segmentation.GetSegmentation().AddEmptySegment("liver", "liver", [0.8, 0.3, 0.2])
    segmentation.GetSegmentation().GetSegment(segmentId).SetTag(PROMPT_TAG, "liver")
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation, segmentId, node)

    widget.onSaveDicomSeg()  # nothing chosen yet: a message, nothing stored
    assert errors and inserted == []
    widget._parameterNode.inputVolume = node
    widget._parameterNode.outputSegmentation = segmentation
    widget.onSaveDicomSeg()

    assert len(errors) == 1 and len(inserted) == 1
    stored = Path(inserted[0])
    assert stored.parent == tmp_path / "temporary" and dciodvfy_errors(stored) == []
    assert np.array_equal(dcmqi_masks(stored, reference, tmp_path), mask[None])
    assert "DICOM database" in widget.ui.statusLabel.text


def test_the_save_button_exists_beside_revert():
    from slicer_fixtures import SLICER_MODULE_DIR

    ui = (SLICER_MODULE_DIR / "Resources" / "UI" / "VoxTellSlicer.ui").read_text(encoding="utf-8")
    assert ui.index('name="revertButton"') < ui.index('name="saveDicomSegButton"')
