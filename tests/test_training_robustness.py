"""Training on real data: cases with nothing to prompt, failed cases, the manifest, durable checkpoints."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from Training import trainer as trainer_module
from Training.checkpointing import latest_path, load_training_state, previous_path, write_state_durably
from Training.cli import main as cli_main
from Training.config import TrainingConfig
from Training.data.cache import read_case
from Training.data.manifest import MANIFEST
from Training.data.prepare import prepare_data
from Training.data.preprocess import preprocess
from Training.data.vocabulary import Vocabulary
from Training.distributed import DistributedContext
from Training.sampling import BatchSampler
from Training.trainer import shared_manifest, train
from VoxTellCore.errors import InputError
from test_training_support import write_config, write_dataset

SHAPE = (24, 24, 24)


def _rex_dataset(root: Path, annotated: dict[str, bool]) -> Path:
    """ReXGroundingCT layout; each scan has one finding, with voxels or (partially labelled) without."""
    (root / "images_flat" / "train").mkdir(parents=True)
    (root / "segmentations" / "train").mkdir(parents=True)
    entries = []
    for name, has_voxels in annotated.items():
        image = 100 + np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE) % 11
        mask = np.zeros((*SHAPE, 1), np.uint8)
        mask[8:14, 8:14, 8:14, 0] = has_voxels
        nibabel.save(nibabel.Nifti1Image(image, np.eye(4)), root / "images_flat" / "train" / name)
        nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), root / "segmentations" / "train" / name)
        entries.append({"name": name, "findings": {"0": "Nodule in the right upper lobe"}})
    (root / "dataset.json").write_text(json.dumps({"train": entries}))
    return root


def _sampler(cases, fallback) -> BatchSampler:
    return BatchSampler(cases, fallback, patch_size=(16, 16, 16), batch_size=2, positives=2, negatives=1,
                        default_name_probability=0.25, foreground_probability=0.5, augmenter=None, seed=0, rank=0)


def test_a_case_with_no_positive_and_no_safe_negative_is_left_out_and_counted(tmp_path):
    """A partially labelled scan whose only finding has no voxels has nothing to prompt: drawing
    it crashed the sampler (``high <= 0``), at the same iteration after every resume."""
    rex = _rex_dataset(tmp_path / "rex", {"train_1_a_1.nii.gz": True, "train_2_a_1.nii.gz": False})
    datasets = [{"name": "ReX", "type": "rexgroundingct", "path": str(rex)}]
    preprocess(datasets, tmp_path / "cache", 0, progress=False)
    data = prepare_data(datasets, Vocabulary(), tmp_path / "cache", 0.0, 0)
    sampler = _sampler(data.train, data.fallback_negatives)
    for iteration in range(10):  # every batch draws from the annotated scan only
        assert sampler.batch(iteration).weight.tolist() == [[1.0, 1.0, 0.0]] * 2
    assert [c.case_id for c in data.train] == ["train_1_a_1"]
    assert data.unpromptable == {"ReX": ["train_2_a_1"]}
    # the sampler refuses such a case instead of drawing from an empty set
    unpromptable = read_case("ReX", tmp_path / "cache" / "ReX", "train_2_a_1", [])
    with pytest.raises(ValueError, match="no structure present and no safe negative.*ReX/train_2_a_1"):
        _sampler(data.train + [unpromptable], data.fallback_negatives)


def _corrupt(path: Path) -> bytes:
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 3])  # a truncated transfer
    return original


def test_failed_cases_are_reported_excluded_and_retried(tmp_path, capsys):
    """One unreadable scan: preprocess still exits 0 (a SLURM afterok chain goes on), names it, marks
    it; training leaves it out and says so; a rerun after the fix takes it in."""
    config = write_config(tmp_path)  # preprocesses the 3 cases of the tiny dataset
    raw = tmp_path / "Dataset900_Tiny" / "imagesTr" / "case003_0000.nii.gz"
    shutil.copy(raw.with_name("case000_0000.nii.gz"), raw)
    shutil.copy(tmp_path / "Dataset900_Tiny" / "labelsTr" / "case000.nii.gz",
                tmp_path / "Dataset900_Tiny" / "labelsTr" / "case003.nii.gz")
    original = _corrupt(raw)
    assert cli_main(["preprocess", str(config), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 case(s) preprocessed, 3 already cached, 1 FAILED" in out and "Dataset900_Tiny/case003:" in out
    marker = tmp_path / "preprocessed" / "Dataset900_Tiny" / "case003.failed.txt"
    assert marker.is_file() and "Error" in marker.read_text()

    settings = TrainingConfig.from_file(config, ["num_epochs=1", "iterations_per_epoch=1"])
    assert train(settings, tmp_path / "run") is not None
    log = (tmp_path / "run" / "fold_0" / "training_log.txt").read_text()
    assert "Dataset900_Tiny: 1 case(s) excluded, preprocessing failed on them" in log
    assert "3 training and 0 validation cases" in log

    raw.write_bytes(original)  # fixed: the rerun preprocesses it and training takes it in
    assert cli_main(["preprocess", str(config), "--no-progress"]) == 0
    assert "1 case(s) preprocessed, 3 already cached" in capsys.readouterr().out and not marker.exists()
    data = prepare_data(settings.datasets, Vocabulary.load(settings.vocabulary), settings.preprocessed_dir, 0.0, 1)
    assert len(data.train) == 4 and data.excluded == {}


def test_training_reads_one_manifest_and_needs_no_raw_data(tmp_path):
    """Rank 0 writes the manifest; the other ranks read only it: neither the raw data nor a case
    JSON is needed (the case arrays are, at batch time)."""
    config = TrainingConfig.from_file(write_config(tmp_path))
    ranks = [DistributedContext(rank=r, world_size=1) for r in (0, 1)]
    (Path(config.preprocessed_dir) / MANIFEST).unlink()  # written when write_config listed the prompts
    with pytest.raises(InputError, match="no current manifest"):
        shared_manifest(config, ranks[1])  # rank 1 never reads the cache itself
    shutil.rmtree(tmp_path / "Dataset900_Tiny")  # the raw data are not mounted on training nodes
    reference = shared_manifest(config, ranks[0])
    assert (Path(config.preprocessed_dir) / MANIFEST).is_file()
    for meta in Path(config.preprocessed_dir).glob("*/*.json"):
        meta.unlink()
    manifest = shared_manifest(config, ranks[1])
    assert manifest == reference and sorted(manifest["datasets"]["Dataset900_Tiny"]["cases"]) == [
        "case000", "case001", "case002"]
    data = prepare_data(config.datasets, Vocabulary.load(config.vocabulary), config.preprocessed_dir, 0.0, 1, manifest)
    batch = _sampler(data.train, data.fallback_negatives).batch(0)
    assert batch.image.shape == (2, 1, 16, 16, 16)


def test_a_cached_case_deleted_by_hand_after_the_manifest_is_found_before_training(tmp_path):
    """The manifest was current when written; a case's array removed later made training fail on
    that case whenever the sampler drew it. Rank 0 now sees it at the start and names the fix."""
    config = TrainingConfig.from_file(write_config(tmp_path))
    rank0 = DistributedContext(rank=0, world_size=1)
    shared_manifest(config, rank0)
    (Path(config.preprocessed_dir) / "Dataset900_Tiny" / "case001_image.b2nd").unlink()
    with pytest.raises(InputError, match=r"incomplete: 1 of 3 case\(s\) missing.*Dataset900_Tiny/case001.*preprocess"):
        shared_manifest(config, rank0)
    with pytest.raises(InputError, match="incomplete"):
        prepare_data(config.datasets, Vocabulary.load(config.vocabulary), config.preprocessed_dir, 0.0, 1)


def test_a_checkpoint_keeps_the_previous_state_and_resume_takes_the_newest_complete_one(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(a), str(b))),
                                                     real_replace(a, b))[1])
    latest, previous = latest_path(tmp_path), previous_path(tmp_path)
    states = [{"network_weights": {"w": torch.full((3,), float(i))}, "optimizer_state": {}, "grad_scaler_state": {},
               "iteration": i} for i in range(3)]
    for state in states:
        write_state_durably(latest, state)
    # the new state is on disk before the old one moves; the folder after the renames
    temporary = events[-4][1]
    assert events[-4:] == [("fsync", temporary), ("replace", str(latest), str(previous)),
                           ("replace", temporary, str(latest)), ("fsync", str(latest.parent))]
    assert load_training_state(tmp_path)["iteration"] == 2

    messages = []
    original = _corrupt(latest)  # the node died while the newest state was written
    assert load_training_state(tmp_path, warn=messages.append)["iteration"] == 1
    assert "skipped an incomplete state" in messages[0] and "checkpoint_latest.pth" in messages[0]
    latest.write_bytes(original)
    torch.save({"iteration": 5}, latest)  # complete file, but not a training state
    assert load_training_state(tmp_path, warn=messages.append)["iteration"] == 1
    latest.unlink()  # died between the two renames
    assert load_training_state(tmp_path)["iteration"] == 1
    previous.write_bytes(b"garbage")
    with pytest.raises(InputError, match="no training state .* loads"):
        load_training_state(tmp_path)


def test_state_is_saved_by_wall_clock_time_and_resume_skips_a_corrupted_newest(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config_path = write_config(tmp_path, num_epochs=2, iterations_per_epoch=3, checkpoint_every_epochs=1000)
        reference = train(TrainingConfig.from_file(config_path), tmp_path / "reference")
        saved = []
        save = trainer_module.Trainer.save_state
        monkeypatch.setattr(trainer_module.Trainer, "save_state", lambda self: (saved.append(self.iteration),
                                                                               save(self))[1])
        output = tmp_path / "timed"
        timed = TrainingConfig.from_file(config_path, ["stop_after_iterations=4", "checkpoint_every_minutes=1e-9"])
        assert train(timed, output) is None
        assert saved == [1, 2, 3, 4, 4]  # every iteration (the time is always up), then the stop ...
        # ... which does not write iteration 4 again: the two files hold the last two states
        assert [torch.load(p, weights_only=True)["iteration"] for p in (latest_path(output), previous_path(output))] \
            == [4, 3]
        saved.clear()
        # a run with the default 30 minutes saves only at epochs' ends (here: never) and at the stop
        assert train(TrainingConfig.from_file(config_path, ["stop_after_iterations=2"]), tmp_path / "plain") is None
        assert saved == [2]
        _corrupt(latest_path(output))
        resumed = train(TrainingConfig.from_file(config_path), output, resume=True)  # from the previous state
    finally:
        torch.set_num_threads(threads)
    expected = torch.load(reference / "fold_0" / "checkpoint_final.pth", weights_only=True)["network_weights"]
    weights = torch.load(resumed / "fold_0" / "checkpoint_final.pth", weights_only=True)["network_weights"]
    assert all(torch.equal(expected[k], v) for k, v in weights.items())


def test_losses_are_read_in_one_all_reduce_per_ten_iterations_not_every_step(tmp_path, monkeypatch):
    """A host read of the loss every step stalls the GPU; they are read with the other ranks' in
    one all-reduce every SYNC_EVERY iterations (and at an epoch's end), and every one is logged."""
    reductions = []
    real_sum = DistributedContext.sum_floats
    monkeypatch.setattr(DistributedContext, "sum_floats", lambda self, values: (reductions.append(len(values)),
                                                                                real_sum(self, values))[1])
    config = TrainingConfig.from_file(write_config(tmp_path, num_epochs=1, iterations_per_epoch=12))
    assert train(config, tmp_path / "run") is not None
    # 10 iterations, then the 2 left at the epoch's end: each loss and skipped count, and the STOP vote
    assert reductions == [2 * 10 + 1, 2 * 2 + 1]
    records = [json.loads(line) for line in (tmp_path / "run" / "fold_0" / "iterations.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(12)) and all(np.isfinite(r["loss"]) for r in records)


def test_compile_wraps_the_ddp_network_so_gradient_all_reduce_overlaps_the_backward(tmp_path, monkeypatch):
    calls = []

    class RecordingDDP(torch.nn.Module):
        def __init__(self, module, device_ids=None):
            super().__init__()
            self.module = module
            calls.append("DDP")

    monkeypatch.setattr(trainer_module, "DistributedDataParallel", RecordingDDP)
    monkeypatch.setattr(torch, "compile", lambda module: (calls.append(f"compile {type(module).__name__}"), module)[1])
    monkeypatch.setattr(DistributedContext, "barrier", lambda self: None)  # two ranks without a process group
    config = TrainingConfig.from_file(write_config(tmp_path), ["compile=true"])
    trainer = trainer_module.Trainer(config, tmp_path / "run", DistributedContext(rank=0, world_size=2))
    assert calls == ["DDP", "compile RecordingDDP"] and trainer.network.module is trainer.model


def test_skipped_negatives_and_losses_are_reduced_over_every_rank(tmp_path):
    class TwoRanks(DistributedContext):  # rank 1's loss and skipped slots are rank 0's plus one
        def sum_floats(self, values):
            return [2 * v + 1 for v in values[:-1]] + [values[-1]]

    ctx = TwoRanks(rank=0, world_size=2)
    trainer = type("Stub", (), {"ctx": ctx, "stop_requested": lambda self: False})()
    pending = [({"iteration": i}, torch.tensor(0.5 + i), skipped) for i, skipped in enumerate([0, 2])]
    records, stop = trainer_module.Trainer._flush(trainer, pending)
    assert [r["skipped_negatives"] for r in records] == [1, 5] and not stop
    assert [r["loss"] for r in records] == [1.0, 2.0]  # the mean over the ranks
