"""Model folders: strict, safe loading and clear errors for every broken folder."""

from __future__ import annotations

import json
import os
import hashlib
import shutil

import pytest
import torch

from model_fixtures import TINY, make_model_folder
from VoxTellCore.checkpoint import CHECKPOINT_FILE, export_safetensors, load_model, save_model_folder
from VoxTellCore.cli import main
from VoxTellCore.errors import ModelError
from VoxTellCore.model import VoxTellConfig, VoxTellModel


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("model") / "tiny", TINY, seed=1)


def forward(model, seed=0):
    torch.manual_seed(seed)
    image, text = torch.randn(1, 1, 64, 64, 64), torch.randn(1, 2, TINY.text_embedding_dim)
    with torch.inference_mode():
        return model(image, text)


def test_round_trip_is_exact_and_sizes_come_from_plans(folder):
    model = load_model(folder)
    assert model.config == TINY
    original = VoxTellModel(TINY)
    original.load_state_dict(torch.load(folder / CHECKPOINT_FILE, weights_only=True)["network_weights"])
    assert torch.equal(forward(model.eval()), forward(original.eval()))


def test_safetensors_export_loads_to_the_same_network(folder, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    export_safetensors(copy)
    (copy / CHECKPOINT_FILE).unlink()
    assert torch.equal(forward(load_model(copy)), forward(load_model(folder)))


def test_released_sizes_are_the_default_plans():
    plans = VoxTellConfig().to_plans()
    plans["configurations"]["3d_fullres"]["architecture"].pop("voxtell_kwargs")  # official plans have none
    assert VoxTellConfig.from_plans(plans) == VoxTellConfig()


def broken(folder, tmp_path, damage):
    copy = tmp_path / "broken"
    shutil.copytree(folder, copy)
    damage(copy)
    return copy


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "plans.json").unlink(), "has no plans.json"),
    (lambda d: (d / CHECKPOINT_FILE).unlink(), "has no fold_0/checkpoint_final.pth"),
    (lambda d: (d / "plans.json").write_text("{not json"), "is not valid JSON"),
    (lambda d: (d / CHECKPOINT_FILE).write_bytes((d / CHECKPOINT_FILE).read_bytes()[:5000]), "truncated"),
    (lambda d: torch.save({"network_weights": {}, "evil": Payload()}, d / CHECKPOINT_FILE), "refuses to load safely"),
    (lambda d: torch.save({"weights": {}}, d / CHECKPOINT_FILE), "no 'network_weights'"),
    (lambda d: (d / CHECKPOINT_FILE).write_bytes(os.urandom(5000)), "is corrupt or truncated"),
    (lambda d: (d / "plans.json").write_text(json.dumps(
        VoxTellConfig(**{**TINY.__dict__, "query_dim": 64}).to_plans())), "wrong shapes"),
    (lambda d: (d / "plans.json").write_text(json.dumps(
        VoxTellConfig(**{**TINY.__dict__, "prompt_decoder_layers": 3}).to_plans())), "do not match the architecture"),
    (lambda d: (d / "plans.json").write_text(json.dumps(
        VoxTellConfig(**{**TINY.__dict__, "patch_size": (64, 64, 48)}).to_plans())), "must be divisible"),
])
def test_broken_model_folders_raise_a_clear_error(folder, tmp_path, damage, message):
    with pytest.raises(ModelError, match=message):
        load_model(broken(folder, tmp_path, damage))


@pytest.mark.parametrize("seed", [0, 17, 54, 62])
def test_any_random_bytes_are_a_corrupt_checkpoint(folder, tmp_path, seed):
    """Damaged bytes make torch's unpickler fail in many ways: with these seeds UnpicklingError,
    IndexError, UnicodeDecodeError and KeyError. Each is a corrupt file, never a traceback."""
    import numpy as np

    damage = lambda d: (d / CHECKPOINT_FILE).write_bytes(np.random.default_rng(seed).bytes(5000))  # noqa: E731
    with pytest.raises(ModelError, match="is corrupt or truncated"):
        load_model(broken(folder, tmp_path, damage))


