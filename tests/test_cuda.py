"""CUDA inference on a real GPU: parity with the CPU, kept features, OOM fallback, bf16 text encoder.

Marked ``cuda``: deselected by default (pyproject addopts); ``pytest -m cuda`` runs them on a
GPU machine (bench/gpu_check.sh does).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from model_fixtures import TINY, make_bank, make_model_folder
from text_fixtures import TINY_PROMPTS
from VoxTellCore.inference.predictor import VoxTellPredictor
from VoxTellCore.io import Volume
from VoxTellCore.text import Qwen3TextEncoder
from VoxTellCore.text.small_qwen3 import build_small_qwen3

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
PROMPTS = ["liver", "spleen", "aorta"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda")
    return {"model": make_model_folder(root / "model", TINY, seed=2),
            "bank": make_bank(root / "bank.npz", PROMPTS, TINY.text_embedding_dim)}


def make_predictor(files, device: str) -> VoxTellPredictor:
    return VoxTellPredictor(model=files["model"], device=device, embedding_bank=files["bank"])


def volume(shape=(40, 100, 90)) -> Volume:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 50 + 100).astype(np.float32)
    return Volume(array, np.diag([-1.2, -1.0, 2.0, 1.0]))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


def test_cuda_masks_match_the_cpu_and_kept_features_change_nothing(files):
    image = volume()
    cpu = make_predictor(files, "cpu").predict_volume(image, PROMPTS)
    gpu = make_predictor(files, "cuda")
    first = gpu.predict_volume(image, PROMPTS[:1])
    assert len(gpu._features) == 6 and all(f.is_cuda for f in kept_features(gpu))
    rest = gpu.predict_volume(image, PROMPTS[1:])
    again = gpu.predict_volume(image, PROMPTS[:1])
    np.testing.assert_array_equal(again, first)
    both = np.concatenate([first, rest])
    for prompt in range(len(PROMPTS)):
        assert both[prompt].any() and dice(both[prompt], cpu[prompt]) >= 0.99  # fp16 autocast, as the release
    fresh = make_predictor(files, "cuda").predict_volume(image, PROMPTS[1:])
    assert all(dice(r, f) >= 0.999 for r, f in zip(rest, fresh))
    gpu.device = torch.device("cpu")  # a device change drops the GPU features
    np.testing.assert_array_equal(gpu.predict_volume(image, PROMPTS), cpu)
    assert len(gpu._features) == 6 and not any(f.is_cuda for f in kept_features(gpu))


def kept_features(predictor: VoxTellPredictor) -> list[torch.Tensor]:
    return [f for window in predictor._features._features.values() for f in window.tensors()]


def test_out_of_memory_on_a_real_gpu_falls_back_to_host_blending(files):
    image = volume((64, 512, 512))  # 225 windows; the GPU blending buffers take 96 + 32 MiB for 3 prompts
    expected = make_predictor(files, "cpu").predict_volume(image, PROMPTS)
    gpu = make_predictor(files, "cuda")
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + 112 * 2**20) / total)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            masks = gpu.predict_volume(image, PROMPTS)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    messages = [str(w.message) for w in caught if "out of memory" in str(w.message)]
    assert messages == ["CUDA ran out of memory; retrying on the GPU with blending in host memory."]
    assert all(dice(m, e) >= 0.99 for m, e in zip(masks, expected))


def test_the_text_encoder_runs_in_bf16_on_cuda_and_matches_the_cpu(tmp_path):
    path = build_small_qwen3(tmp_path / "qwen", TINY_PROMPTS, seed=0)
    gpu = Qwen3TextEncoder(str(path), device="cuda", keep_loaded=True)
    on_gpu = gpu.embed(TINY_PROMPTS)
    assert gpu.backbone.dtype == torch.bfloat16 and on_gpu.dtype == torch.float32 and not on_gpu.is_cuda
    on_cpu = Qwen3TextEncoder(str(path), device="cpu").embed(TINY_PROMPTS)
    assert torch.nn.functional.cosine_similarity(on_gpu, on_cpu).min() >= 0.99
    assert not torch.equal(on_gpu, on_cpu)  # really computed in bf16
