"""The Segment Editor effect's Apply path, VoxTellLogic.fillSelectedSegment, with Slicer's own
editor logic (vtkSlicerSegmentEditorLogic through SegmentEditorLogicEditor; in Slicer the effect
passes its scriptedEffect, which has the same four calls): editable area, intensity range and
overwrite mode apply, transforms are followed, the result equals the module's, and the change
is one editor undo step. The effect file itself is parsed and its prompt box run with real Qt
in test_qt_effect.py."""

from __future__ import annotations

import numpy as np
import pytest
from slicer_fixtures import add_volume, oblique_ijk_to_ras, phantom

SHAPE = phantom().shape


def make_editor(slicer_scene, transform=None):
    """A volume, a segmentation with segments A (slab in k) and B (slab in j), an empty
    target segment, and a vtkSlicerSegmentEditorLogic with the target selected; both nodes
    under ``transform`` when given."""
    import slicer

    scene = slicer_scene.scene
    volume = add_volume(phantom(), oblique_ijk_to_ras())
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "seg")
    if transform is not None:
        volume.SetAndObserveTransformNodeID(transform.GetID())
        segmentation.SetAndObserveTransformNodeID(transform.GetID())
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


@pytest.fixture
def editor(slicer_scene):
    return make_editor(slicer_scene)


def fill(logic, editor_logic, options, prompt="spleen"):
    from VoxTellSlicerLib.slicerCompat import SegmentEditorLogicEditor

    logic.fillSelectedSegment(SegmentEditorLogicEditor(editor_logic), prompt, options)


def voxels(segmentation, segment_id, volume):
    import slicer

    return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume)


def predicted(logic, volume, options):
    mask = logic.predictMasks(volume, ["spleen"], options)[0]
    assert 0 < mask.mean() < 1
    return mask


def test_allow_overlap_inside_a_segment(editor, logic, options):
    import slicer

    editor_logic, editor_node, segmentation, volume, masks = editor
    editor_node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    editor_node.SetMaskSegmentID("A")
    editor_node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)

    fill(logic, editor_logic, options)

    expected = predicted(logic, volume, options) & masks["A"]
    assert expected.any() and not np.array_equal(expected, masks["A"])
    np.testing.assert_array_equal(voxels(segmentation, "target", volume), expected)
    for other in ("A", "B"):
        np.testing.assert_array_equal(voxels(segmentation, other, volume), masks[other])


def test_overwrite_all_segments_and_intensity_range(editor, logic, options):
    import slicer

    editor_logic, editor_node, segmentation, volume, masks = editor
    editor_node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedEverywhere)
    editor_node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments)
    editor_node.SetSourceVolumeIntensityMask(True)
    editor_node.SetSourceVolumeIntensityMaskRange(100.0, 10000.0)

    fill(logic, editor_logic, options)

    in_range = (phantom() >= 100.0) & (phantom() <= 10000.0)
    expected = predicted(logic, volume, options) & in_range
    assert expected.any()
    np.testing.assert_array_equal(voxels(segmentation, "target", volume), expected)
    for other in ("A", "B"):
        np.testing.assert_array_equal(voxels(segmentation, other, volume), masks[other] & ~expected.astype(bool))


def test_fill_is_one_editor_undo_step(editor, logic, options):
    editor_logic, _, segmentation, volume, masks = editor
    fill(logic, editor_logic, options)
    assert voxels(segmentation, "target", volume).any()

    editor_logic.Undo()
    for name, mask in masks.items():
        np.testing.assert_array_equal(voxels(segmentation, name, volume), mask)


def test_apply_follows_a_parent_transform_and_equals_the_module_result(slicer_scene, logic, options):
    import slicer

    moved = slicer_scene.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    moved.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(np.array(
        [[0.0, -1.0, 0.0, 80.0], [1.0, 0.0, 0.0, -30.0], [0.0, 0.0, 1.0, 12.0], [0.0, 0.0, 0.0, 1.0]])))
    editor_logic, _, segmentation, volume, masks = make_editor(slicer_scene, moved)

    fill(logic, editor_logic, options)

    module_segmentation = logic.segment(volume, ["spleen"], options=options)
    module_mask = voxels(module_segmentation, module_segmentation.GetSegmentation().GetNthSegmentID(0), volume)
    assert 0 < module_mask.mean() < 1
    np.testing.assert_array_equal(voxels(segmentation, "target", volume), module_mask)
    np.testing.assert_array_equal(module_mask, predicted(logic, volume, options))
    assert module_segmentation.GetTransformNodeID() == moved.GetID()


def test_apply_maps_a_transformed_volume_into_an_untransformed_segmentation(slicer_scene, logic, options):
    import slicer

    editor_logic, _, segmentation, volume, masks = make_editor(slicer_scene)
    shift = slicer_scene.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    # A whole number of voxels along each image axis, so the moved mask lands on the segmentation's grid.
    ijk_shift = np.array([2.0, -3.0, 1.0, 0.0])
    matrix = np.eye(4)
    matrix[:3, 3] = (oblique_ijk_to_ras() @ ijk_shift)[:3]
    shift.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(matrix))
    volume.SetAndObserveTransformNodeID(shift.GetID())

    fill(logic, editor_logic, options)

    mask = predicted(logic, volume, options)
    expected = np.zeros_like(mask)
    expected[1:, :-3, 2:] = mask[:-1, 3:, :-2]  # voxel (k, j, i) lands on (k+1, j-3, i+2) of the segmentation's grid
    assert expected.any()
    segmentation_grid = add_volume(phantom(), oblique_ijk_to_ras(), "untransformed grid")
    np.testing.assert_array_equal(voxels(segmentation, "target", segmentation_grid), expected)
