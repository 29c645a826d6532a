"""VoxTellLogic on a real MRML scene with the real predictor (tiny random model)."""

from __future__ import annotations

import threading

import numpy as np
import torch
import pytest
from slicer_fixtures import add_volume, lps_ijk_to_ras, oblique_ijk_to_ras, phantom

from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.io import Volume

LIVER_RGB = (221, 130, 101)
LEFT_KIDNEY_RGB = (185, 102, 83)


def segment_ids(segmentation_node) -> list[str]:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]


def segment_array(segmentation_node, segment_id, volume_node) -> np.ndarray:
    import slicer

    return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, volume_node)


def segment_by_name(segmentation_node, name):
    segmentation = segmentation_node.GetSegmentation()
    return segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName(name))


def snapshot(segmentation_node, volume_node) -> dict:
    """Everything a user sees of each segment: name, colour, terminology and voxels."""
    state = {}
    for segment_id in segment_ids(segmentation_node):
        segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
        state[segment_id] = (
            segment.GetName(),
            tuple(round(c, 6) for c in segment.GetColor()),
            segment.GetTerminology(),
            segment_array(segmentation_node, segment_id, volume_node).copy(),
        )
    return state


def assert_same_state(before: dict, after: dict) -> None:
    assert list(before) == list(after)
    for segment_id, (name, color, terminology, voxels) in before.items():
        assert after[segment_id][:3] == (name, color, terminology)
        np.testing.assert_array_equal(after[segment_id][3], voxels)


def reference_masks(logic, volume_node, prompts, options, roi=None) -> np.ndarray:
    import slicer

    from VoxTellSlicerLib.geometry import ijkToRasArray

    volume = Volume(np.array(slicer.util.arrayFromVolume(volume_node), dtype=np.float32), ijkToRasArray(volume_node))
    predictor = logic.predictor(options["modelPath"], options["device"], options["embeddingBank"])
    return predictor.predict_volume(volume, prompts, roi_ras=roi)


def roi_at_volume_centre(scene, volume_node, size):
    roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    bounds = [0.0] * 6
    volume_node.GetRASBounds(bounds)
    roi.SetCenter(*[(bounds[2 * axis] + bounds[2 * axis + 1]) / 2 for axis in range(3)])
    roi.SetSize(*size)
    return roi


def roi_box(roi) -> tuple[float, ...]:
    bounds = [0.0] * 6
    roi.GetRASBounds(bounds)
    return (bounds[0], bounds[2], bounds[4], bounds[1], bounds[3], bounds[5])


def add_user_segment(segmentation_node, volume_node, name="my tumour") -> str:
    import slicer

    mask = np.zeros(slicer.util.arrayFromVolume(volume_node).shape, np.uint8)
    mask[3:9, 4:12, 5:15] = 1
    segment_id = segmentation_node.GetSegmentation().AddEmptySegment(name, name, [0.1, 0.2, 0.9])
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation_node, segment_id, volume_node)
    return segment_id


@pytest.mark.parametrize("ijk_to_ras", [lps_ijk_to_ras(), oblique_ijk_to_ras()], ids=["LPS", "oblique"])
def test_segments_equal_predictor_masks_on_the_volume_grid(logic, run_options, ijk_to_ras, options):
    volume_node = add_volume(phantom(), ijk_to_ras)
    prompts = ["liver", "left kidney", "xyzzy structure"]
    segmentation_node = logic.segment(volume_node, prompts, options=options)

    expected = reference_masks(logic, volume_node, prompts, run_options)
    assert expected.shape == (3, *phantom().shape)
    assert 0 < expected.mean() < 1, "the tiny model should give non-trivial masks"
    assert [segment_by_name(segmentation_node, p).GetName() for p in prompts] == prompts
    for prompt, mask in zip(prompts, expected):
        segment_id = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(prompt)
        np.testing.assert_array_equal(segment_array(segmentation_node, segment_id, volume_node), mask)


