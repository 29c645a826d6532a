"""What the user sees while a run goes: the CPU warning with its measured estimate beside Run,
"Cancelling..." and "Installed ..." that the worker's next line does not replace, a progress
bar that starts from zero, the model and device in the status, the reason a run wrote nothing,
and a new ROI that covers the image instead of being empty."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ElementTree
from types import SimpleNamespace

import numpy as np
import pytest
from slicer_fixtures import SLICER_MODULE_DIR, add_volume, oblique_ijk_to_ras, phantom

from VoxTellCore.errors import InputError
from VoxTellSlicerLib import devices
from VoxTellSlicerLib.worker import NothingWritten, ProgressState, showProgress

UI_FILE = SLICER_MODULE_DIR / "Resources" / "UI" / "VoxTellSlicer.ui"


@pytest.fixture
def module_widget(slicer_scene, tmp_path, monkeypatch):
    """The module's widget on a real scene and settings file; ``ui`` holds what a test reads."""
    from module_harness import load_module
    from PyQt5.QtCore import QSettings

    module = load_module(monkeypatch, QSettings(str(tmp_path / "user.ini"), QSettings.IniFormat))
    widget = module.VoxTellSlicerWidget()
    widget.logic = module.VoxTellSlicerLogic()
    widget._parameterNode = widget.logic.getParameterNode()
    widget.ui = SimpleNamespace(deviceWarningLabel=SimpleNamespace(text="", visible=False),
                                statusLabel=SimpleNamespace(text=""), progressBar=SimpleNamespace(maximum=0, value=0))
    return widget


# --- the CPU warning beside Run ---------------------------------------------------------------

def test_the_cpu_estimate_uses_the_measured_window_and_prompt_times():
    windows, minutes = devices.cpuEstimate((512, 512, 300), 1)
    assert windows == 75  # 4 x 4 x 3 windows of 192^3 at half-window steps (bench/README.md's CT-sized volume)
    assert minutes == pytest.approx(75 * (26.0 + 14.8) / 60)
    assert devices.cpuEstimate((512, 512, 300), 3)[1] == pytest.approx(75 * (26.0 + 3 * 14.8) / 60)
    assert devices.cpuEstimate((100, 120, 80), 1)[0] == 1


def test_the_warning_sits_beside_run_not_in_the_collapsed_section():
    tree = ElementTree.parse(UI_FILE)
    advanced = next(w for w in tree.iter("widget") if w.get("name") == "advancedCollapsibleButton")
    assert "deviceWarningLabel" not in {w.get("name") for w in advanced.iter("widget")}
    assert "deviceWarningLabel" in {w.get("name") for w in tree.iter("widget")}


def test_a_cpu_run_shows_its_estimate_for_this_image_and_these_prompts(module_widget, monkeypatch):
    monkeypatch.setattr(devices, "_cudaDevices", lambda: [])
    monkeypatch.setattr(devices, "_mpsAvailable", lambda: False)
    node = module_widget._parameterNode
    node.inputVolume = add_volume(np.zeros((300, 20, 20), np.float32), np.eye(4))  # KJI: 20 x 20 x 300 voxels
    node.prompts = "liver\nspleen\n"
    module_widget._devicesProbed = True
    module_widget.updateDeviceWarning()
    label = module_widget.ui.deviceWarningLabel
    windows, minutes = devices.cpuEstimate((20, 20, 300), 2)
    assert label.visible and label.text.startswith(devices.CPU_WARNING)
    assert f"{windows} window(s), about {minutes:.0f} min for these prompts on 2 CPU cores" in label.text


# --- status and progress --------------------------------------------------------------------------

def test_cancelling_is_not_replaced_by_the_workers_next_line(module_widget):
    module_widget._cancel = threading.Event()
    module_widget._progressState = ProgressState()
    module_widget._progressState.status("Downloading the official VoxTell v1.1 model (once)...")
    module_widget.onCancelButton()
    module_widget._progressState.status("Downloaded 120 MB of 1775 MB")  # the worker has not noticed yet
    module_widget.poll()
    assert module_widget._cancel.is_set()
    assert module_widget.ui.statusLabel.text == "Cancelling..."


