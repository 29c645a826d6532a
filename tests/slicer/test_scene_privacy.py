"""A pasted report is patient text: it stays in the module's text box and never reaches the
parameter node, so a saved scene (.mrml, real slicer-core) holds none of it; Close Scene empties it."""

from __future__ import annotations

import os

import pytest

REPORT = ("Patient Jane Q. Example, MRN 0042-1177. FINDINGS: 2.1 cm hypodense lesion in segment VII of the liver. "
          "IMPRESSION: liver lesion, recommend MRI.")
SECRET_WORDS = ["Jane Q. Example", "0042-1177", "hypodense lesion in segment VII"]


@pytest.fixture
def widget(slicer_scene, tmp_path, monkeypatch):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from module_harness import PythonQtTextEdit, load_module
    from PyQt5.QtCore import QSettings
    from PyQt5.QtWidgets import QApplication, QPlainTextEdit

    app = QApplication.instance() or QApplication([])
    module = load_module(monkeypatch, QSettings(str(tmp_path / "user.ini"), QSettings.IniFormat))
    widget = module.VoxTellSlicerWidget()
    widget.logic = module.VoxTellSlicerLogic()
    widget._parameterNode = widget.logic.getParameterNode()
    widget._parameterNode.prompts = "liver"
    widget.updateRunButton = lambda: None  # the buttons are not what this test is about
    textEdit = QPlainTextEdit()
    widget.ui = type("Ui", (), {"reportTextEdit": PythonQtTextEdit(textEdit)})()
    yield widget, textEdit
    del app


def saved_scene(scene, folder) -> str:
    path = folder / "case.mrml"
    scene.SetRootDirectory(str(folder))
    scene.SetURL(str(path))
    assert scene.Commit()
    return path.read_text(encoding="utf-8")


def test_a_saved_scene_holds_no_report_text(slicer_scene, widget, tmp_path):
    widget, textEdit = widget
    textEdit.setPlainText(REPORT)  # pasting it
    widget.onReportEdited()

    text = saved_scene(slicer_scene.scene, tmp_path)
    assert "VoxTellSlicer" in text and "liver" in text  # the module's node is in the file
    for words in SECRET_WORDS:
        assert words not in text
    assert textEdit.toPlainText() == REPORT  # the user keeps it in the box


def test_the_parameter_node_declares_no_report_field():
    import ast

    from slicer_fixtures import SLICER_MODULE_DIR

    tree = ast.parse((SLICER_MODULE_DIR / "VoxTellSlicer.py").read_text())
    wrapper = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "VoxTellSlicerParameterNode")
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    assert fields == {"inputVolume", "outputSegmentation", "roi", "prompts", "device", "precision", "modelSource",
                      "modelFolder"}
