"""Packages only import downward: VoxTellWeb -> VoxTellSlicerLib -> VoxTellCore, Training -> VoxTellCore, never the reverse.

The extension ships VoxTellCore without Training, so an import of Training from the core
(as the demo command once had) breaks the installed extension; Slicer's packages do not
exist outside Slicer, so the core must not import them either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "VoxTellCore": {"Training", "VoxTellSlicer", "VoxTellSlicerLib", "SegmentEditorVoxTellLib", "VoxTellWeb", "slicer",
                    "qt", "ctk", "vtk", "trame", "trame_slicer"},
    "Training": {"VoxTellSlicer", "VoxTellSlicerLib", "SegmentEditorVoxTellLib", "VoxTellWeb", "slicer", "qt"},
    # The web app sits on the module's Qt-free logic; the module never needs the web app.
    "VoxTellSlicer": {"VoxTellWeb", "trame", "trame_slicer"},
    "VoxTellWeb": {"Training", "SegmentEditorVoxTellLib", "qt", "ctk"},
}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, at any depth (function-level too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package: str) -> None:
    upward = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert not {file: names for file, names in upward.items() if names}


def test_the_check_sees_a_function_level_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def run():\n    from Training.phantoms import generate_phantom\n", encoding="utf-8")
    assert imported_packages(sample) == {"Training"}