def test_roi_limits_the_segment_to_the_box(logic, run_options, slicer_scene, options):
    volume_node = add_volume(phantom(), np.diag([1.5, 1.0, 2.0, 1.0]))
    roi = slicer_scene.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(10.0, 8.0, 12.0)
    roi.SetSize(12.0, 10.0, 14.0)
    segmentation_node = logic.segment(volume_node, "spleen", options=options.withRoi(roi))

    expected = reference_masks(logic, volume_node, ["spleen"], run_options, roi=(4.0, 3.0, 5.0, 16.0, 13.0, 19.0))
    actual = segment_array(segmentation_node, segment_ids(segmentation_node)[0], volume_node)
    np.testing.assert_array_equal(actual, expected[0])
    full = reference_masks(logic, volume_node, ["spleen"], run_options)[0]
    assert actual.sum() < full.sum()
    k, j, i = np.nonzero(actual)
    assert i.min() * 1.5 >= 4.0 - 0.75 and i.max() * 1.5 <= 16.0 + 0.75


def test_roi_follows_a_transformed_volume(logic, run_options, slicer_scene, options):
    import slicer

    volume_node = add_volume(phantom(), np.diag([1.5, 1.0, 2.0, 1.0]))
    shift = slicer_scene.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    shift.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(np.array(
        [[1, 0, 0, 100.0], [0, 1, 0, -50.0], [0, 0, 1, 20.0], [0, 0, 0, 1]])))
    volume_node.SetAndObserveTransformNodeID(shift.GetID())
    roi = slicer_scene.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(110.0, -42.0, 32.0)  # in world coordinates, over the moved volume
    roi.SetSize(12.0, 10.0, 14.0)
    segmentation_node = logic.segment(volume_node, "spleen", options=options.withRoi(roi))

    expected = reference_masks(logic, volume_node, ["spleen"], run_options, roi=(4.0, 3.0, 5.0, 16.0, 13.0, 19.0))
    np.testing.assert_array_equal(segment_array(segmentation_node, segment_ids(segmentation_node)[0], volume_node),
                                  expected[0])
    assert segmentation_node.GetTransformNodeID() == shift.GetID()


@pytest.mark.parametrize("prompt", ["liver", "Liver", "  hepatic   organ "])
def test_liver_prompts_map_to_slicer_liver_terminology_and_colour(logic, prompt):
    style = logic.segmentStyle(prompt)
    assert style.name == " ".join(prompt.split())
    assert tuple(round(c * 255) for c in style.color) == LIVER_RGB
    assert "^10200004^Liver" in style.terminology
    assert "3D Slicer General Anatomy list" in style.terminology


def test_segment_carries_name_colour_and_terminology(logic, options, slicer_scene):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    bare = slicer_scene.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "bare")
    segmentation_node = logic.segment(volume_node, ["Hepatic organ"], segmentationNode=bare, options=options)
    assert segmentation_node is bare and bare.GetDisplayNode() is not None
    segment = segmentation_node.GetSegmentation().GetSegment(segment_ids(segmentation_node)[0])
    assert segment.GetName() == "Hepatic organ"
    assert tuple(round(c * 255) for c in segment.GetColor()) == LIVER_RGB
    assert segment.GetTerminology() == logic.segmentStyle("liver").terminology


def test_type_modifier_colour_is_used_for_left_kidney(logic):
    style = logic.segmentStyle("Left Kidney")
    assert tuple(round(c * 255) for c in style.color) == LEFT_KIDNEY_RGB
    assert "^7771000^Left" in style.terminology


def test_unknown_prompt_gets_a_stable_hash_colour(slicer_scene, predictor_factory):
    from VoxTellSlicerLib import VoxTellLogic
    from VoxTellSlicerLib.terminology import stableColor

    first = VoxTellLogic(predictor_factory=predictor_factory).segmentStyle("xyzzy structure")
    second = VoxTellLogic(predictor_factory=predictor_factory).segmentStyle("XYZZY  structure")
    other = VoxTellLogic(predictor_factory=predictor_factory).segmentStyle("plugh structure")
    assert first.terminology == ""
    assert first.color == second.color == stableColor("xyzzy structure")
    assert first.color != other.color
    assert all(0.0 <= c <= 1.0 for c in first.color)


