"""First-use dependency setup: version checks (not only presence), pins that exist for the
Pythons Slicer ships, pip and the PyTorch installer as child processes that Cancel stops."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import ModuleType, SimpleNamespace

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from VoxTellCore.errors import Cancelled
from VoxTellSlicerLib import dependencies
from VoxTellSlicerLib.dependencies import DependencyError, setupDependencies, torchProblem

# What pip resolves for all REQUIREMENTS together (plus NO_DEPS_REQUIREMENTS alone), binary wheels
# only: `pip install --dry-run --ignore-installed --only-binary :all: --python-version X --target T
# --report R <requirements>`, run on PyPI while these pins were written. Python 3.9 is Slicer 5.6/5.8,
# 3.12 is Slicer 5.10+. Each pin must admit the version pip found for that Python.
RESOLVED = {
    "3.9": {
        "numpy": "2.0.2", "scipy": "1.13.1", "SimpleITK": "2.5.7", "nibabel": "5.3.3", "transformers": "4.57.6",
        "huggingface_hub": "0.36.2", "tokenizers": "0.22.2", "safetensors": "0.7.0", "tqdm": "4.70.1",
        "psutil": "7.2.2", "dynamic-network-architectures": "0.4.4", "slicerio": "1.4.0", "highdicom": "0.22.0",
    },
    "3.12": {
        "numpy": "2.5.5", "scipy": "1.18.1", "SimpleITK": "2.5.7", "nibabel": "5.4.2", "transformers": "5.24.0",
        "huggingface_hub": "2.4.0", "tokenizers": "0.23.3", "safetensors": "0.8.0", "tqdm": "4.70.1",
        "psutil": "7.2.2", "dynamic-network-architectures": "0.4.4", "slicerio": "1.4.0", "highdicom": "0.28.2",
    },
}


def environment(python: str) -> dict:
    return {"python_version": python, "python_full_version": f"{python}.0"}


class Versions(dict):
    """Installed versions by canonical name; None = not installed; "after:NAME" = what pip installs."""

    def __setitem__(self, name, version):
        prefix = "after:" if name.startswith("after:") else ""
        super().__setitem__(prefix + canonicalize_name(name[len(prefix):]), version)


@pytest.fixture
def installed(monkeypatch):
    """Installed versions as the test says (the rest as really installed); pip is a recorder
    that 'installs' by setting the "after:" versions."""
    versions = Versions()
    real = dependencies.installedVersion
    monkeypatch.setattr(
        dependencies, "installedVersion", lambda name: versions.get(canonicalize_name(name), real(name))
    )
    monkeypatch.setattr(dependencies, "installedRequires", lambda name: [])
    for requirement in dependencies.applicableRequirements(dependencies.REQUIREMENTS + dependencies.NO_DEPS_REQUIREMENTS):
        versions[requirement.name] = RESOLVED["3.12"][requirement.name]
    versions["torch"] = "2.8.0"
    commands = []

    def run(arguments, log, cancel):
        commands.append(arguments)
        for spec in arguments:
            try:
                name = canonicalize_name(Requirement(spec).name)
            except InvalidRequirement:
                continue
            if f"after:{name}" in versions:
                versions[name] = versions[f"after:{name}"]

    return SimpleNamespace(versions=versions, commands=commands, run=run)


@pytest.mark.parametrize("python", ["3.9", "3.12"])
def test_pins_hold_for_the_pythons_slicer_ships(python):
    requirements = dependencies.applicableRequirements(
        dependencies.REQUIREMENTS + dependencies.NO_DEPS_REQUIREMENTS, environment(python)
    )
    names = [r.name for r in requirements]
    assert sorted(names) == sorted(RESOLVED[python]), "exactly one requirement per package for this Python"
    for requirement in requirements:
        assert requirement.specifier.contains(RESOLVED[python][requirement.name]), (requirement, python)


def test_transformers_4_on_python_3_9_gets_the_huggingface_hub_it_accepts():
    by_name = {r.name: r for r in dependencies.applicableRequirements(dependencies.REQUIREMENTS, environment("3.9"))}
    assert not by_name["transformers"].specifier.contains("5.0.0"), "transformers 5 needs Python 3.10"
    assert not by_name["huggingface_hub"].specifier.contains("1.0.0"), "transformers 4.x refuses huggingface_hub 1"


@pytest.mark.parametrize("version", ["2.9.0", "2.9.1+cu128"])
def test_torch_2_9_is_refused_with_the_version_to_install(version):
    problem = torchProblem(version)
    assert problem and version in problem and "conv3d" in problem
    assert f"torch {dependencies.RECOMMENDED_TORCH}" in problem
    assert "cu128" in problem and "whl/cpu" in problem, "says how to install the CUDA and the CPU build"


@pytest.mark.parametrize("version", ["2.8.0", "2.13.0+cpu", "2.10.1", "2.1.2"])
def test_supported_torch_versions_pass(version):
    assert torchProblem(version) is None


def test_old_torch_is_refused():
    assert "too old" in torchProblem("2.0.1")


def test_everything_in_range_installs_nothing(installed):
    assert setupDependencies(log=lambda m: None, run=installed.run) == []
    assert installed.commands == []


def test_an_out_of_range_version_is_reported_and_upgraded(installed, monkeypatch):
    installed.versions["transformers"] = "4.40.0"
    installed.versions["after:transformers"] = "5.24.0"
    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    messages = []
    assert setupDependencies(log=messages.append, run=installed.run) == ["transformers<6,>=4.56"]
    assert "transformers 4.40.0 is installed, but VoxTell needs transformers<6,>=4.56" in messages[0]
    (command,) = installed.commands
    assert command[:3] == ["-m", "pip", "install"] and command[-1] == "transformers<6,>=4.56"
    assert "--timeout" in command and "--no-deps" not in command


def test_upgrading_a_package_already_imported_asks_for_a_restart(installed, monkeypatch):
    installed.versions["transformers"] = "4.40.0"
    installed.versions["after:transformers"] = "5.24.0"
    monkeypatch.setitem(sys.modules, "transformers", ModuleType("transformers"))
    with pytest.raises(DependencyError) as error:
        setupDependencies(log=lambda m: None, run=installed.run)
    assert error.value.step == "restart Slicer" and "transformers" in str(error.value)


def test_what_installed_packages_declare_about_each_other_is_checked(installed, monkeypatch):
    installed.versions["huggingface_hub"] = "0.36.2"  # within VoxTell's own range on Python 3.12
    installed.versions["after:huggingface-hub"] = "2.4.0"
    declared = {"transformers": ["huggingface-hub<3.0,>=1.31.0", "torch>=2.4; extra == 'torch'"]}
    monkeypatch.setattr(dependencies, "installedRequires", lambda name: declared.get(name, []))
    monkeypatch.delitem(sys.modules, "huggingface_hub", raising=False)  # not loaded yet: no restart needed
    messages = []
    setupDependencies(log=messages.append, run=installed.run)
    assert "huggingface-hub 0.36.2 is installed, but transformers 5.24.0 needs" in messages[0]
    assert installed.commands[0][-1] == "huggingface-hub<3.0,>=1.31.0", "extras (torch) are not installed"


def test_a_version_still_wrong_after_pip_is_an_error(installed):
    installed.versions["nibabel"] = "4.0.0"
    installed.versions["after:nibabel"] = "4.0.0"  # pip 'succeeds' but leaves it
    with pytest.raises(DependencyError) as error:
        setupDependencies(log=lambda m: None, run=installed.run)
    assert error.value.step == "check versions" and "nibabel 4.0.0" in str(error.value)


def test_dynamic_network_architectures_is_installed_without_dependencies(installed):
    installed.versions["dynamic-network-architectures"] = None
    installed.versions["psutil"] = None
    installed.versions["after:dynamic-network-architectures"] = "0.4.4"
    installed.versions["after:psutil"] = "7.2.2"
    setupDependencies(log=lambda m: None, run=installed.run)
    with_deps, without_deps = installed.commands
    assert with_deps[-1] == "psutil" and "--no-deps" not in with_deps
    assert without_deps[-2:] == ["--no-deps", "dynamic-network-architectures<0.5,>=0.4.1"]


def test_slicers_own_simpleitk_is_never_replaced(installed):
    installed.versions["simpleitk"] = "2.0.0"
    with pytest.raises(DependencyError) as error:
        setupDependencies(log=lambda m: None, run=installed.run)
    assert error.value.step == "SimpleITK" and "comes with Slicer" in str(error.value)
    assert installed.commands == []


def test_pip_failure_names_the_failing_requirement(installed):
    installed.versions["nibabel"] = "4.0.0"

    def failing_pip(arguments, log, cancel):
        raise subprocess.CalledProcessError(1, arguments, output="ERROR: network unreachable")

    with pytest.raises(DependencyError) as error:
        setupDependencies(log=lambda m: None, run=failing_pip)
    assert error.value.step == "pip install nibabel>=5"
    assert "network unreachable" in str(error.value) and 'slicer.util.pip_install("nibabel>=5")' in str(error.value)


def test_missing_torch_without_the_extension_fails_at_the_pytorch_step(installed, monkeypatch):
    installed.versions["torch"] = None
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)  # extension not installed
    with pytest.raises(DependencyError) as error:
        setupDependencies(log=lambda m: None, run=installed.run)
    assert error.value.step == "PyTorch" and "Extensions Manager" in str(error.value)
    assert installed.commands == []


def test_torch_is_installed_by_the_pytorch_extensions_light_the_torch_in_a_child(installed, monkeypatch):
    installed.versions["torch"] = None
    installed.versions["after:torch"] = "2.8.0"
    arguments = ["install", "torch>=2.1.2,!=2.9.*", "torchvision"]
    logic = SimpleNamespace(_getPipInstallArguments=lambda backend, torch, vision: arguments if torch == ">=2.1.2,!=2.9.*" else [])
    monkeypatch.setitem(sys.modules, "PyTorchUtils", SimpleNamespace(PyTorchUtilsLogic=logic))
    monkeypatch.setitem(sys.modules, "light_the_torch", None)  # not installed yet
    setupDependencies(log=lambda m: None, run=installed.run)
    pip, ltt = installed.commands
    assert pip[:3] == ["-m", "pip", "install"] and pip[-1] == "light-the-torch>=0.5"
    assert ltt == ["-m", "light_the_torch", *arguments]


def test_batch_mode_does_not_install_torch(installed, monkeypatch):
    installed.versions["torch"] = None
    monkeypatch.setitem(sys.modules, "PyTorchUtils", SimpleNamespace(PyTorchUtilsLogic=None))
    with pytest.raises(DependencyError, match="PyTorch is not installed"):
        setupDependencies(log=lambda m: None, installTorch=False, run=installed.run)
    assert installed.commands == []


def test_run_python_streams_output_and_cancel_stops_the_child():
    lines, cancel = [], threading.Event()

    def log(line):
        lines.append(line)
        cancel.set()

    start = time.monotonic()
    with pytest.raises(Cancelled, match="press Run again"):
        dependencies.runPython(["-c", "import time; print('downloading', flush=True); time.sleep(30)"], log, cancel)
    assert lines == ["downloading"] and time.monotonic() - start < 10


def test_run_python_failure_carries_the_last_output_lines():
    with pytest.raises(subprocess.CalledProcessError) as error:
        dependencies.runPython(["-c", "import sys; print('ERROR: no matching distribution'); sys.exit(3)"], lambda m: None)
    assert error.value.returncode == 3 and "no matching distribution" in error.value.output


def test_outside_slicer_the_child_python_is_this_one(monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert dependencies.pythonExecutable() == sys.executable


# --- the install question ------------------------------------------------------------------------

def test_nothing_missing_asks_nothing(installed):
    assert dependencies.installPlan() == []


def test_the_question_lists_each_missing_package_with_its_size(installed, monkeypatch):
    installed.versions["torch"] = None
    monkeypatch.setattr(dependencies.importlib.util, "find_spec",
                        lambda name: object() if name == "PyTorchUtils" else None)
    installed.versions["nibabel"] = None
    installed.versions["transformers"] = "4.40.0"
    plan = {item.name: item for item in dependencies.installPlan()}
    assert set(plan) == {"PyTorch (torch)", "nibabel", "transformers"}
    question = dependencies.installQuestion(list(plan.values()))
    assert "nibabel: nibabel is not installed (about 3 MB)" in question
    assert "transformers 4.40.0 is installed, but VoxTell needs transformers<6,>=4.56 (about 12 MB)" in question
    assert "PyTorch (torch): not installed (about 0.2 GB for the CPU build, up to 3 GB" in question
    assert "No leaves Slicer's Python unchanged" in question


def test_setup_that_would_stop_before_installing_asks_nothing(installed, monkeypatch):
    installed.versions["torch"] = "2.9.0"  # refused with advice: nothing is installed
    installed.versions["nibabel"] = None
    assert dependencies.installPlan() == []
    installed.versions["torch"] = None
    monkeypatch.setattr(dependencies.importlib.util, "find_spec", lambda name: None)  # no PyTorch extension
    assert dependencies.installPlan() == []


def test_no_to_the_install_question_changes_nothing(installed, monkeypatch):
    from VoxTellSlicerLib import worker

    installed.versions["nibabel"] = None
    installed.versions["after:nibabel"] = "5.3.3"
    monkeypatch.setattr(dependencies, "runPython", installed.run)
    asked = []
    with pytest.raises(Cancelled, match="nothing was installed"):
        worker.setupDependenciesInWorker(None, lambda line: None, lambda question: asked.append(question) or False)
    assert len(asked) == 1 and "nibabel" in asked[0]
    assert installed.commands == [] and installed.versions["nibabel"] is None
    assert not worker.isRunning()


def test_yes_to_the_install_question_installs_what_it_listed(installed, monkeypatch):
    from VoxTellSlicerLib import worker

    installed.versions["nibabel"] = None
    installed.versions["after:nibabel"] = "5.3.3"
    monkeypatch.setattr(dependencies, "runPython", installed.run)
    monkeypatch.setattr(dependencies, "setupDependencies",
                        lambda log, cancel: setupDependencies(log=log, cancel=cancel, run=installed.run))
    assert worker.setupDependenciesInWorker(None, lambda line: None, lambda question: True) == ["nibabel>=5"]
    assert installed.commands[0][-1] == "nibabel>=5"
