"""One VoxTell run at a time in the process (module and effect share the model), and a run
whose scene closes meanwhile ends as Cancelled without writing anything.

The runs go through ``worker.runInWorker`` as in Slicer: the model work in a worker thread,
the caller's thread polling; what a user does meanwhile (a second Apply, File > Close scene)
happens in that poll, on the caller's thread, as Qt delivers it in Slicer."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
import pytest
from slicer_fixtures import add_volume, lps_ijk_to_ras

from VoxTellCore.errors import Cancelled
from VoxTellCore.progress import raise_if_cancelled


class SlowPredictor:
    """Works until ``release`` is set, checking the cancel like the real sliding window."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        self.calls += 1
        self.started.set()
        deadline = time.monotonic() + 20
        while not self.release.is_set() and time.monotonic() < deadline:
            raise_if_cancelled(cancel)
            time.sleep(0.01)
        return np.ones((len(prompts), *volume.array.shape), np.uint8)


def threaded_logic(predictor, poll):
    from VoxTellSlicerLib import VoxTellLogic
    from VoxTellSlicerLib.options import RunOptions
    from VoxTellSlicerLib.worker import runInWorker

    logic = VoxTellLogic(predictor_factory=lambda *key: predictor)
    logic.runCompute = lambda compute: runInWorker(compute, poll=poll)
    return logic, RunOptions(model="given")


def test_a_second_run_is_refused_while_one_runs(slicer_scene):
    from VoxTellSlicerLib.slicerCompat import SegmentEditorLogicEditor
    from VoxTellSlicerLib.worker import RunInProgress, isRunning

    predictor = SlowPredictor()
    volume = add_volume(np.zeros((6, 7, 8), np.float32), lps_ijk_to_ras())
    refusals = []

    def second_request_meanwhile():
        if predictor.started.is_set() and not refusals:
            for request in (lambda: effect_logic.segment(volume, ["spleen"], options=options),
                            lambda: effect_logic.fillSelectedSegment(SegmentEditorLogicEditor(editor), "spleen", options)):
                with pytest.raises(RunInProgress, match="already running") as refused:
                    request()
                refusals.append(str(refused.value))
            predictor.release.set()

    module_logic, options = threaded_logic(predictor, second_request_meanwhile)
    effect_logic, _ = threaded_logic(predictor, None)
    editor = editor_logic_for(slicer_scene, volume)

    segmentation = module_logic.segment(volume, ["liver"], options=options)
    assert len(refusals) == 2 and predictor.calls == 1, "the second request ran no inference"
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    assert not isRunning()
    effect_logic.segment(volume, ["spleen"], segmentationNode=segmentation, options=options)  # free again
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2


def editor_logic_for(slicer_scene, volume):
    import slicer

    segmentation = slicer_scene.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "edited")
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(volume)
    segmentation.GetSegmentation().AddEmptySegment("target", "target")
    editor = slicer.vtkSlicerSegmentEditorLogic()
    editor.SetMRMLScene(slicer_scene.scene)
    editor.SetMRMLApplicationLogic(slicer_scene.applicationLogic)
    editor.SetSegmentEditorNode(slicer_scene.scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode"))
    editor.SetSegmentationNode(segmentation)
    editor.SetSourceVolumeNode(volume)
    editor.SetCurrentSegmentID("target")
    return editor


@pytest.mark.parametrize("output", ["new", "existing"])
def test_closing_the_scene_during_a_run_cancels_it_and_writes_nothing(slicer_scene, output):
    from VoxTellSlicerLib.worker import isRunning

    scene = slicer_scene.scene
    predictor = SlowPredictor()
    closed = []

    def close_scene_meanwhile():
        if predictor.started.is_set() and not closed:
            scene.Clear(0)  # File > Close scene; the predictor is never released
            closed.append(True)

    logic, options = threaded_logic(predictor, close_scene_meanwhile)
    volume = add_volume(np.zeros((6, 7, 8), np.float32), lps_ijk_to_ras())
    segmentation = None
    if output == "existing":
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
        segmentation.GetSegmentation().AddEmptySegment("kept", "kept")
    with pytest.raises(Cancelled, match="scene was closed"):
        logic.segment(volume, ["liver"], segmentationNode=segmentation, options=options)
    assert closed
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0
    if segmentation is not None:
        assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    assert logic.lastRun is None
    assert not isRunning()


def test_worker_returns_results_and_reraises_errors_on_the_caller():
    from VoxTellSlicerLib.worker import runInWorker

    threads = []
    polls = []
    assert runInWorker(lambda: threads.append(threading.current_thread()) or 42, poll=lambda: polls.append(1)) == 42
    assert threads[0] is not threading.current_thread() and polls

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        runInWorker(fail)
