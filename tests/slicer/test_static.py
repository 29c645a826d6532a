"""Checks on the extension's files that need no Slicer application: .ui names, imports, CMake lists."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ElementTree

import pytest
from slicer_fixtures import ROOT, SLICER_MODULE_DIR

UI_FILE = SLICER_MODULE_DIR / "Resources" / "UI" / "VoxTellSlicer.ui"
MODULE_FILE = SLICER_MODULE_DIR / "VoxTellSlicer.py"
LIB_DIR = SLICER_MODULE_DIR / "VoxTellSlicerLib"


def ui_widget_names() -> set[str]:
    tree = ElementTree.parse(UI_FILE)
    return {widget.get("name") for widget in tree.iter("widget")}


def ui_attribute_names(source_path) -> set[str]:
    """Every ``self.ui.<name>`` the code uses."""
    names = set()
    for node in ast.walk(ast.parse(source_path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            names.add(node.attr)
    return names


def test_every_widget_the_code_uses_exists_in_the_ui_file():
    used = ui_attribute_names(MODULE_FILE)
    assert {"runButton", "cancelButton", "promptsTextEdit", "progressBar"} <= used
    missing = used - ui_widget_names()
    assert not missing, f"VoxTellSlicer.py uses widgets that the .ui lacks: {sorted(missing)}"


def test_ui_parameter_bindings_name_parameter_node_fields():
    tree = ElementTree.parse(UI_FILE)
    bound = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[widget.get("name")] = prop.find("string").text
    module = ast.parse(MODULE_FILE.read_text())
    wrapper = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "VoxTellSlicerParameterNode")
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    assert set(bound) == {"inputVolumeSelector", "outputSegmentationSelector", "roiSelector"}
    assert set(bound.values()) <= fields


def test_ui_connections_name_existing_widgets():
    tree = ElementTree.parse(UI_FILE)
    names = ui_widget_names()
    for connection in tree.iter("connection"):
        assert connection.find("sender").text in names
        assert connection.find("receiver").text in names


@pytest.mark.parametrize("path", sorted(LIB_DIR.glob("*.py")), ids=lambda p: p.name)
def test_voxtellslicerlib_never_imports_qt(path):
    forbidden = {"qt", "ctk", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "slicer.i18n"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            assert module.split(".")[0] not in {"qt", "ctk", "PythonQt"} and module not in forbidden, (
                f"{path.name} imports {module}: VoxTellSlicerLib must run without Qt")


def test_logic_imports_headless():
    from VoxTellSlicerLib import VoxTellLogic

    assert callable(VoxTellLogic().segment)


def cmake_listed(cmake_file, variable) -> list[str]:
    text = cmake_file.read_text()
    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S).group(1)
    return [item.replace("${MODULE_NAME}", "VoxTellSlicer") for item in block.split()]


def test_module_cmake_lists_every_script_and_resource():
    cmake_file = SLICER_MODULE_DIR / "CMakeLists.txt"
    scripts = cmake_listed(cmake_file, "MODULE_PYTHON_SCRIPTS")
    on_disk = sorted(str(p.relative_to(SLICER_MODULE_DIR)) for p in SLICER_MODULE_DIR.rglob("*.py"))
    assert sorted(scripts) == on_disk
    for resource in cmake_listed(cmake_file, "MODULE_PYTHON_RESOURCES"):
        assert (SLICER_MODULE_DIR / resource).is_file(), resource


def test_extension_cmake_metadata():
    text = (ROOT / "CMakeLists.txt").read_text()
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert re.search(rf"set\({key} \"[^\"]+\"", text), key
    assert 'set(EXTENSION_CATEGORY "Segmentation")' in text
    assert "add_subdirectory(VoxTellSlicer)" in text
    assert (ROOT / "Resources" / "Icons" / "VoxTell.png").is_file()


def test_help_text_names_the_demo_model_caveat():
    assert "demo model (synthetic training data, not for clinical images)" in MODULE_FILE.read_text()


def test_synonyms_table_maps_to_slicer_labels(terminologies_dir):
    import json

    table = json.loads((ROOT / "Resources" / "vocabulary" / "slicer_synonyms.json").read_text())
    general = (terminologies_dir / "SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json").read_text()
    labels = set(re.findall(r'"3dSlicerLabel"\s*:\s*"([^"]*)"', general))
    wrong = {k: v for k, v in table.items() if not k.startswith("_") and v not in labels}
    assert not wrong, f"synonyms pointing to labels Slicer's list lacks: {wrong}"
    assert all(k == k.lower() for k in table if not k.startswith("_"))
