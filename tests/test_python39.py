"""Everything Slicer imports runs on Python 3.9 (Slicer 5.6 and 5.8 ship 3.9.10).

No 3.9 interpreter installs here, so this is checked statically: ``ast.parse`` with
``feature_version=(3, 9)`` finds new syntax (``match``, parenthesised context managers), and
pyright run for Python 3.9 and for 3.12 finds what only fails at 3.9's run time: ``X | Y``
outside annotations, standard-library functions, parameters and modules added after 3.9.
A diagnostic that pyright gives for 3.9 but not for 3.12 is such a problem, except for the
type-inference rules below (and attribute errors on values rather than modules), whose
differences come from numpy's, torch's and typeshed's version-dependent stubs, not from
anything that fails at run time.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLICER_IMPORTED = ("VoxTellCore", "VoxTellSlicer")
PYRIGHT = ROOT / ".venv" / "pyright" / "node_modules" / ".bin" / "pyright"
STUB_NOISE_RULES = {"reportArgumentType", "reportReturnType", "reportAssignmentType", "reportOperatorIssue",
                    "reportIndexIssue", "reportOptionalMemberAccess"}


def is_stub_noise(rule: str, message: str) -> bool:
    """Inference differences on numpy/torch values; a missing *module* attribute is real."""
    if rule == "reportAttributeAccessIssue":
        return "of module" not in message
    return rule in STUB_NOISE_RULES


def python_files() -> list[Path]:
    return sorted(path for package in SLICER_IMPORTED for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", python_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_syntax_is_python39(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


def pyright_diagnostics(paths: list[Path], version: str, config_dir: Path) -> set[tuple[str, int, str, str]]:
    assert PYRIGHT.exists(), "pyright is missing: run `bash scripts/setup.sh --test` (it installs it from npm)."
    # Libraries are not analysed for types (stubs and typeshed still are): inferring matplotlib's
    # and transformers' sources took pyright many minutes, and 3.9 problems are in our code.
    config = config_dir / "pyrightconfig.json"
    config.write_text(json.dumps({"useLibraryCodeForTypes": False}), encoding="utf-8")
    result = subprocess.run(
        [str(PYRIGHT), "--project", str(config), "--pythonversion", version, "--pythonpath", sys.executable,
         "--outputjson", *map(str, paths)],
        capture_output=True, encoding="utf-8", cwd=ROOT, timeout=600,
    )
    report = json.loads(result.stdout)
    return {
        (item["file"], item["range"]["start"]["line"] + 1, item.get("rule", ""), item["message"])
        for item in report["generalDiagnostics"]
    }


def only_on_python39(paths: list[Path], config_dir: Path) -> list[str]:
    newer = pyright_diagnostics(paths, "3.12", config_dir)
    return sorted(
        f"{Path(file).relative_to(ROOT) if Path(file).is_relative_to(ROOT) else file}:{line}: {message}"
        for file, line, rule, message in pyright_diagnostics(paths, "3.9", config_dir) - newer
        if not is_stub_noise(rule, message)
    )


def test_pyright_finds_no_python310_feature_in_slicer_code(tmp_path: Path) -> None:
    problems = only_on_python39([ROOT / package for package in SLICER_IMPORTED], tmp_path)
    assert not problems, "Fails on Python 3.9 (Slicer 5.6/5.8):\n" + "\n".join(problems)


def test_the_check_sees_runtime_only_failures(tmp_path: Path) -> None:
    """The pyright comparison flags each kind of 3.10+ use that ``ast.parse`` cannot see."""
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        import itertools
        import threading
        from dataclasses import dataclass
        from typing import Callable

        Check = threading.Event | Callable[[], bool] | None
        pairs = list(itertools.pairwise([1, 2, 3]))
        both = list(zip([1], [2], strict=True))

        @dataclass(slots=True)
        class Point:
            x: int
        """), encoding="utf-8")
    problems = "\n".join(only_on_python39([sample], tmp_path))
    assert "Alternative syntax for unions" in problems
    assert "pairwise" in problems
    assert sum("No overloads" in line for line in problems.splitlines()) == 2  # zip(strict=), dataclass(slots=)
