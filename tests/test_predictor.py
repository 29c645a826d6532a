"""VoxTellPredictor on a tiny random model: regions of interest, progress, cancel, devices."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from model_fixtures import TINY, make_bank, make_model_folder
from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.inference.predictor import VoxTellPredictor, resolve_device, roi_to_network_box
from VoxTellCore.io import Volume

PROMPTS = ["liver", "spleen"]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    root = tmp_path_factory.mktemp("predictor")
    model = make_model_folder(root / "model", TINY, seed=2)
    bank = make_bank(root / "bank.npz", PROMPTS, TINY.text_embedding_dim)
    return VoxTellPredictor(model=model, device="cpu", embedding_bank=bank, embedding_cache_dir=root / "cache")


def lps_volume(shape=(40, 100, 90)) -> Volume:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 50 + 100).astype(np.float32)
    ijk_to_ras = np.diag([-1.2, -1.0, 2.0, 1.0])
    ijk_to_ras[:3, 3] = [60.0, 40.0, -30.0]
    return Volume(array, ijk_to_ras)


def test_masks_are_on_the_volume_grid_and_progress_counts_windows(predictor):
    volume, calls = lps_volume(), []
    masks = predictor.predict_volume(volume, PROMPTS, progress=lambda done, total: calls.append((done, total)))
    assert masks.shape == (2, *volume.array.shape) and masks.dtype == np.uint8
    assert 0 < masks.mean() < 1 and not np.array_equal(masks[0], masks[1])
    # network array (S, A, R) = (40, 100, 90) -> 1 x 3 x 2 windows of 64^3 at step 32
    assert calls == [(i, 6) for i in range(1, 7)]


def test_region_of_interest_runs_only_its_windows_and_matches_the_full_run_inside(predictor):
    volume = lps_volume()
    full = predictor.predict_volume(volume, PROMPTS)
    # A small box near one corner of the image, in RAS mm.
    corner = volume.ijk_to_ras @ np.array([5, 5, 5, 1.0])
    far = volume.ijk_to_ras @ np.array([15, 15, 15, 1.0])
    roi = (*corner[:3], *far[:3])
    calls = []
    masks = predictor.predict_volume(volume, PROMPTS, roi_ras=roi, progress=lambda d, t: calls.append(t))
    assert calls[-1] < 6
    k, j, i = np.meshgrid(*[np.arange(n) for n in volume.array.shape], indexing="ij")
    inside = (i >= 5) & (i <= 15) & (j >= 5) & (j <= 15) & (k >= 5) & (k <= 15)
    np.testing.assert_array_equal(masks[:, inside], full[:, inside])
    assert not masks[:, ~inside].any()


def test_roi_outside_the_image_is_an_input_error(predictor):
    volume = lps_volume()
    with pytest.raises(InputError, match="does not overlap"):
        roi_to_network_box(volume, (1000, 1000, 1000, 1100, 1100, 1100))
    with pytest.raises(InputError, match="6 numbers"):
        roi_to_network_box(volume, (1, 2, 3))


@pytest.mark.parametrize("as_event", [True, False])
def test_cancel_stops_between_windows(predictor, as_event):
    done = []
    event = threading.Event()

    def progress(d, total):
        done.append(d)
        if d == 2:
            event.set()

    cancel = event if as_event else event.is_set
    with pytest.raises(Cancelled):
        predictor.predict_volume(lps_volume(), PROMPTS, progress=progress, cancel=cancel)
    assert done == [1, 2]


def test_devices(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="Unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(InputError, match="cuda:N"):
        resolve_device("cuda:first")
    # without a GPU: auto warns and uses the CPU; cuda, cuda:N and mps say what is missing
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="running on the CPU"):
        assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(InputError, match=f"--device {name} was asked for, but PyTorch sees no CUDA GPU"):
            resolve_device(name)
    with pytest.raises(InputError, match="no Apple GPU"):
        resolve_device("mps")
    # with two GPUs: a GPU number is kept, one past the last is refused
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match="sees 2 CUDA GPU"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")


def test_step_sets_the_window_count_and_is_checked(tmp_path, predictor):
    calls = []
    predictor.predict_volume(lps_volume(), ["liver"], progress=lambda done, total: calls.append(total))
    assert calls[-1] == 6  # the release's step 0.5
    bank = make_bank(tmp_path / "bank.npz", PROMPTS, TINY.text_embedding_dim)
    finer = VoxTellPredictor(model=predictor.model_dir, device="cpu", embedding_bank=bank, step=0.25)
    calls.clear()
    finer.predict_volume(lps_volume(), ["liver"], progress=lambda done, total: calls.append(total))
    # (S, A, R) = (40, 100, 90), padded to (64, 100, 90): 1 x 4 x 3 starts 16 voxels apart
    assert calls[-1] == 1 * 4 * 3
    with pytest.raises(InputError, match="Window step 0"):
        VoxTellPredictor(model=predictor.model_dir, device="cpu", step=0)


def test_cuda_out_of_memory_falls_back_to_host_blending_then_cpu(predictor, monkeypatch):
    attempts = []
    real = predictor._run_windows

    def flaky(image, embeddings, windows, compute, results, progress, cancel, volume_key):
        attempts.append((compute.type, results.type))
        if len(attempts) < 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(image, embeddings, windows, torch.device("cpu"), torch.device("cpu"), progress, cancel, volume_key)

    monkeypatch.setattr(predictor, "_run_windows", flaky)
    monkeypatch.setattr(predictor, "device", torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with pytest.warns(RuntimeWarning, match="ran out of memory"):
        masks = predictor.predict_volume(lps_volume(), PROMPTS)
    assert attempts == [("cuda", "cuda"), ("cuda", "cpu"), ("cpu", "cpu")]
    assert masks.shape[0] == 2


def test_empty_prompt_list_is_an_input_error(predictor):
    with pytest.raises(InputError, match="No prompt"):
        predictor.predict_volume(lps_volume(), [])


def test_preprocessing_is_reused_for_the_same_volume_and_redone_when_it_changes(predictor, monkeypatch):
    import VoxTellCore.inference.predictor as module

    calls = []
    real = module.preprocess
    monkeypatch.setattr(module, "preprocess", lambda array: calls.append(1) or real(array))
    monkeypatch.setattr(predictor, "_preprocessed", None)
    volume = lps_volume((40, 64, 64))
    first = predictor.predict_volume(volume, ["liver"])
    again = predictor.predict_volume(volume, ["liver"])
    assert len(calls) == 1 and np.array_equal(first, again)
    volume.array[10:20] += 500  # edited in place, as a Slicer volume can be
    predictor.predict_volume(volume, ["liver"])
    assert len(calls) == 2


def test_a_bank_inside_the_model_folder_is_used_without_configuration(tmp_path):
    model = make_model_folder(tmp_path / "model", TINY, seed=2)
    make_bank(model / "text_embeddings.npz", ["gallbladder"], TINY.text_embedding_dim, seed=5)
    predictor = VoxTellPredictor(model=model, device="cpu", text_encoder=str(tmp_path / "no-encoder-here"),
                                 embedding_cache_dir=tmp_path / "cache")
    expected = np.load(model / "text_embeddings.npz")["embeddings"][0].astype(np.float32)
    np.testing.assert_array_equal(predictor.embed(["Gallbladder"])[0].numpy(), expected)
