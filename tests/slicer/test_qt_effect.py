"""The Segment Editor effect's own file: it parses as Python 3.9, imports, and its prompt box
keeps what the user types when every keystroke comes back from MRML, checked with a real Qt
line edit (PyQt5, offscreen) driven through the effect's own updateGUIFromMRML/updateMRMLFromGUI.

Slicer's PythonQt exposes Qt properties as attributes (``lineEdit.text``); ``PythonQtLineEdit``
gives a PyQt5 QLineEdit that face, nothing more. The fake scripted effect calls
updateGUIFromMRML from setParameter, as Slicer's segment editor widget does when the
parameter changes the segment editor node.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types

import pytest
from slicer_fixtures import SLICER_MODULE_DIR

EFFECT_FILE = SLICER_MODULE_DIR / "SegmentEditorVoxTellLib" / "SegmentEditorEffect.py"


def test_effect_file_parses_as_python39():
    tree = ast.parse(EFFECT_FILE.read_text(encoding="utf-8"), feature_version=(3, 9))
    methods = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert {"setupOptionsFrame", "updateGUIFromMRML", "updateMRMLFromGUI", "onApply"} <= methods
    source = EFFECT_FILE.read_text()
    assert "getModuleWidget" not in source, "the effect gets nothing from the module's widget"
    assert "fillSelectedSegment(self.scriptedEffect" in source, "Apply goes through the tested logic function"


@pytest.fixture(scope="module")
def qt_app():
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PyQt5.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


@pytest.fixture
def effect_class(monkeypatch):
    """SegmentEditorEffect imported from its file, with Slicer's Qt-only modules stubbed."""
    base = types.ModuleType("SegmentEditorEffects")

    class AbstractScriptedSegmentEditorEffect:
        def __init__(self, scriptedEffect):
            self.scriptedEffect = scriptedEffect

    base.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
    monkeypatch.setitem(sys.modules, "SegmentEditorEffects", base)
    monkeypatch.setitem(sys.modules, "qt", types.ModuleType("qt"))
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    monkeypatch.setitem(sys.modules, "slicer.i18n", i18n)
    spec = importlib.util.spec_from_file_location("voxtell_effect_under_test", EFFECT_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SegmentEditorEffect


class PythonQtLineEdit:
    def __init__(self, lineEdit):
        self.lineEdit = lineEdit

    @property
    def text(self) -> str:
        return self.lineEdit.text()

    @text.setter
    def text(self, value: str) -> None:
        self.lineEdit.setText(value)

    def blockSignals(self, block: bool) -> bool:
        return self.lineEdit.blockSignals(block)


class ScriptedEffect:
    """The scripted effect's parameter calls; a change updates the GUI as Slicer's editor does."""

    def __init__(self):
        self.parameters = {}
        self.effect = None

    def setParameterDefault(self, name, value):
        self.parameters.setdefault(name, value)

    def parameter(self, name):
        return self.parameters[name]

    def setParameter(self, name, value):
        self.parameters[name] = value
        self.effect.updateGUIFromMRML()


def type_into_prompt(effect_class, start_text: str, cursor: int, typed: str) -> str:
    from PyQt5.QtTest import QTest
    from PyQt5.QtWidgets import QLineEdit

    scripted = ScriptedEffect()
    effect = effect_class(scripted)
    scripted.effect = effect
    line_edit = QLineEdit()
    effect.promptLineEdit = PythonQtLineEdit(line_edit)
    line_edit.textChanged.connect(effect.updateMRMLFromGUI)
    effect.setMRMLDefaults()
    scripted.setParameter("Prompt", start_text)  # e.g. a scene loaded with the effect's parameter
    assert line_edit.text() == start_text
    line_edit.setCursorPosition(cursor)
    QTest.keyClicks(line_edit, typed)
    assert scripted.parameter("Prompt") == line_edit.text()
    return line_edit.text()


def test_typing_in_the_middle_of_the_prompt_keeps_the_cursor(qt_app, effect_class):
    assert type_into_prompt(effect_class, "left kidney", len("left "), "upper ") == "left upper kidney"


def test_the_old_update_that_always_set_the_text_scrambled_it(qt_app, effect_class):
    """The check above can fail: the previous updateGUIFromMRML (set the text on every update)
    gives the scrambled text the issue reports."""

    class OldEffect(effect_class):
        def updateGUIFromMRML(self):
            wasBlocked = self.promptLineEdit.blockSignals(True)
            self.promptLineEdit.text = self.scriptedEffect.parameter("Prompt")
            self.promptLineEdit.blockSignals(wasBlocked)

    assert type_into_prompt(OldEffect, "left kidney", len("left "), "upper ") == "left ukidneypper "


# --- what Slicer's own effects do: a title, a hidden segment asked about, modes by enum name -----

class CheckingEffect:
    """The scripted effect's calls that Apply makes before any work."""

    def __init__(self, segmentVisible: bool):
        self.segmentVisible = segmentVisible
        self.asked = 0

    def confirmCurrentSegmentVisible(self):
        self.asked += 1
        return self.segmentVisible


def test_the_effect_has_a_translated_title(effect_class):
    scripted = types.SimpleNamespace()
    effect_class(scripted)
    assert scripted.name == "VoxTell" and scripted.title == "VoxTell prompt"


def test_apply_on_a_hidden_segment_that_the_user_keeps_hidden_does_nothing(effect_class, monkeypatch, tmp_path):
    import slicer
    from PyQt5.QtCore import QSettings

    from VoxTellSlicerLib import worker

    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(
        userSettings=lambda: QSettings(str(tmp_path / "user.ini"), QSettings.IniFormat)), raising=False)
    started = []
    monkeypatch.setattr(worker, "setupDependenciesInWorker", lambda *args: started.append(args))
    monkeypatch.setattr(worker, "ProgressState", lambda: started.append("progress") or worker.ProgressState())
    scripted = CheckingEffect(segmentVisible=False)
    effect = effect_class(scripted)
    effect.promptLineEdit = types.SimpleNamespace(text="liver")
    effect.roiSelector = types.SimpleNamespace(currentNode=lambda: None)
    effect.onApply()
    assert scripted.asked == 1 and started == [] and effect._cancel is None


def test_the_fill_passes_the_editors_set_mode_by_its_enum(slicer_scene, logic, options):
    """Not the int 0: the scripted effect's ModificationModeSet (the logic's enum in the adapter)."""
    import slicer
    from test_editor_effect import make_editor

    from VoxTellSlicerLib.slicerCompat import SegmentEditorLogicEditor

    editor_logic, _, segmentation, volume, _ = make_editor(slicer_scene)

    class Recording(SegmentEditorLogicEditor):
        modes = []

        def modifySelectedSegmentByLabelmap(self, labelmap, modificationMode):
            self.modes.append(modificationMode)
            super().modifySelectedSegmentByLabelmap(labelmap, modificationMode)

    logic.fillSelectedSegment(Recording(editor_logic), "spleen", options)
    assert Recording.modes == [slicer.vtkSlicerSegmentEditorLogic.ModificationModeSet]
    assert type(Recording.modes[0]) is not int
    assert slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, "target", volume).any()
