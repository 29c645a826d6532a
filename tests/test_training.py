"""End-to-end training on CPU: one process, torchrun with 2 gloo processes, resume, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from Training.cli import main as cli_main
from Training.config import TrainingConfig
from Training.encoder_transfer import export_encoder_transfer
from Training.trainer import train
from VoxTellCore.checkpoint import alias_groups, load_model, read_model_info
from VoxTellCore.ports import free_port
from test_training_support import write_config

REPO = Path(__file__).resolve().parents[1]
EPOCHS, ITERATIONS = 4, 3


def _losses(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "fold_0" / "iterations.jsonl").read_text().splitlines()]



def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "fold_0" / "checkpoint_final.pth", weights_only=True)["network_weights"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("training")
    config_path = write_config(root, num_epochs=EPOCHS, iterations_per_epoch=ITERATIONS)
    config = TrainingConfig.from_file(config_path)
    single = train(config, root / "single")
    interrupted = TrainingConfig.from_file(config_path, ["stop_after_iterations=5"])
    assert train(interrupted, root / "resumed") is None
    after_stop = torch.load(root / "resumed" / "fold_0" / "checkpoint_latest.pth", weights_only=True)
    resumed = train(config, root / "resumed", resume=True)
    torch.set_num_threads(threads)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
               "-m", "Training.cli", str(config_path), "--output", str(root / "ddp"), "--set", "record_checksums=true"]
    ddp = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    return {"root": root, "single": single, "resumed": resumed, "after_stop": after_stop, "ddp": root / "ddp"}


@pytest.mark.parametrize("run", ["single", "ddp"])
def test_loss_decreases_and_model_folder_loads(runs, run):
    output = runs[run] if run == "ddp" else runs["single"]
    records = _losses(output)
    assert [r["iteration"] for r in records] == list(range(EPOCHS * ITERATIONS))
    losses = [r["loss"] for r in records]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.01, losses
    model = load_model(output)
    info = read_model_info(output)
    assert (output / info["embedding_bank"]).is_file()
    with torch.no_grad():
        logits = model(torch.randn(1, 1, 32, 32, 32), torch.randn(1, 2, 16))
    assert logits.shape == (1, 2, 32, 32, 32) and torch.isfinite(logits).all()
    log = [json.loads(line) for line in (output / "fold_0" / "training_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == list(range(EPOCHS))
    assert log[-1]["lr"] < log[0]["lr"] == 0.05  # poly decay from the configured initial lr
    assert (output / "fold_0" / "progress.png").stat().st_size > 1000


def test_ddp_ranks_hold_identical_weights_after_every_step(runs):
    records = _losses(runs["ddp"])
    for record in records:
        rank0, rank1 = record["checksums"]
        assert rank0 == rank1, f"iteration {record['iteration']}: ranks diverged"
    assert records[0]["checksums"][0] != records[-1]["checksums"][0]  # the weights did change


def test_resume_continues_exactly_like_an_uninterrupted_run(runs):
    assert runs["after_stop"]["iteration"] == 5
    assert {"optimizer_state", "grad_scaler_state", "sampler_state", "rng"} <= set(runs["after_stop"])
    reference, resumed = _weights(runs["single"]), _weights(runs["resumed"])
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key
    assert [r["loss"] for r in _losses(runs["resumed"])] == [r["loss"] for r in _losses(runs["single"])]


def test_channels_last_run_matches_and_saves_the_default_layout(runs):
    output = train(TrainingConfig.from_file(runs["root"] / "config.json", ["channels_last=true"]),
                   runs["root"] / "channels_last")
    reference = [r["loss"] for r in _losses(runs["single"])]
    assert np.allclose([r["loss"] for r in _losses(output)], reference, rtol=1e-3), "same run, other memory format"
    weights = _weights(output)
    assert all(w.is_contiguous() for w in weights.values())
    assert alias_groups(weights), "the model has aliased tensors"
    for group in alias_groups(weights):  # stored once, as in a default-format run
        assert len({weights[key].data_ptr() for key in group}) == 1, group
    sizes = [(run / "fold_0" / "checkpoint_final.pth").stat().st_size for run in (output, runs["single"])]
    assert abs(sizes[0] - sizes[1]) < 0.01 * sizes[1]


def test_encoder_transfer_into_plain_resenc_unet(runs, tmp_path):
    out = tmp_path / "resenc.pth"
    report = export_encoder_transfer(runs["single"], out, num_classes=3)
    saved = torch.load(out, weights_only=True)["network_weights"]
    voxtell = _weights(runs["single"])
    encoder_keys = [k for k in voxtell if k.startswith("encoder.")]
    assert report.copied_tensors == len(encoder_keys) > 0
    for key in encoder_keys:
        assert torch.equal(saved[key], voxtell[key]), key
    assert saved["decoder.seg_layers.0.weight"].shape[0] == 3


def test_cli_reports_user_errors(tmp_path, capsys):
    assert cli_main([str(tmp_path / "missing.json")]) == 1
    assert "does not exist" in capsys.readouterr().err
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"datasets": [], "num_epocs": 3}))
    assert cli_main([str(config)]) == 1
    assert "num_epocs" in capsys.readouterr().err
    assert cli_main([str(config), "--set", "num_epocs"]) == 1
    assert "key=value" in capsys.readouterr().err
    config.write_text(json.dumps({"deep_supervision_weights": [1, 0.5]}))
    assert cli_main([str(config)]) == 1
    assert "one weight per decoder scale (5 for 6 stages)" in capsys.readouterr().err
    config.write_text(json.dumps({"hard_negative_probability": 1.5}))
    assert cli_main([str(config)]) == 1
    assert "hard_negative_probability must be between 0 and 1" in capsys.readouterr().err
    config.write_text(json.dumps({"empty_target_smooth": -1}))
    assert cli_main([str(config)]) == 1
    assert "empty_target_smooth must be >= 0" in capsys.readouterr().err


def test_prompts_subcommand_lists_every_prompt_the_bank_needs(runs):
    out = runs["root"] / "prompts.txt"
    assert cli_main(["prompts", str(runs["root"] / "config.json"), "--out", str(out)]) == 0
    prompts = out.read_text().splitlines()
    assert {"left kidney", "left renal organ", "kidneys", "bilateral kidneys", "liver", "brain"} <= set(prompts)
    assert prompts == sorted(set(prompts))


def test_encoder_transfer_checks_the_nnunet_plan_and_names_mismatches(runs, tmp_path):
    from nnunetv2.run.load_pretrained_weights import load_pretrained_weights

    from Training.encoder_transfer import build_resenc_unet, plan_architecture
    from VoxTellCore.errors import InputError

    plans = load_model(runs["single"]).config.to_plans()
    plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["n_conv_per_stage_decoder"] = [1] * 5
    plans["configurations"]["3d_lowres"] = {"inherits_from": "3d_fullres", "patch_size": [16, 16, 16]}
    path = tmp_path / "nnUNetResEncUNetPlans.json"
    path.write_text(json.dumps(plans))
    out = tmp_path / "resenc.pth"
    report = export_encoder_transfer(runs["single"], out, num_classes=4, plans=path, configuration="3d_lowres")
    assert report.copied_tensors > 0 and report.notes == []
    _, arch = plan_architecture(plans, "3d_lowres")
    network = build_resenc_unet(load_model(runs["single"]), 4, arch=arch)
    load_pretrained_weights(network, out)  # nnU-Net's own loader accepts it
    stem = "encoder.stem.convs.0.conv.weight"
    assert torch.equal(network.state_dict()[stem], _weights(runs["single"])[stem])

    arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    arch["kernel_sizes"][0] = [1, 3, 3]
    arch["features_per_stage"][5] = 16
    arch["strides"][5] = [2, 2, 2]
    path.write_text(json.dumps(plans))
    with pytest.raises(InputError) as error:
        export_encoder_transfer(runs["single"], tmp_path / "bad.pth", plans=path, input_channels=4)
    message = str(error.value)
    assert "input channels: the dataset has 4, VoxTell's encoder takes 1" in message
    assert "kernel_sizes: plan" in message and "(stage 0)" in message
    assert "features_per_stage: plan [2, 4, 8, 8, 8, 16], VoxTell [2, 4, 8, 8, 8, 8] (stage 5)" in message
    assert "strides" not in message and not (tmp_path / "bad.pth").exists()
    arch.update(n_stages=5, features_per_stage=arch["features_per_stage"][:5], kernel_sizes=[[3, 3, 3]] * 5)
    path.write_text(json.dumps(plans))
    with pytest.raises(InputError, match="n_stages: plan 5, VoxTell 6"):
        export_encoder_transfer(runs["single"], tmp_path / "bad.pth", plans=path)


def test_stop_file_saves_the_state_and_resume_finishes_the_run(runs, monkeypatch):
    from Training import trainer as trainer_module

    output = runs["root"] / "stopped"
    step = trainer_module.Trainer.train_step

    def step_then_request_stop(self, batch):
        if self.iteration == 4:  # as the SLURM script does when the job's time is nearly up
            (self.fold_dir / trainer_module.STOP_FILE).touch()
        return step(self, batch)

    monkeypatch.setattr(trainer_module, "SYNC_EVERY", 2)  # read at iterations 2, 3 (epoch end), 5: stops at 5

    monkeypatch.setattr(trainer_module.Trainer, "train_step", step_then_request_stop)
    config = TrainingConfig.from_file(runs["root"] / "config.json")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the reference run: bitwise comparable
    try:
        assert train(config, output) is None
        assert torch.load(output / "fold_0" / "checkpoint_latest.pth", weights_only=True)["iteration"] == 5
        monkeypatch.setattr(trainer_module.Trainer, "train_step", step)
        resumed = train(config, output, resume=True)  # the stale STOP file is removed at the start
    finally:
        torch.set_num_threads(threads)
    reference = _weights(runs["single"])
    assert all(torch.equal(reference[k], v) for k, v in _weights(resumed).items())