def test_rerun_updates_its_segment_and_keeps_user_segments(logic, run_options, slicer_scene, options):
    volume_node = add_volume(phantom(), oblique_ijk_to_ras())
    segmentation_node = logic.segment(volume_node, ["liver"], options=options)
    user_id = add_user_segment(segmentation_node, volume_node)
    # A user segment that happens to share a prompt's name is still the user's.
    user_liver_id = add_user_segment(segmentation_node, volume_node, name="spleen")
    user_state = {k: v for k, v in snapshot(segmentation_node, volume_node).items() if k in (user_id, user_liver_id)}
    liver_id = segment_ids(segmentation_node)[0]
    segment_by_name(segmentation_node, "liver").SetColor(0.0, 1.0, 0.0)  # user recolours VoxTell's segment

    roi = roi_at_volume_centre(slicer_scene.scene, volume_node, (15.0, 15.0, 15.0))
    logic.segment(volume_node, ["LIVER", "spleen"], segmentationNode=segmentation_node, options=options.withRoi(roi))

    ids = segment_ids(segmentation_node)
    assert len(ids) == 4, "the liver segment is updated, spleen added; nothing duplicated"
    assert ids[0] == liver_id
    names = [segmentation_node.GetSegmentation().GetSegment(i).GetName() for i in ids]
    assert names.count("liver") == 1 and names.count("spleen") == 2
    expected = reference_masks(logic, volume_node, ["liver", "spleen"], run_options, roi=roi_box(roi))
    np.testing.assert_array_equal(segment_array(segmentation_node, liver_id, volume_node), expected[0])
    np.testing.assert_array_equal(segment_array(segmentation_node, ids[3], volume_node), expected[1])
    assert segmentation_node.GetSegmentation().GetSegment(liver_id).GetColor() == (0.0, 1.0, 0.0)
    after = snapshot(segmentation_node, volume_node)
    assert_same_state(user_state, {k: after[k] for k in user_state})


def test_cancel_callback_mid_run_leaves_segmentation_unchanged(logic, options):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = logic.segment(volume_node, ["liver"], options=options)
    add_user_segment(segmentation_node, volume_node)
    before = snapshot(segmentation_node, volume_node)

    calls = []

    def cancel_on_third_check() -> bool:
        calls.append(1)
        return len(calls) >= 3  # before the window, first prompt, then mid-way through the prompts

    with pytest.raises(Cancelled):
        logic.segment(volume_node, ["liver", "spleen", "lesion"], segmentationNode=segmentation_node,
                      options=options, cancel=cancel_on_third_check)
    assert len(calls) == 3
    assert_same_state(before, snapshot(segmentation_node, volume_node))


def test_cancel_event_set_during_run_leaves_segmentation_unchanged(logic, options, slicer_scene):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = slicer_scene.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
    segmentation_node.CreateDefaultDisplayNodes()
    add_user_segment(segmentation_node, volume_node)
    before = snapshot(segmentation_node, volume_node)
    event = threading.Event()

    with pytest.raises(Cancelled):
        logic.segment(volume_node, ["spleen"], segmentationNode=segmentation_node,
                      options=options, progress=lambda done, total: event.set(), cancel=event)
    assert_same_state(before, snapshot(segmentation_node, volume_node))


def test_cancel_before_any_output_creates_no_node(logic, options, slicer_scene):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    count = slicer_scene.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    with pytest.raises(Cancelled):
        logic.segment(volume_node, ["liver"], options=options, cancel=lambda: True)
    assert slicer_scene.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == count


