"""The Segment Editor effect's core (VoxTellLogic.fillSegment) with Slicer's own editor logic:
editable area, intensity range and overwrite mode apply, and the change is one undo step."""

from __future__ import annotations

import numpy as np
import pytest
from slicer_fixtures import add_volume, oblique_ijk_to_ras, phantom

SHAPE = phantom().shape


@pytest.fixture
def editor(slicer_scene):
    """A volume, a segmentation with segments A (slab in k) and B (slab in j), an empty
    target segment, and a vtkSlicerSegmentEditorLogic with the target selected."""
    import slicer

    scene = slicer_scene.scene
    volume = add_volume(phantom(), oblique_ijk_to_ras())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "seg")
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    masks = {}
    for name, box in {"A": np.s_[0:7, :, :], "B": np.s_[:, 0:9, :], "target": None}.items():
        segmentation.GetSegmentation().AddEmptySegment(name, name)
        masks[name] = np.zeros(SHAPE, np.uint8)
        if box is not None:
            masks[name][box] = 1
            slicer.util.updateSegmentBinaryLabelmapFromArray(masks[name], segmentation, name, volume)

    editor_node = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    logic = slicer.vtkSlicerSegmentEditorLogic()
    logic.SetMRMLScene(scene)
    logic.SetMRMLApplicationLogic(slicer_scene.applicationLogic)
    logic.SetSegmentEditorNode(editor_node)
    logic.SetSegmentationNode(segmentation)
    logic.SetSourceVolumeNode(volume)
    logic.SetCurrentSegmentID("target")
    return logic, editor_node, segmentation, volume, masks


def voxels(segmentation, segment_id, volume):
    import slicer

    return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume)


def predicted(logic, volume, run_options):
    mask = logic.predictMasks(volume, ["spleen"], **run_options)[0]
    assert 0 < mask.mean() < 1
    return mask


def test_allow_overlap_inside_a_segment(editor, logic, run_options):
    import slicer

    editor_logic, editor_node, segmentation, volume, masks = editor
    editor_node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    editor_node.SetMaskSegmentID("A")
    editor_node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)

    logic.fillSegment(editor_logic, "spleen", **run_options)

    expected = predicted(logic, volume, run_options) & masks["A"]
    assert expected.any() and not np.array_equal(expected, masks["A"])
    np.testing.assert_array_equal(voxels(segmentation, "target", volume), expected)
    for other in ("A", "B"):
        np.testing.assert_array_equal(voxels(segmentation, other, volume), masks[other])


def test_overwrite_all_segments_and_intensity_range(editor, logic, run_options):
    import slicer

    editor_logic, editor_node, segmentation, volume, masks = editor
    editor_node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedEverywhere)
    editor_node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments)
    editor_node.SetSourceVolumeIntensityMask(True)
    editor_node.SetSourceVolumeIntensityMaskRange(100.0, 10000.0)

    logic.fillSegment(editor_logic, "spleen", **run_options)

    in_range = (phantom() >= 100.0) & (phantom() <= 10000.0)
    expected = predicted(logic, volume, run_options) & in_range
    assert expected.any()
    np.testing.assert_array_equal(voxels(segmentation, "target", volume), expected)
    for other in ("A", "B"):
        np.testing.assert_array_equal(voxels(segmentation, other, volume), masks[other] & ~expected.astype(bool))


def test_fill_is_one_editor_undo_step(editor, logic, run_options):
    editor_logic, _, segmentation, volume, masks = editor
    logic.fillSegment(editor_logic, "spleen", **run_options)
    assert voxels(segmentation, "target", volume).any()

    editor_logic.Undo()
    for name, mask in masks.items():
        np.testing.assert_array_equal(voxels(segmentation, name, volume), mask)
