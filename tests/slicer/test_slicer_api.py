"""Every Slicer call of the module, the effect and VoxTellSlicerLib exists in Slicer 5.6.2.

The suite runs against slicer-core 5.13, so a call that only newer Slicer has (e.g.
``vtkSegment.SetTerminology``, new in 5.10) passes every other test and fails on 5.6/5.8. This
test reads the code (no import) and collects the Slicer names it uses:

* every attribute reached from the ``slicer`` module (``slicer.vtkSegment``, ``slicer.util.X``,
  ``slicer.app.X``), except its Python namespaces and the module names under ``slicer.modules``;
* every CamelCase attribute (``segment.SetTag``, ``scene.StartCloseEvent``): VTK-style, so
  Slicer's or VTK's (names the project defines itself and chains rooted at non-Slicer modules
  such as ``qt`` or ``np`` are left out);
* every attribute of the Segment Editor's ``scriptedEffect`` and of the logic's ``editor``
  (which is that scripted effect in Slicer).

Each name must be declared by Slicer 5.6.2 (tests/data/slicer_api/v5.6.2.txt, written by
scripts/extract_slicer_api_names.py from Slicer's git tag) or be one of VTK's own methods
below, unless its line says ``# slicer-api: 5.10+`` (it only runs on newer Slicer, behind a
check in VoxTellSlicerLib/slicerCompat.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from slicer_fixtures import ROOT, SLICER_MODULE_DIR

API_LIST = ROOT / "tests" / "data" / "slicer_api" / "v5.6.2.txt"
MARKER = "# slicer-api: 5.10+"
SOURCES = sorted([SLICER_MODULE_DIR / "VoxTellSlicer.py", *(SLICER_MODULE_DIR / "SegmentEditorVoxTellLib").glob("*.py"),
                  *(SLICER_MODULE_DIR / "VoxTellSlicerLib").glob("*.py")])
#: Python-level parts of the slicer module (not C++ classes): their attributes are checked.
SLICER_NAMESPACES = {"util", "app", "modules", "mrmlScene", "i18n", "parameterNodeWrapper", "ScriptedLoadableModule"}
#: Receivers whose every attribute is the Segment Editor's scripted-effect API.
EFFECT_RECEIVERS = {"scriptedEffect", "editor"}
#: Modules whose names are Slicer's (or VTK's); chains rooted at any other import (qt, numpy,
#: VoxTellCore, the standard library...) are not checked.
SLICER_MODULES = re.compile(r"(slicer|vtk|qSlicer|SegmentEditorEffects)")
#: VTK's own methods and constants (VTK 9.2, which Slicer 5.6 ships, has them all).
VTK_NAMES = {
    "AddObserver", "RemoveObserver", "GetMTime", "GetPointData", "GetScalars", "GetElement", "SetElement",
    "SetDimensions", "AllocateScalars", "GetNumberOfScalarComponents", "TransformPoint", "ModifiedEvent",
    "VTK_UNSIGNED_CHAR", "GetExtent",
    "connect",  # PythonQt's signal connection on every QObject (slicer.app.connect)
}

CAMEL_CASE = re.compile(r"[A-Z][A-Za-z0-9_]*$")


def chain(node: ast.AST) -> list[str]:
    """``a.b.c`` -> ["a", "b", "c"]; a call or subscript in the chain ends it (["<expr>", ...])."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "<expr>")
    return parts[::-1]


def own_names(trees) -> set[str]:
    """Classes, functions, methods and assigned names the project defines (not Slicer's)."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for item in ast.walk(target):
                        names.update(part for part in [getattr(item, "id", None), getattr(item, "attr", None)] if part)
    return names


def foreign_imports(tree: ast.AST) -> set[str]:
    """Names bound by imports of modules that are not Slicer's."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                module = alias.name if isinstance(node, ast.Import) else node.module or ""
                if not SLICER_MODULES.match(module):
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


def slicer_names(source: str, own: set[str]) -> list[tuple[int, str, bool]]:
    """(line, name, marked) for each Slicer name ``source`` uses."""
    lines = source.splitlines()
    tree = ast.parse(source)
    foreign = foreign_imports(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        parts = chain(node)
        name, receiver = parts[-1], parts[-2]
        if parts[0] == "slicer" and len(parts) > 1:
            inModules = len(parts) == 3 and parts[1] == "modules"
            slicerName = name not in SLICER_NAMESPACES and not inModules
        else:
            slicerName = False
        camel = bool(CAMEL_CASE.match(name)) and parts[0] not in foreign and name not in own
        effect = receiver in EFFECT_RECEIVERS and name != "self"
        if slicerName or camel or effect:
            line = node.end_lineno or node.lineno
            found.append((line, name, MARKER in lines[line - 1]))
    return found


def api_names() -> set[str]:
    return {line for line in API_LIST.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")}


def unknown_calls(sources: dict[str, str]) -> list[str]:
    """'file:line name' for each Slicer name no 5.6.2 header declares, on an unmarked line."""
    known = api_names() | VTK_NAMES
    own = own_names(ast.parse(text) for text in sources.values())
    return [f"{path}:{line} {name}" for path, text in sources.items()
            for line, name, marked in slicer_names(text, own) if name not in known and not marked]


def read_sources() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in SOURCES}


def test_every_slicer_call_exists_in_slicer_5_6():
    problems = unknown_calls(read_sources())
    assert not problems, "Slicer 5.6.2 declares none of these (guard them in slicerCompat.py):\n" + "\n".join(problems)


def test_the_check_sees_the_calls_that_matter():
    """The collector finds the calls the extension relies on (so an empty result means something)."""
    own = own_names(ast.parse(text) for text in read_sources().values())
    seen = {name for text in read_sources().values() for _, name, _ in slicer_names(text, own)}
    assert {"vtkSegment", "SetTag", "GetTerminologyEntryTagName", "arrayFromVolume", "SetBinaryLabelmapToSegment",
            "modifySelectedSegmentByLabelmap", "ModificationModeSet", "FindTypeInTerminologyBy3dSlicerLabel",
            "StartCloseEvent", "userSettings"} <= seen


def test_the_check_catches_calls_only_newer_slicer_has():
    source = (
        "import slicer\n"
        "segment = slicer.vtkSegment()\n"
        "segment.SetTerminology('x')\n"
        "logic = slicer.vtkSlicerSegmentEditorLogic()\n"
        "logic.ModifySegmentByLabelmap(a, b, c, d, True, False)\n"
        "segment.SetTerminology('x')  " + MARKER + "\n"
    )
    assert unknown_calls({"new.py": source}) == [
        "new.py:3 SetTerminology", "new.py:4 vtkSlicerSegmentEditorLogic", "new.py:5 ModifySegmentByLabelmap"]


def test_marked_names_are_only_in_the_compatibility_module():
    """Version-dependent calls live in one place, behind its checks."""
    marked = {path for path, text in read_sources().items() if MARKER in text}
    assert marked == {"VoxTellSlicer/VoxTellSlicerLib/slicerCompat.py"}


def test_the_api_list_is_slicer_5_6_2s():
    names = api_names()
    assert len(names) > 10000
    # In 5.6.2 (read from its headers and slicer/util.py) ...
    assert {"GetTerminologyEntryTagName", "SerializeTerminologyEntry", "qSlicerSegmentEditorAbstractEffect",
            "confirmCurrentSegmentVisible", "arrayFromSegmentBinaryLabelmap", "settingsKey"} <= names
    # ... and not there yet (added in 5.10).
    assert not {"SetTerminology", "vtkSlicerSegmentEditorLogic", "ResetModifierLabelmapToDefault"} & names