def test_revert_restores_exactly_the_segments_the_last_run_changed(logic, options, slicer_scene):
    from VoxTellSlicerLib import FINDING_TEXT_TAG

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = logic.segment(volume_node, ["liver"], options=options)
    user_id = add_user_segment(segmentation_node, volume_node)
    liver_id = segment_ids(segmentation_node)[0]
    liver = segmentation_node.GetSegmentation().GetSegment(liver_id)
    liver.SetColor(0.1, 0.9, 0.3)  # the user's own changes to VoxTell's segment are part of "before"
    liver.SetName("my liver")
    segmentation_node.GetDisplayNode().SetSegmentVisibility(user_id, False)
    before = snapshot(segmentation_node, volume_node)

    roi = roi_at_volume_centre(slicer_scene.scene, volume_node, (8.0, 8.0, 20.0))
    logic.groundReport(volume_node, [{"text": "liver", "category": "Other"}, {"text": "spleen", "category": "Other"}],
                       segmentationNode=segmentation_node, options=options.withRoi(roi))
    changed = snapshot(segmentation_node, volume_node)
    assert len(changed) == 3
    assert not np.array_equal(changed[liver_id][3], before[liver_id][3])
    assert tag(segmentation_node, liver_id, FINDING_TEXT_TAG) == "liver"

    message = logic.revertLastRun()
    assert "1 segment(s) removed, 1 restored" in message
    assert_same_state(before, snapshot(segmentation_node, volume_node))
    assert tag(segmentation_node, liver_id, FINDING_TEXT_TAG) is None, "tags the run added are gone"
    assert tag(segmentation_node, liver_id, "VoxTell.Prompt") == "liver"
    assert not segmentation_node.GetDisplayNode().GetSegmentVisibility(user_id)
    with pytest.raises(InputError, match="no VoxTell run to revert"):
        logic.revertLastRun()


def test_revert_removes_the_segmentation_the_run_created(logic, options, slicer_scene):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    nodes = slicer_scene.scene.GetNumberOfNodes()
    segmentation_node = logic.segment(volume_node, ["liver"], options=options)
    assert logic.canRevert()
    logic.revertLastRun()
    assert segmentation_node.GetScene() is None
    assert slicer_scene.scene.GetNumberOfNodes() == nodes, "display nodes go with it"
    assert not logic.canRevert()


@pytest.mark.parametrize("edit", ["paint a run segment", "add a segment to the run's new node"])
def test_revert_refuses_to_discard_edits_made_after_the_run(logic, options, slicer_scene, edit):
    """Nothing lost: once the user has edited what the run produced, Revert changes nothing."""
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = logic.segment(volume_node, ["liver"], options=options)
    if edit == "paint a run segment":
        import slicer

        liver_id = segment_ids(segmentation_node)[0]
        painted = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, liver_id, volume_node)
        painted[:, :2, :2] = 1 - painted[:, :2, :2]
        slicer.util.updateSegmentBinaryLabelmapFromArray(painted, segmentation_node, liver_id, volume_node)
    else:
        add_user_segment(segmentation_node, volume_node)
    before = snapshot(segmentation_node, volume_node)

    with pytest.raises(InputError, match="edited after the last VoxTell run"):
        logic.revertLastRun()
    assert segmentation_node.GetScene() is not None
    assert_same_state(before, snapshot(segmentation_node, volume_node))


def tag(segmentation_node, segment_id, name):
    import vtk

    value = vtk.reference("")
    return str(value) if segmentation_node.GetSegmentation().GetSegment(segment_id).GetTag(name, value) else None


def test_failed_write_rolls_back(logic, options, monkeypatch, slicer_scene):
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    segmentation_node = logic.segment(volume_node, ["liver"], options=options)
    before = snapshot(segmentation_node, volume_node)
    original = logic._writeSegment
    written = []

    def fail_on_second(node, request, labelmap, backup):
        if written:
            raise RuntimeError("disk full")
        written.append(original(node, request, labelmap, backup))

    monkeypatch.setattr(logic, "_writeSegment", fail_on_second)
    roi = roi_at_volume_centre(slicer_scene.scene, volume_node, (8.0, 8.0, 20.0))  # the liver mask changes
    with pytest.raises(RuntimeError, match="disk full"):
        logic.segment(volume_node, ["liver", "spleen"], segmentationNode=segmentation_node, options=options.withRoi(roi))
    assert len(written) == 1, "the liver segment was replaced before the failure"
    assert_same_state(before, snapshot(segmentation_node, volume_node))


