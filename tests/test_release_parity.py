"""Parity with the released implementation (PyPI voxtell 0.1.2) as the oracle.

Same random-weight model folder and embedding bank in, same logits and masks out. Each
192^3 window costs tens of seconds on a 2-core CPU, so these tests are few and deliberate.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from voxtell.inference.predictor import VoxTellPredictor as ReleasePredictor

from model_fixtures import RELEASE_COMPATIBLE, make_bank, make_model_folder
from VoxTellCore.cli import main as cli_main
from VoxTellCore.inference.predictor import VoxTellPredictor
from VoxTellCore.preprocessing import preprocess

pytestmark = [pytest.mark.slow, pytest.mark.oracle]
PROMPTS = ["liver", "left kidney"]


@pytest.fixture(scope="module")
def release_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("release_model")
    folder = make_model_folder(root / "model", RELEASE_COMPATIBLE, seed=3)
    bank = make_bank(root / "bank.npz", PROMPTS, RELEASE_COMPATIBLE.text_embedding_dim, seed=4)
    ours = VoxTellPredictor(model=folder, device="cpu", embedding_bank=bank, embedding_cache_dir=root / "cache")
    release = ReleasePredictor(model_dir=str(folder), device=torch.device("cpu"), embedding_bank=str(bank))
    return folder, bank, ours, release


def smooth_volume(shape, seed):
    rng = np.random.default_rng(seed)
    volume = gaussian_filter(rng.standard_normal(shape), 6) * 400 + 50
    return volume.astype(np.float32)


def test_logits_of_one_full_window_match_the_release(release_model, monkeypatch):
    """Raw fp32 network logits of a 192^3 window within 1e-3; blended masks agree.

    The blended logits are compared by sign only: the release blends in fp16 with weights down
    to 6e-8, which quantises a window's border logits to steps of up to 1, so a 1e-6 difference
    in the fp32 logits can move a blended border value by a whole step.
    """
    _, _, ours, release = release_model
    image = smooth_volume((192, 192, 192), seed=1)

    captured = {}
    release_forward = release.network.forward

    def record_release(*args, **kwargs):
        output = release_forward(*args, **kwargs)
        captured["release"] = output.clone()  # the release scales its output by the Gaussian in place
        return output

    monkeypatch.setattr(release.network, "forward", record_release)
    decode = ours.network.decode_prompt
    monkeypatch.setattr(ours.network, "decode_prompt",
                        lambda *a, **k: captured.setdefault("ours", []).append(decode(*a, **k)) or captured["ours"][-1])

    ref_embeddings = release.embed_text_prompts(PROMPTS)
    ref_data, _, _ = release.preprocess(image)
    ref_logits = release.predict_sliding_window_return_logits(ref_data, ref_embeddings)
    data, _, _ = preprocess(image)
    logits, unpad = ours.predict_logits(torch.from_numpy(data), ours.embed(PROMPTS))
    logits = logits[(slice(None), *unpad[1:])]

    assert torch.equal(ours.embed(PROMPTS)[None], ref_embeddings.float())
    raw_release = captured["release"][0]
    raw_ours = torch.cat([outputs[0] for outputs in captured["ours"]], dim=1)[0]
    assert raw_ours.shape == raw_release.shape == (2, 192, 192, 192)
    difference = (raw_ours - raw_release).abs().max().item()
    assert difference <= 1e-3, difference

    assert logits.shape == ref_logits.shape
    for p in range(2):
        ref_mask, our_mask = ref_logits[p] > 0, logits[p] > 0
        assert 0.02 < ref_mask.float().mean().item() < 0.98  # not vacuous: both signs occur
        assert (ref_mask == our_mask).float().mean().item() >= 0.999
    assert not torch.equal(ref_logits[0] > 0, ref_logits[1] > 0)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


def test_masks_of_a_multi_window_non_ras_volume_match_the_release(release_model, tmp_path):
    folder, bank, _, release = release_model
    # Network array (S, A, R) of 200 x 192 x 192: two windows along the first axis.
    network = smooth_volume((200, 192, 192), seed=2)
    # Store it LPS with permuted axes: voxel axes (i, j, k) = (A->P, S, R->L).
    ijk = network.transpose(1, 0, 2)[::-1, :, ::-1]
    affine = np.array([[0, 0, -1.5, 140.0], [-0.8, 0, 0, 90.0], [0, 1.2, 0, -60.0], [0, 0, 0, 1]])
    image_path = tmp_path / "case7.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(ijk), affine), image_path)

    release.predict_from_files([str(image_path)], str(tmp_path / "release"), PROMPTS)
    code = cli_main(["predict", "-i", str(image_path), "-o", str(tmp_path / "ours"), "-p", *PROMPTS,
                     "-m", str(folder), "--embeddings", str(bank), "--device", "cpu"])
    assert code == 0

    for prompt in PROMPTS:
        name = f"case7_{prompt.replace(' ', '_')}.nii.gz"
        ref, our = nib.load(tmp_path / "release" / name), nib.load(tmp_path / "ours" / name)
        assert our.shape == ref.shape == ijk.shape
        np.testing.assert_allclose(our.affine, ref.affine, atol=1e-5)
        ref_mask, our_mask = np.asarray(ref.dataobj) > 0, np.asarray(our.dataobj) > 0
        assert 0.02 < ref_mask.mean() < 0.98
        assert dice(our_mask, ref_mask) >= 0.99, (prompt, dice(our_mask, ref_mask))
