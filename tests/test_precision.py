"""The network's arithmetic: fp32 by default on the CPU (the release's masks), bf16 on request."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_fixtures import RELEASE_COMPATIBLE, TINY, make_bank, make_model_folder, random_model
from VoxTellCore.cli import main as cli_main
from VoxTellCore.errors import InputError
from VoxTellCore.inference import precision
from VoxTellCore.inference.predictor import VoxTellPredictor
from VoxTellCore.io import Volume
from VoxTellCore.model.network import GroupwiseInstanceNorm3d

PROMPTS = ["liver", "spleen"]
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    return make_model_folder(root / "model", TINY, seed=5), make_bank(root / "bank.npz", PROMPTS, TINY.text_embedding_dim)


@pytest.fixture
def native_bf16(monkeypatch):
    def set_native(value: bool) -> None:
        precision.native_cpu_bf16.cache_clear()
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": value, "amx_bf16": False})

    yield set_native
    precision.native_cpu_bf16.cache_clear()


def volume() -> Volume:
    rng = np.random.default_rng(1)
    return Volume((rng.standard_normal((40, 70, 60)) * 50 + 100).astype(np.float32), np.diag([-1.0, -1.0, 2.0, 1.0]))


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_the_releases_arithmetic_on_every_machine(native_bf16, native, monkeypatch):
    native_bf16(native)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert precision.resolve_precision("auto", CPU) == torch.float32
    assert precision.resolve_precision("auto", CUDA) == torch.float16
    assert precision.resolve_precision("auto", torch.device("mps")) == torch.float32
    assert precision.resolve_precision("BF16", CUDA) == torch.bfloat16


def test_native_bf16_is_read_from_the_cpu_flags(native_bf16, monkeypatch):
    native_bf16(True)
    assert precision.native_cpu_bf16()
    native_bf16(False)
    assert not precision.native_cpu_bf16()
    precision.native_cpu_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_bf16": True})  # AMX without AVX512-BF16
    assert precision.native_cpu_bf16()


def test_emulated_bf16_warns_that_it_is_slower(native_bf16):
    native_bf16(False)
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert precision.resolve_precision("bf16", CPU) == torch.bfloat16


def test_bf16_on_a_gpu_without_bf16_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)  # e.g. a T4 or V100
    with pytest.raises(InputError, match="this GPU has no bf16.*--precision auto"):
        precision.resolve_precision("bf16", CUDA)
    assert precision.resolve_precision("auto", CUDA) == torch.float16


def test_unknown_or_cpu_fp16_precision_is_refused_before_the_model_loads(files, tmp_path):
    model, bank = files
    with pytest.raises(InputError, match="fp16 runs on a GPU only"):
        VoxTellPredictor(model=model, device="cpu", embedding_bank=bank, precision="fp16")
    with pytest.raises(InputError, match="Unknown precision 'half'"):
        VoxTellPredictor(model=tmp_path / "missing", device="cpu", precision="half")
    out = tmp_path / "out"
    code = cli_main(["predict", "-i", str(tmp_path / "missing.nii.gz"), "-o", str(out), "-p", "liver",
                     "-m", str(model), "--device", "cpu", "--precision", "fp16"])
    assert code == 2 and not out.exists()


def run_dtypes(predictor: VoxTellPredictor, monkeypatch) -> list[tuple[torch.dtype, bool]]:
    """(dtype, channels-last) of the encoder's first skip, per window."""
    seen, encode = [], predictor.network.encode

    def recording(image):
        skips = encode(image)
        seen.append((skips[0].dtype, skips[0].is_contiguous(memory_format=torch.channels_last_3d)))
        return skips

    monkeypatch.setattr(predictor.network, "encode", recording)
    return seen


def test_bf16_runs_the_network_in_bf16_and_fp32_does_not(files, monkeypatch):
    model, bank = files
    fp32 = VoxTellPredictor(model=model, device="cpu", embedding_bank=bank)
    bf16 = VoxTellPredictor(model=model, device="cpu", embedding_bank=bank, precision="bf16")
    seen32, seen16 = run_dtypes(fp32, monkeypatch), run_dtypes(bf16, monkeypatch)
    image = volume()
    exact, fast = fp32.predict_volume(image, PROMPTS), bf16.predict_volume(image, PROMPTS)
    assert set(seen32) == {(torch.float32, False)} and set(seen16) == {(torch.bfloat16, True)}
    for p in range(len(PROMPTS)):
        agree = (exact[p] == fast[p]).mean()
        assert 0.9 < agree < 1.0 or np.array_equal(exact[p], fast[p]), agree  # close, computed differently


def test_kept_features_are_dropped_when_the_precision_changes(files):
    """bf16 features must not feed an fp32 decoder: the fp32 masks equal a fresh fp32 predictor's."""
    model, bank = files
    predictor = VoxTellPredictor(model=model, device="cpu", embedding_bank=bank, precision="bf16")
    image = volume()
    fast = predictor.predict_volume(image, ["liver"])
    predictor.precision = "fp32"
    exact = predictor.predict_volume(image, ["spleen"])
    fresh = VoxTellPredictor(model=model, device="cpu", embedding_bank=bank, precision="fp32")
    np.testing.assert_array_equal(exact, fresh.predict_volume(image, ["spleen"]))
    assert all(f.dtype == torch.float32 for window in predictor._features._features.values() for f in window.tensors())
    assert fast.any()


def test_channels_last_runs_the_same_network_and_switches_back_exactly():
    model = random_model(TINY, seed=3).eval()
    torch.manual_seed(0)
    image, text = torch.randn(1, 1, 64, 64, 64), torch.randn(1, 2, TINY.text_embedding_dim)
    keys = list(model.state_dict())
    with torch.inference_mode():
        expected = model(image, text)
        model.set_channels_last(True)
        fast = model(image, text)
        model.set_channels_last(False)
        again = model(image, text)
    torch.testing.assert_close(fast, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(again, expected)
    assert list(model.state_dict()) == keys
    assert not any(isinstance(m, GroupwiseInstanceNorm3d) for m in model.modules())


def test_channels_last_keeps_the_released_widths_features_channels_last():
    """With InstanceNorm3d every stage would come back contiguous (oneDNN picks the layout per
    convolution; at 64^3 the three largest stages are channels-last, at 192^3 five of six)."""
    model = random_model(RELEASE_COMPATIBLE, seed=3).eval()
    model.set_channels_last(True)
    with torch.inference_mode():
        skips = model.encode(torch.randn(1, 1, 64, 64, 64))
    assert all(s.is_contiguous(memory_format=torch.channels_last_3d) and not s.is_contiguous() for s in skips[:3])


def test_a_precision_set_later_is_checked_like_the_constructors(files):
    model, bank = files
    predictor = VoxTellPredictor(model=model, device="cpu", embedding_bank=bank)
    predictor.precision = "BF16"
    assert predictor.precision == "bf16"
    with pytest.raises(InputError, match="fp16 runs on a GPU only"):
        predictor.precision = "fp16"
    with pytest.raises(InputError, match="Unknown precision"):
        predictor.precision = "int8"
    assert predictor.precision == "bf16"