def test_what_was_installed_stays_in_front_of_the_workers_status():
    state = ProgressState()
    state.note("Installed nibabel>=5.")
    state.status("Segmenting with the demo model on cpu...")
    assert state.latest()[2] == "Installed nibabel>=5. Segmenting with the demo model on cpu..."


def test_a_new_run_starts_its_progress_bar_from_zero():
    bar, label = SimpleNamespace(maximum=40, value=40), SimpleNamespace(text="Done.")
    state = ProgressState()
    state.status("Starting the demo model, device auto...")
    showProgress(state, bar, label)
    assert (bar.maximum, bar.value, label.text) == (0, 0, "Starting the demo model, device auto...")
    state(3, 12)
    showProgress(state, bar, label)
    assert (bar.maximum, bar.value) == (12, 3)


def test_the_status_names_the_model_and_the_device(slicer_scene, logic, options):
    lines = []
    volume = add_volume(phantom(), oblique_ijk_to_ras())
    logic.segment(volume, "liver", options=options, log=lines.append)
    assert f"Segmenting with the model in {options.model} on cpu..." in lines


# --- a run that wrote nothing says why -------------------------------------------------------------

def test_a_selection_change_during_the_run_is_reported_as_such(slicer_scene, logic, options):
    from test_editor_effect import make_editor

    from VoxTellSlicerLib.slicerCompat import SegmentEditorLogicEditor

    editor_logic, editor_node, segmentation, volume, masks = make_editor(slicer_scene)
    compute = logic.runCompute

    def select_other_segment_meanwhile(work):
        editor_node.SetSelectedSegmentID("A")
        return compute(work)

    logic.runCompute = select_other_segment_meanwhile
    with pytest.raises(NothingWritten, match="selected segment changed during the run: nothing was written"):
        logic.fillSelectedSegment(SegmentEditorLogicEditor(editor_logic), "spleen", options)
    np.testing.assert_array_equal(
        __import__("slicer").util.arrayFromSegmentBinaryLabelmap(segmentation, "A", volume), masks["A"])


@pytest.mark.parametrize("path", [SLICER_MODULE_DIR / "VoxTellSlicer.py",
                                  SLICER_MODULE_DIR / "SegmentEditorVoxTellLib" / "SegmentEditorEffect.py"],
                         ids=lambda p: p.name)
def test_the_gui_shows_why_nothing_was_written_by_its_type(path):
    """Not by looking for words in the message (a changed selection said "Cancelled")."""
    import ast

    source = path.read_text()
    assert '" in str(error)' not in source
    handlers = [ast.unparse(handler.type) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Try)
                for handler in node.handlers if handler.type is not None]
    assert handlers.index("NothingWritten") < handlers.index("Cancelled")


# --- Create new ROI ----------------------------------------------------------------------------------

def test_a_new_roi_covers_the_volume_and_the_run_uses_it(slicer_scene, logic, options):
    from VoxTellSlicerLib.geometry import fitRoiToVolume, roiBoundsRas

    volume = add_volume(phantom(), oblique_ijk_to_ras())
    roi = slicer_scene.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")  # what "Create new" adds
    with pytest.raises(InputError, match="is empty"):
        roiBoundsRas(roi, volume)
    fitRoiToVolume(roi, volume)
    low, high = np.array(roiBoundsRas(roi, volume)[:3]), np.array(roiBoundsRas(roi, volume)[3:])
    shape = np.array(phantom().shape[::-1])  # IJK
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
                        for k in (-0.5, shape[2] - 0.5)]) @ oblique_ijk_to_ras().T
    assert (corners[:, :3] >= low - 1e-6).all() and (corners[:, :3] <= high + 1e-6).all()
    whole = logic.predictMasks(volume, ["spleen"], options)
    np.testing.assert_array_equal(logic.predictMasks(volume, ["spleen"], options.withRoi(roi)), whole)


def test_the_modules_create_new_roi_fits_it_to_the_input_volume(module_widget, slicer_scene):
    from VoxTellSlicerLib.geometry import roiBoundsRas

    volume = add_volume(phantom(), np.eye(4))
    module_widget._parameterNode.inputVolume = volume
    roi = slicer_scene.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode")
    module_widget.onRoiCreated(roi)
    assert roiBoundsRas(roi, volume) == pytest.approx((-0.5, -0.5, -0.5, 21.5, 17.5, 13.5))
    assert "covers the whole image" in module_widget.ui.statusLabel.text
