"""Report grounding in Slicer: finding rows, and VoxTellLogic.groundReport on a real MRML scene."""

from __future__ import annotations

import numpy as np
import pytest
import vtk
from slicer_fixtures import add_volume, lps_ijk_to_ras, phantom
from test_logic import add_user_segment, assert_same_state, reference_masks, segment_array, segment_ids, snapshot

from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.findings import ABDOMINAL_CATEGORIES, CATEGORIES, OTHER, extract_findings

REPORT = """Findings:
No pneumothorax. There is a 6mm solid nodule in the right lower lobe superior segment and a small
left pleural effusion. Heart size is normal. A 1,45 cm hypodense lesion in the liver.
"""
NODULE = "6 mm solid nodule in the right lower lobe superior segment"
EFFUSION = "Small left pleural effusion"
LIVER_LESION = "1.5 cm hypodense lesion in the liver"
EDITED_NODULE = "6 mm nodule in the right lower lobe"
# Every finding text the tests ground is in the bank, so no text encoder is needed.
REPORT_PROMPTS = [NODULE, EFFUSION, LIVER_LESION, EDITED_NODULE, "Pleural effusion"]


@pytest.fixture(scope="module")
def report_options(tiny_model, tmp_path_factory) -> dict:
    from model_fixtures import TINY, make_bank

    model, _ = tiny_model
    bank = make_bank(tmp_path_factory.mktemp("report") / "bank.npz", REPORT_PROMPTS, TINY.text_embedding_dim, seed=1)
    return {"modelPath": str(model), "device": "cpu", "embeddingBank": str(bank)}


def run_options_of(options: dict):
    from VoxTellSlicerLib.options import RunOptions

    return RunOptions(model=options["modelPath"], device=options["device"], embeddingBank=options["embeddingBank"])


def tag(segment, name: str) -> str | None:
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else None


def rows() -> list[dict]:
    from VoxTellSlicerLib import extractReportFindings

    return extractReportFindings(REPORT)


def test_rows_list_positive_findings_first_and_negated_ones_unselected():
    table = rows()
    assert [row["text"] for row in table] == [NODULE, EFFUSION, LIVER_LESION, "No pneumothorax", "Heart size is normal"]
    assert [row["selected"] for row in table] == [True, True, True, False, False]
    assert [row["negated"] for row in table] == [False, False, False, True, True]
    assert table[0]["category"] == "Pulmonary Nodules/Masses"
    assert table[1]["sourceSentence"].startswith("There is a 6mm solid nodule")


def test_rows_carry_the_uncertain_flag():
    from VoxTellSlicerLib import extractReportFindings

    table = extractReportFindings("Findings: Possible 3 mm nodule in the right upper lobe. Small left pleural effusion.")
    assert [(row["text"], row["uncertain"]) for row in table] == [
        ("3 mm nodule in the right upper lobe", True), ("Small left pleural effusion", False)]
    assert all(row["uncertain"] is False for row in rows())


def test_short_names_cut_at_a_word_and_stay_unique():
    from VoxTellSlicerLib.report import shortName, uniqueName

    assert shortName(NODULE) == "6 mm solid nodule in the right lower…"
    assert len(shortName(NODULE)) <= 41
    assert shortName(EFFUSION) == EFFUSION
    assert shortName("x" * 50, limit=10) == "x" * 10 + "…"
    assert uniqueName("Nodule", {"nodule", "Nodule (2)"}) == "Nodule (3)"
    assert uniqueName("Nodule", {"Effusion"}) == "Nodule"


def test_every_category_has_its_own_colour():
    from VoxTellSlicerLib.report import CATEGORY_COLORS

    assert set(CATEGORY_COLORS) == {category.name for category in CATEGORIES + ABDOMINAL_CATEGORIES} | {OTHER}
    assert len(set(CATEGORY_COLORS.values())) == len(CATEGORY_COLORS)


def test_selected_findings_become_named_tagged_coloured_segments(logic, report_options):
    from VoxTellSlicerLib import FINDING_CATEGORY_TAG, FINDING_TEXT_TAG
    from VoxTellSlicerLib.report import CATEGORY_COLORS

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    selected = [row for row in rows() if row["selected"]]
    segmentation_node = logic.groundReport(volume_node, selected, options=run_options_of(report_options))

    segmentation = segmentation_node.GetSegmentation()
    segments = [segmentation.GetSegment(i) for i in segment_ids(segmentation_node)]
    assert [s.GetName() for s in segments] == ["6 mm solid nodule in the right lower…", EFFUSION, LIVER_LESION]
    assert [tag(s, FINDING_TEXT_TAG) for s in segments] == [NODULE, EFFUSION, LIVER_LESION]
    assert [tag(s, FINDING_CATEGORY_TAG) for s in segments] == [
        "Pulmonary Nodules/Masses", "Pleural Effusion/Thickening", "Focal Organ Lesion"]
    for segment in segments:
        expected = CATEGORY_COLORS[tag(segment, FINDING_CATEGORY_TAG)]
        np.testing.assert_allclose(segment.GetColor(), expected)
    expected = reference_masks(logic, volume_node, [NODULE, EFFUSION, LIVER_LESION], report_options)
    assert 0 < expected.mean() < 1
    for segment_id, mask in zip(segment_ids(segmentation_node), expected):
        np.testing.assert_array_equal(segment_array(segmentation_node, segment_id, volume_node), mask)