def test_cli_reports_a_malicious_checkpoint_without_traceback_or_output(folder, tmp_path, capsys):
    model = broken(folder, tmp_path, lambda d: torch.save({"network_weights": Payload()}, d / CHECKPOINT_FILE))
    image = tmp_path / "ct.nii.gz"
    import nibabel as nib
    import numpy as np

    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), image)
    code = main(["predict", "-i", str(image), "-o", str(tmp_path / "out"), "-p", "liver", "-m", str(model)])
    err = capsys.readouterr().err
    assert code == 2
    assert "refuses to load safely" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists(), "a refused run creates no output folder"


def test_random_bytes_are_a_corrupt_file_not_a_security_refusal(folder, tmp_path):
    model = broken(folder, tmp_path, lambda d: (d / CHECKPOINT_FILE).write_bytes(os.urandom(5000)))
    with pytest.raises(ModelError) as error:
        load_model(model)
    assert "refuses to load safely" not in str(error.value) and "arbitrary code" not in str(error.value)


def test_model_info_paths_stay_valid_when_the_folder_moves(tmp_path, monkeypatch):
    """voxtell_model.json records paths inside the folder relative to it, others absolute."""
    from model_fixtures import make_bank

    from VoxTellCore.inference.predictor import VoxTellPredictor

    outside = make_bank(tmp_path / "outside.npz", ["liver"], TINY.text_embedding_dim)
    folder = tmp_path / "trained"
    bank = make_bank(tmp_path / "bank_in_folder.npz", ["spleen"], TINY.text_embedding_dim)
    folder.mkdir()
    bank = bank.rename(folder / "bank.npz")
    monkeypatch.chdir(tmp_path)
    save_model_folder(VoxTellModel(TINY), folder, info={"embedding_bank": str(bank), "text_encoder": "outside.npz"})
    info = json.loads((folder / "voxtell_model.json").read_text())
    assert info == {"embedding_bank": "bank.npz", "text_encoder": str(outside)}

    moved = shutil.move(str(folder), str(tmp_path / "elsewhere" / "moved"))
    monkeypatch.chdir(tmp_path / "elsewhere")
    predictor = VoxTellPredictor(model=moved, device="cpu", embedding_cache_dir=tmp_path / "cache")
    assert list(predictor.embedder.bank.labels) == ["spleen"]


def test_saving_is_atomic(tmp_path, monkeypatch):
    model = VoxTellModel(TINY)

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        save_model_folder(model, tmp_path / "out")
    leftovers = [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert leftovers == ["plans.json"]  # the checkpoint never appears half-written


def test_loading_never_writes_to_the_checkpoint_file(folder):
    """The weights are memory-mapped: changing the loaded network must not change the file."""
    path = folder / CHECKPOINT_FILE
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    model = load_model(folder)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    del model
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert torch.equal(forward(load_model(folder)), forward(load_model(folder)))


def test_a_half_precision_checkpoint_loads_as_fp32(folder, tmp_path):
    copy = tmp_path / "half"
    shutil.copytree(folder, copy)
    checkpoint = torch.load(copy / CHECKPOINT_FILE, weights_only=True)
    checkpoint["network_weights"] = {k: v.half() for k, v in checkpoint["network_weights"].items()}
    torch.save(checkpoint, copy / CHECKPOINT_FILE)
    model = load_model(copy)
    assert {p.dtype for p in model.state_dict().values()} == {torch.float32}
    rounded = VoxTellModel(TINY)
    rounded.load_state_dict(checkpoint["network_weights"])  # the release's copy into fp32 parameters
    assert torch.equal(forward(model), forward(rounded.eval()))


def test_dropping_the_unused_prompt_decoder_weights_keeps_the_output(folder):
    model = load_model(folder)
    before, expected = sum(p.numel() for p in model.parameters()), forward(model)
    layer = model.transformer_decoder.layers[0]
    unused = sum(p.numel() for m in (layer.self_attn, layer.norm1) for p in m.parameters())
    assert model.drop_unused_weights() is model
    assert sum(p.numel() for p in model.parameters()) == before - TINY.prompt_decoder_layers * unused > 0
    assert torch.equal(forward(model), expected)
