"""The user's model, folder, device and precision outlive Close Scene and a restart: they are
kept in Slicer's user settings (a real PyQt5 QSettings file here) and fill the module's
parameter node; the Segment Editor effect reads them without the module being opened."""

from __future__ import annotations

import pytest

from VoxTellCore.errors import InputError
from VoxTellSlicerLib.options import RunOptions
from VoxTellSlicerLib.settings import DEVICE, MODEL_FOLDER, MODEL_SOURCE, PRECISION, UserSettings


@pytest.fixture
def settings_file(tmp_path):
    return str(tmp_path / "Slicer-user.ini")


def qsettings(path: str):
    """Slicer's user settings are a QSettings in INI format; a new object = a new Slicer session."""
    from PyQt5.QtCore import QSettings

    return QSettings(path, QSettings.IniFormat)


def choose_folder(settings: UserSettings) -> None:
    settings.set(MODEL_SOURCE, "folder")
    settings.set(MODEL_FOLDER, "/data/models/voxtell_v1.1")
    settings.set(DEVICE, "cpu")
    settings.set(PRECISION, "bf16")


def test_settings_survive_a_restart(settings_file):
    choose_folder(UserSettings(qsettings(settings_file)))
    restarted = UserSettings(qsettings(settings_file))
    assert RunOptions.fromSettings(restarted) == RunOptions(model="/data/models/voxtell_v1.1", device="cpu",
                                                            precision="bf16")
    assert "VoxTell" in qsettings(settings_file).childGroups()


def test_fresh_settings_are_the_defaults_and_bad_values_are_not_used(settings_file):
    settings = UserSettings(qsettings(settings_file))
    assert RunOptions.fromSettings(settings) == RunOptions(model="official", device="auto", precision="auto")
    qsettings(settings_file).setValue("VoxTell/modelSource", "a typo")
    assert UserSettings(qsettings(settings_file)).get(MODEL_SOURCE) == "official"


def test_a_chosen_folder_that_is_empty_is_an_error_not_the_official_download(settings_file):
    settings = UserSettings(qsettings(settings_file))
    settings.set(MODEL_SOURCE, "folder")
    with pytest.raises(InputError, match="No model folder is set"):
        RunOptions.fromSettings(settings)


def test_the_module_parameter_node_is_filled_from_the_settings_after_close_scene(slicer_scene, settings_file,
                                                                                  monkeypatch):
    from module_harness import load_module

    module = load_module(monkeypatch, qsettings(settings_file))
    choose_folder(UserSettings(qsettings(settings_file)))
    logic = module.VoxTellSlicerLogic()
    node = logic.getParameterNode()
    assert (node.modelSource, node.modelFolder, node.device, node.precision) == (
        "folder", "/data/models/voxtell_v1.1", "cpu", "bf16")

    slicer_scene.scene.Clear(0)  # File > Close Scene: the parameter node is reset
    assert node.parameterNode.GetParameter("modelSource") == ""
    assert logic.runOptions().model == "/data/models/voxtell_v1.1"  # what the module and the effect run with
    again = logic.getParameterNode()
    assert (again.modelSource, again.modelFolder, again.device) == ("folder", "/data/models/voxtell_v1.1", "cpu")


def test_a_choice_in_the_module_is_written_to_the_settings(slicer_scene, settings_file, monkeypatch):
    from module_harness import load_module

    module = load_module(monkeypatch, qsettings(settings_file))
    widget = module.VoxTellSlicerWidget()
    widget.logic = module.VoxTellSlicerLogic()
    widget._parameterNode = widget.logic.getParameterNode()
    widget.rememberSetting(MODEL_SOURCE, "demo")
    widget.rememberSetting(DEVICE, "cuda:1")
    assert widget._parameterNode.modelSource == "demo"
    restarted = UserSettings(qsettings(settings_file))
    assert (restarted.get(MODEL_SOURCE), restarted.get(DEVICE)) == ("demo", "cuda:1")


def test_the_effect_reads_the_settings_not_the_module_parameter_node():
    """The effect builds its options from the user settings (the module may never have been
    opened in this scene, or the scene was closed)."""
    import ast

    from slicer_fixtures import SLICER_MODULE_DIR

    source = (SLICER_MODULE_DIR / "SegmentEditorVoxTellLib" / "SegmentEditorEffect.py").read_text()
    calls = {ast.unparse(node.func) for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)}
    assert "RunOptions.fromSettings" in calls and "UserSettings" in calls
    assert not any("ParameterNode" in call for call in calls if call.startswith("RunOptions"))