def test_edited_text_is_grounded_and_unchecked_rows_are_not(logic, report_options):
    from VoxTellSlicerLib import FINDING_TEXT_TAG

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    table = rows()
    table[0]["text"] = "  6 mm  nodule in the right lower lobe "  # edited in the table
    table[1]["selected"] = False
    checked = [row for row in table if row["selected"]]
    segmentation_node = logic.groundReport(volume_node, checked, options=run_options_of(report_options))

    segments = [segmentation_node.GetSegmentation().GetSegment(i) for i in segment_ids(segmentation_node)]
    assert [tag(s, FINDING_TEXT_TAG) for s in segments] == [EDITED_NODULE, LIVER_LESION]
    assert segments[0].GetName() == EDITED_NODULE
    expected = reference_masks(logic, volume_node, [EDITED_NODULE], report_options)[0]
    np.testing.assert_array_equal(segment_array(segmentation_node, segment_ids(segmentation_node)[0], volume_node),
                                  expected)


def test_plain_text_findings_get_their_own_category():
    from VoxTellSlicerLib.report import ReportFinding, reportFinding

    assert reportFinding(EFFUSION).category == "Pleural Effusion/Thickening"
    assert reportFinding({"text": LIVER_LESION, "category": ""}).category == "Focal Organ Lesion"
    nodule = extract_findings(REPORT)[1]
    assert reportFinding(nodule) == ReportFinding(NODULE, "Pulmonary Nodules/Masses")


def test_rerun_updates_finding_segments_and_keeps_user_segments(logic, report_options, slicer_scene):
    from VoxTellSlicerLib import FINDING_TEXT_TAG

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = logic.groundReport(volume_node, [EFFUSION], options=run_options_of(report_options))
    effusion_id = segment_ids(segmentation_node)[0]
    user_id = add_user_segment(segmentation_node, volume_node)
    # The user's own segment that already has the name a new finding would get.
    clash_id = add_user_segment(segmentation_node, volume_node, name="Pleural effusion")
    user_state = {k: v for k, v in snapshot(segmentation_node, volume_node).items() if k in (user_id, clash_id)}

    table = [{"text": "small LEFT pleural effusion", "category": "Pleural Effusion/Thickening"},
             {"text": "Pleural effusion", "category": ""}]
    logic.groundReport(volume_node, table, segmentationNode=segmentation_node, options=run_options_of(report_options))

    ids = segment_ids(segmentation_node)
    assert len(ids) == 4 and ids[0] == effusion_id, "the effusion is updated, one finding added"
    segmentation = segmentation_node.GetSegmentation()
    assert segmentation.GetSegment(effusion_id).GetName() == EFFUSION
    assert tag(segmentation.GetSegment(effusion_id), FINDING_TEXT_TAG) == "small LEFT pleural effusion"
    assert segmentation.GetSegment(ids[3]).GetName() == "Pleural effusion (2)"
    after = snapshot(segmentation_node, volume_node)
    assert_same_state(user_state, {k: after[k] for k in user_state})

    logic.revertLastRun()
    assert segment_ids(segmentation_node) == [effusion_id, user_id, clash_id], "Revert last run reverts the whole run"
    assert tag(segmentation.GetSegment(effusion_id), FINDING_TEXT_TAG) == EFFUSION


def test_cancel_leaves_the_segmentation_unchanged(logic, report_options):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = logic.groundReport(volume_node, [EFFUSION], options=run_options_of(report_options))
    add_user_segment(segmentation_node, volume_node)
    before = snapshot(segmentation_node, volume_node)
    calls = []

    with pytest.raises(Cancelled):
        logic.groundReport(volume_node, [NODULE, LIVER_LESION], segmentationNode=segmentation_node,
                           cancel=lambda: calls.append(1) or len(calls) >= 2, options=run_options_of(report_options))
    assert_same_state(before, snapshot(segmentation_node, volume_node))


def test_no_finding_is_refused(logic, report_options):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    with pytest.raises(InputError, match="No finding"):
        logic.groundReport(volume_node, [{"text": "  ", "category": ""}], options=run_options_of(report_options))


def test_jump_centres_slice_views_on_the_finding_segment(logic, slicer_scene):
    import slicer

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = slicer_scene.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "findings")
    segmentation_node.CreateDefaultDisplayNodes()
    segment_id = add_user_segment(segmentation_node, volume_node)
    red = slicer_scene.scene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetLayoutName("Red")
    red.SetOrientationToAxial()

    center = logic.jumpToSegment(segmentation_node, segment_id)
    ijk_to_ras = lps_ijk_to_ras()
    k, j, i = np.nonzero(segment_array(segmentation_node, segment_id, volume_node))
    box_centre = ijk_to_ras[:3, :3] @ [(i.min() + i.max()) / 2, (j.min() + j.max()) / 2, (k.min() + k.max()) / 2]
    half_voxel = np.abs(np.diag(ijk_to_ras)[:3]) / 2  # Slicer snaps the centre to a voxel
    assert np.all(np.abs(np.array(center) - box_centre - ijk_to_ras[:3, 3]) <= half_voxel + 1e-6)
    np.testing.assert_allclose(slicer.util.arrayFromVTKMatrix(red.GetSliceToRAS())[:3, 3], center)
    empty_id = segmentation_node.GetSegmentation().AddEmptySegment("empty")
    assert logic.jumpToSegment(segmentation_node, empty_id) is None