def test_second_run_reuses_predictor_and_volume(slicer_scene, options, predictor_factory):
    from VoxTellSlicerLib import VoxTellLogic

    built = []
    logic = VoxTellLogic(predictor_factory=lambda *key: built.append(key) or predictor_factory(*key))
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    logic.segment(volume_node, ["liver"], options=options)
    first_volume = logic.volumeFromNode(volume_node)
    logic.segment(volume_node, ["spleen"], options=options)
    assert len(built) == 1
    assert logic.volumeFromNode(volume_node) is first_volume

    import slicer

    array = slicer.util.arrayFromVolume(volume_node)
    array[0, 0, 0] += 1000.0
    slicer.util.arrayFromVolumeModified(volume_node)
    assert logic.volumeFromNode(volume_node) is not first_volume
    assert logic.volumeFromNode(volume_node).array[0, 0, 0] == array[0, 0, 0]


def test_prompts_are_cleaned_and_empty_input_is_refused():
    from VoxTellSlicerLib import cleanPrompts

    assert cleanPrompts("liver\n\n  Liver \nleft   kidney\n") == ["liver", "left kidney"]
    assert cleanPrompts(["spleen", "a\nb"]) == ["spleen", "a", "b"]
    with pytest.raises(InputError, match="No prompt"):
        cleanPrompts(" \n ")


def test_surface_segmentation_is_refused_untouched(logic, options, slicer_scene):
    import slicer
    import vtk

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    surfaces = slicer_scene.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "surfaces")
    surfaces.CreateDefaultDisplayNodes()
    surface_name = slicer.vtkSegmentationConverter.GetClosedSurfaceRepresentationName()
    surfaces.GetSegmentation().SetSourceRepresentationName(surface_name)
    sphere = vtk.vtkSphereSource()
    sphere.Update()
    surfaces.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "ball", [1.0, 0.0, 0.0])

    with pytest.raises(InputError, match="Closed surface.*new output segmentation"):
        logic.segment(volume_node, ["liver"], segmentationNode=surfaces, options=options)
    assert surfaces.GetSegmentation().GetNumberOfSegments() == 1


def test_inference_goes_through_the_compute_runner_and_mrml_stays_on_the_caller(slicer_scene):
    """The widget swaps runCompute for a worker thread; the logic must route the model work
    through it and apply the masks itself after it returns (MRML stays on the caller's thread)."""
    from VoxTellSlicerLib import VoxTellLogic

    calls = []

    class Predictor:
        device = torch.device("cpu")

        def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
            calls.append(threading.current_thread().name)
            return np.ones((len(prompts), *volume.array.shape), np.uint8)

    def in_worker(compute):
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("value", compute()), name="worker")
        worker.start()
        worker.join()
        return result["value"]

    from VoxTellSlicerLib.options import RunOptions

    logic = VoxTellLogic(predictor_factory=lambda *args: Predictor())
    logic.runCompute = in_worker
    volume = add_volume(np.zeros((6, 7, 8), np.float32), lps_ijk_to_ras())
    segmentation = logic.segment(volume, ["liver"], options=RunOptions(model="any folder"))
    assert calls == ["worker"]
    assert len(segment_ids(segmentation)) == 1
    assert segment_array(segmentation, segment_ids(segmentation)[0], volume).all()


def test_the_effect_roi_replaces_the_module_roi(slicer_scene):
    from VoxTellSlicerLib.options import RunOptions

    scene = slicer_scene.scene
    module_roi = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    other = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "effect box")
    assert RunOptions(model="demo", roiNode=module_roi).withRoi(other).roiNode is other


