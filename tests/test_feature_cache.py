"""Encoder features kept for the next prompt on the same volume: fewer encoder runs, same masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_fixtures import TINY, make_bank, make_model_folder, random_model
from VoxTellCore.inference.predictor import VoxTellPredictor
from VoxTellCore.inference.sliding_window import FeatureCache
from VoxTellCore.io import Volume
from VoxTellCore.model.network import WindowFeatures

PROMPTS = ["liver", "spleen", "aorta"]
N_WINDOWS = 6  # network array (40, 100, 90) -> 1 x 3 x 2 windows of 64^3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    return {
        "model": make_model_folder(root / "model", TINY, seed=2),
        "other": make_model_folder(root / "other", TINY, seed=7),
        "bank": make_bank(root / "bank.npz", PROMPTS, TINY.text_embedding_dim),
    }


def make_predictor(files, model="model", budget=None) -> VoxTellPredictor:
    return VoxTellPredictor(model=files[model], device="cpu", embedding_bank=files["bank"], feature_cache_bytes=budget)


def volume() -> Volume:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((40, 100, 90)) * 50 + 100).astype(np.float32)
    return Volume(array, np.diag([-1.2, -1.0, 2.0, 1.0]))


def count_encoder_runs(predictor: VoxTellPredictor, monkeypatch) -> list:
    calls, encode = [], predictor.network.encode
    monkeypatch.setattr(predictor.network, "encode", lambda image: calls.append(1) or encode(image))
    return calls


def test_a_new_prompt_reuses_the_encoder_and_gives_a_fresh_predictors_masks(files, monkeypatch):
    predictor, image = make_predictor(files), volume()
    calls = count_encoder_runs(predictor, monkeypatch)
    liver = predictor.predict_volume(image, ["liver"])
    assert len(calls) == N_WINDOWS and len(predictor._features) == N_WINDOWS
    spleen = predictor.predict_volume(image, ["spleen"])
    both = predictor.predict_volume(image, ["spleen", "aorta"])
    again = predictor.predict_volume(image, ["liver"])
    assert len(calls) == N_WINDOWS  # the encoder ran for the first prompt only
    np.testing.assert_array_equal(again, liver)
    fresh = make_predictor(files)
    np.testing.assert_array_equal(spleen, fresh.predict_volume(image, ["spleen"]))
    np.testing.assert_array_equal(both, make_predictor(files).predict_volume(image, ["spleen", "aorta"]))
    assert spleen.any() and not np.array_equal(spleen, liver)


def test_a_new_prompt_reuses_the_skip_half_of_the_decoder_too(files, monkeypatch):
    predictor, image = make_predictor(files), volume()
    calls, skip_terms = [], predictor.network.decoder.skip_terms
    monkeypatch.setattr(predictor.network.decoder, "skip_terms", lambda skips: calls.append(1) or skip_terms(skips))
    predictor.predict_volume(image, ["liver"])
    assert len(calls) == N_WINDOWS
    predictor.predict_volume(image, ["spleen", "aorta"])
    assert len(calls) == N_WINDOWS


def test_a_tiny_budget_keeps_only_the_windows_that_fit(files, monkeypatch):
    image = volume()
    full = make_predictor(files)
    expected = [full.predict_volume(image, [p]) for p in PROMPTS[:2]]
    per_window = full._features.used // N_WINDOWS
    predictor = make_predictor(files, budget=2 * per_window + per_window // 2)
    calls = count_encoder_runs(predictor, monkeypatch)
    first = predictor.predict_volume(image, ["liver"])
    assert len(predictor._features) == 2 and predictor._features.used <= predictor._features.limit
    second = predictor.predict_volume(image, ["spleen"])
    assert len(calls) == N_WINDOWS + N_WINDOWS - 2
    np.testing.assert_array_equal(first, expected[0])
    np.testing.assert_array_equal(second, expected[1])
    off = make_predictor(files, budget=0)
    np.testing.assert_array_equal(off.predict_volume(image, ["spleen"]), expected[1])
    assert len(off._features) == 0


def test_the_features_are_dropped_when_the_volume_changes(files, monkeypatch):
    predictor, image = make_predictor(files), volume()
    calls = count_encoder_runs(predictor, monkeypatch)
    predictor.predict_volume(image, ["liver"])
    image.array[10:20] += 500  # edited in place, as a Slicer volume can be
    edited = predictor.predict_volume(image, ["spleen"])
    assert len(calls) == 2 * N_WINDOWS and len(predictor._features) == N_WINDOWS
    np.testing.assert_array_equal(edited, make_predictor(files).predict_volume(image, ["spleen"]))


def test_the_features_are_dropped_when_the_model_changes(files, monkeypatch):
    predictor, image = make_predictor(files), volume()
    predictor.predict_volume(image, ["liver"])
    expected = make_predictor(files, "other").predict_volume(image, ["spleen"])
    # new weights loaded in place ...
    predictor.network.load_state_dict(random_model(TINY, seed=7).state_dict())
    calls = count_encoder_runs(predictor, monkeypatch)
    np.testing.assert_array_equal(predictor.predict_volume(image, ["spleen"]), expected)
    assert len(calls) == N_WINDOWS
    # ... or another network object
    predictor.network = make_predictor(files).network
    np.testing.assert_array_equal(predictor.predict_volume(image, ["spleen"]),
                                  make_predictor(files).predict_volume(image, ["spleen"]))


def test_the_features_are_dropped_when_the_device_changes():
    cache, window = FeatureCache(budget_bytes=10**6), (slice(0, 4),) * 3
    cpu = torch.device("cpu")
    cache.use(("volume", "model", cpu), cpu)
    cache.put(window, WindowFeatures(torch.ones(4, 4, 4), torch.ones(0), []))
    cache.use(("volume", "model", cpu), cpu)
    assert cache.get(window) is not None and cache.used == 256
    cache.use(("volume", "model", torch.device("cuda", 0)), cpu)
    assert cache.get(window) is None and len(cache) == 0 and cache.used == 0


def test_an_out_of_memory_retry_drops_the_features(files, monkeypatch):
    predictor, image = make_predictor(files), volume()
    predictor.predict_volume(image, ["liver"])
    real, sizes = predictor._run_windows, []

    def out_of_memory_once(*args):
        sizes.append(len(predictor._features))
        if len(sizes) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        cpu = torch.device("cpu")
        return real(*args[:3], cpu, cpu, *args[5:])

    monkeypatch.setattr(predictor, "_run_windows", out_of_memory_once)
    monkeypatch.setattr(predictor, "device", torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with pytest.warns(RuntimeWarning, match="ran out of memory"):
        predictor.predict_volume(image, ["spleen"])
    assert sizes == [N_WINDOWS, 0]
