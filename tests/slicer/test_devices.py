"""Device choices and what each means, with torch replaced by fakes of the machines users have
(several GPUs, a small GPU, a Mac, no torch, a broken CUDA) and, last, the real torch here."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from VoxTellCore.errors import InputError
from VoxTellSlicerLib import devices

GIB = 2**30


def fake_torch(gpus=(), mps=False, broken_cuda=False):
    def is_available():
        if broken_cuda:
            raise RuntimeError("The NVIDIA driver on your system is too old")
        return bool(gpus)

    cuda = SimpleNamespace(
        is_available=is_available,
        device_count=lambda: len(gpus),
        get_device_properties=lambda i: SimpleNamespace(name=gpus[i][0], total_memory=gpus[i][1]),
    )
    return SimpleNamespace(cuda=cuda, backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)))


@pytest.fixture
def machine(monkeypatch):
    def use(**kwargs):
        monkeypatch.setitem(sys.modules, "torch", fake_torch(**kwargs))

    return use


def test_every_gpu_is_a_choice_with_its_name_and_memory(machine):
    machine(gpus=[("NVIDIA RTX A6000", 48 * GIB), ("NVIDIA T400", 2 * GIB)])
    assert devices.deviceChoices() == [
        ("auto", devices.deviceChoices()[0][1]),
        ("cuda:0", "GPU 0: NVIDIA RTX A6000, 48 GB"),
        ("cuda:1", "GPU 1: NVIDIA T400, 2 GB"),
        ("cpu", devices.deviceChoices()[-1][1]),
    ]
    assert devices.resolveDevice("auto") == ("cuda:0", None)
    assert devices.resolveDevice("cuda:0") == ("cuda:0", None)
    device, warning = devices.resolveDevice("cuda:1")
    assert device == "cuda:1" and "NVIDIA T400" in warning and "2.0 GB" in warning and "8 GB" in warning
    assert devices.resolveDevice("cuda") == ("cuda:0", None)


def test_a_gpu_that_does_not_exist_is_an_error_naming_those_that_do(machine):
    machine(gpus=[("A", 24 * GIB), ("B", 24 * GIB)])
    with pytest.raises(InputError, match=r"cuda:2 is not available.*2 CUDA GPU\(s\) \(cuda:0, cuda:1\)"):
        devices.resolveDevice("cuda:2")
    with pytest.raises(InputError, match="cuda:N"):
        devices.resolveDevice("cuda:x")
    with pytest.raises(InputError, match="Unknown device"):
        devices.resolveDevice("tpu")


def test_small_gpu_chosen_by_auto_is_warned_about(machine):
    machine(gpus=[("GeForce GTX 1060", 6 * GIB)])
    device, warning = devices.resolveDevice("auto")
    assert device == "cuda:0" and "6.0 GB" in warning and "retries on the CPU" in warning


def test_auto_without_gpu_runs_on_the_cpu_and_says_how_slow(machine):
    machine()
    device, warning = devices.resolveDevice("auto")
    assert device == "cpu" and warning.startswith("No CUDA GPU: VoxTell runs on the CPU") and "minute" in warning
    assert devices.resolveDevice("cpu") == ("cpu", None)


def test_apple_mps_is_offered_but_not_chosen_by_auto(machine):
    machine(mps=True)
    assert [value for value, _ in devices.deviceChoices()] == ["auto", "mps", "cpu"]
    device, warning = devices.resolveDevice("auto")
    assert device == "cpu" and "mps" in warning
    assert devices.resolveDevice("mps") == ("mps", None)


def test_mps_on_a_computer_without_it_is_an_error(machine):
    machine()
    with pytest.raises(InputError, match="no Apple GPU"):
        devices.resolveDevice("mps")


@pytest.mark.parametrize("torch_module", [None, "broken-cuda"], ids=["no torch", "broken CUDA"])
def test_without_a_usable_torch_only_auto_and_cpu(monkeypatch, torch_module):
    replacement = None if torch_module is None else fake_torch(gpus=[("X", 8 * GIB)], broken_cuda=True)
    monkeypatch.setitem(sys.modules, "torch", replacement)  # None: import torch raises ImportError
    assert [value for value, _ in devices.deviceChoices()] == ["auto", "cpu"]
    assert devices.resolveDevice("auto")[0] == "cpu"
    with pytest.raises(InputError):
        devices.resolveDevice("cuda:0")


def test_real_torch_matches_what_it_reports():
    import torch

    values = [value for value, _ in devices.deviceChoices()]
    assert values[0] == "auto" and values[-1] == "cpu"
    assert values.count("mps") == int(torch.backends.mps.is_available())
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert [v for v in values if v.startswith("cuda:")] == [f"cuda:{i}" for i in range(gpus)]
    assert devices.resolveDevice("auto")[0] == ("cuda:0" if gpus else "cpu")