def test_a_cached_official_model_is_used_without_the_network(monkeypatch):
    """The official model's check asks the local cache only; nothing is downloaded when it is there."""
    from VoxTellSlicerLib import VoxTellLogic, officialModel
    from VoxTellSlicerLib.options import RunOptions

    monkeypatch.setattr(officialModel, "cachedOfficialModel", lambda: ("/cache/voxtell_v1.1", "/cache/bank.npz"),
                        raising=False)
    monkeypatch.setattr(officialModel, "downloadOfficialModel",
                        lambda **kwargs: pytest.fail("downloaded although the model is cached"))
    logic = VoxTellLogic(predictor_factory=lambda *key: None)
    assert logic.resolveModel(RunOptions()) == ("/cache/voxtell_v1.1", "/cache/bank.npz")

    downloads = []
    monkeypatch.setattr(officialModel, "cachedOfficialModel", lambda: None, raising=False)
    monkeypatch.setattr(officialModel, "downloadOfficialModel",
                        lambda progress=None, cancel=None: downloads.append(cancel) or ("/dl/voxtell_v1.1", None))
    assert logic.resolveModel(RunOptions(embeddingBank="mine.npz"), cancel=lambda: False) == ("/dl/voxtell_v1.1",
                                                                                            "mine.npz")
    assert len(downloads) == 1 and downloads[0] is not None


class EncoderPredictor:
    """A predictor whose prompts outside the bank need a text encoder that is not downloaded."""

    device = "cpu"

    def __init__(self, bank_prompts):
        import types

        self.embedder = types.SimpleNamespace(
            encoder=types.SimpleNamespace(name_or_path="Qwen/Qwen3-Embedding-4B"),
            prompts_needing_encoder=lambda prompts: [p.lower() for p in prompts if p.lower() not in bank_prompts])


@pytest.fixture
def encoder_hub(monkeypatch):
    """officialModel's text-encoder calls, recorded: the question (None once downloaded) and the download."""
    from VoxTellSlicerLib import officialModel

    calls = {"asked": [], "downloads": []}
    monkeypatch.setattr(officialModel, "textEncoderDownload",
                        lambda encoder, device: calls["asked"].append((encoder, device)) or "8 GB, 16 GB of RAM. Download?")
    monkeypatch.setattr(officialModel, "downloadTextEncoder",
                        lambda encoder, device, progress=None, cancel=None: calls["downloads"].append(cancel))
    return calls


@pytest.mark.parametrize("answer", [True, False])
def test_a_free_text_prompt_asks_before_downloading_the_text_encoder(encoder_hub, answer):
    from VoxTellSlicerLib import VoxTellLogic
    from VoxTellSlicerLib.options import RunOptions

    logic = VoxTellLogic(predictor_factory=lambda *key: EncoderPredictor({"liver"}))
    options = RunOptions(model="folder")
    questions = []

    logic.prepareTextEncoder(["liver"], options, confirm=questions.append)  # in the bank: nothing asked
    assert questions == [] and encoder_hub["asked"] == []

    cancel = threading.Event()
    if answer:
        logic.prepareTextEncoder(["a hazy opacity"], options, confirm=lambda q: questions.append(q) or True, cancel=cancel)
        assert encoder_hub["downloads"] == [cancel]
    else:
        with pytest.raises(Cancelled, match="text encoder was not downloaded"):
            logic.prepareTextEncoder(["a hazy opacity"], options, confirm=lambda q: questions.append(q) or False)
        assert encoder_hub["downloads"] == []
    assert questions == ["8 GB, 16 GB of RAM. Download?"]
    assert encoder_hub["asked"] == [("Qwen/Qwen3-Embedding-4B", "cpu")]


def test_too_little_memory_for_the_text_encoder_is_refused_before_asking(monkeypatch):
    from VoxTellCore.errors import ModelError
    from VoxTellSlicerLib import VoxTellLogic, officialModel
    from VoxTellSlicerLib.options import RunOptions

    def refuse(encoder, device):
        raise ModelError("The text encoder needs about 16 GB of free memory; 6 GB are free.")

    monkeypatch.setattr(officialModel, "textEncoderDownload", refuse)
    logic = VoxTellLogic(predictor_factory=lambda *key: EncoderPredictor(set()))
    with pytest.raises(ModelError, match="16 GB"):
        logic.prepareTextEncoder(["anything"], RunOptions(model="folder"), confirm=lambda q: pytest.fail("asked"))
