"""First-use dependency setup, with pip and the PyTorch installer replaced by recorders."""

from __future__ import annotations

import pytest

from VoxTellSlicerLib import dependencies
from VoxTellSlicerLib.dependencies import DependencyError, setupDependencies, torchProblem


@pytest.mark.parametrize("version", ["2.9.0", "2.9.1+cu128"])
def test_torch_2_9_is_refused_with_the_version_to_install(version):
    problem = torchProblem(version)
    assert problem and version in problem and "conv3d" in problem
    assert f"torch {dependencies.RECOMMENDED_TORCH}" in problem
    assert "cu128" in problem and "whl/cpu" in problem, "says how to install the CUDA and the CPU build"


@pytest.mark.parametrize("version", ["2.8.0", "2.13.0+cpu", "2.10.1"])
def test_supported_torch_versions_pass(version):
    assert torchProblem(version) is None


def test_missing_torch_without_extension_fails_at_the_pytorch_step(monkeypatch):
    monkeypatch.setattr(dependencies, "installedVersion", lambda name: None)
    with pytest.raises(DependencyError) as error:
        setupDependencies(pipInstall=lambda r: None, log=lambda m: None, installTorch=lambda log: False)
    assert error.value.step == "PyTorch"
    assert "Extensions Manager" in str(error.value)


def test_installs_only_missing_packages_and_dynamic_network_architectures_without_deps(monkeypatch):
    missing = [("tqdm", "tqdm"), ("dynamic_network_architectures", "dynamic-network-architectures==0.4.4")]
    monkeypatch.setattr(dependencies, "missingRequirements", lambda: missing)
    calls = []
    installed = setupDependencies(pipInstall=calls.append, log=lambda m: None)
    assert calls == ["tqdm", "dynamic-network-architectures==0.4.4 --no-deps"]
    assert installed == ["tqdm", "dynamic-network-architectures==0.4.4"]


def test_pip_failure_names_the_failing_requirement(monkeypatch):
    monkeypatch.setattr(dependencies, "missingRequirements", lambda: [("nibabel", "nibabel>=5")])

    def failing_pip(requirement):
        raise RuntimeError("network unreachable")

    with pytest.raises(DependencyError) as error:
        setupDependencies(pipInstall=failing_pip, log=lambda m: None)
    assert error.value.step == "pip install nibabel>=5"
    assert "network unreachable" in str(error.value)


def test_everything_present_installs_nothing():
    assert setupDependencies(pipInstall=pytest.fail, log=lambda m: None) == []
