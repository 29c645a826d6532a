"""The preprocessing step (split, resume, refusal of an incomplete cache), the compressed cache,
negatives known to be absent, background checkpoints and the SLURM-facing helpers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from Training.checkpointing import BackgroundWriter, latest_path, save_training_state
from Training.config import TrainingConfig
from Training.data.cache import CachedArray, chunking, write_array
from Training.data.negatives import can_be_visible, out_of_view_negatives
from Training.data.prepare import prepare_data
from Training.data.preprocess import preprocess, work_part
from Training.data.sources import dataset_regions
from Training.data.vocabulary import Vocabulary
from Training.distributed import default_master_port
from Training.sampling import BatchSampler, crop_with_padding
from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellModel
from test_training_support import TINY_MODEL, write_dataset

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "default.json"
# Structures any abdominal CT shows (independent of the vocabulary's region table): none may be
# the negative prompt of an abdominal dataset that does not annotate it.
ABDOMINAL_CT_SHOWS = {"liver", "spleen", "pancreas", "left kidney", "right kidney", "gallbladder", "stomach",
                      "duodenum", "colon", "small intestine", "aorta", "inferior vena cava", "l1 vertebra",
                      "t12 vertebra", "bones", "skin", "left adrenal gland", "right adrenal gland", "spinal cord",
                      "left iliopsoas", "right iliopsoas", "portal vein and splenic vein", "lung", "left lung",
                      "right lung", "heart", "esophagus", "cerebrospinal fluid"}


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "Training.cli", *args]


def _cache_contents(root: Path) -> dict[str, object]:
    """Everything a cache holds, decoded: arrays, locations, metadata."""
    contents = {}
    for meta_file in sorted(root.glob("*/*.json")):
        stem = meta_file.with_suffix("")
        with np.load(f"{stem}_locations.npz") as locations:
            contents[str(stem.relative_to(root))] = (
                json.loads(meta_file.read_text()),
                np.asarray(CachedArray(f"{stem}_image.b2nd")), np.asarray(CachedArray(f"{stem}_seg.b2nd")),
                {k: locations[k] for k in locations.files},
            )
    return contents


def _assert_same_cache(a: Path, b: Path) -> None:
    first, second = _cache_contents(a), _cache_contents(b)
    assert first.keys() == second.keys() and first
    for key in first:
        meta_a, image_a, seg_a, loc_a = first[key]
        meta_b, image_b, seg_b, loc_b = second[key]
        assert meta_a == meta_b, key
        assert np.array_equal(image_a, image_b) and np.array_equal(seg_a, seg_b), key
        assert loc_a.keys() == loc_b.keys() and all(np.array_equal(loc_a[k], loc_b[k]) for k in loc_a), key


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two small nnU-Net datasets and a config naming them; the one-process cache as reference."""
    root = tmp_path_factory.mktemp("corpus")
    first = write_dataset(root / "a", cases=5)
    second = write_dataset(root / "b", cases=4, with_liver=(1, 2))
    datasets = [{"name": "Dataset900_Tiny", "path": str(first), "region": "abdomen"},
                {"name": "Dataset901_Tiny", "path": str(second), "region": "abdomen"}]
    (root / "config.json").write_text(json.dumps({"datasets": datasets, "preprocessed_dir": "unused", "seed": 3}))
    report = preprocess(datasets, root / "reference", seed=3, progress=False)
    assert (report.written, report.already_cached, report.failed) == (9, 0, [])
    return {"root": root, "datasets": datasets, "config": root / "config.json", "reference": root / "reference"}


def test_a_dataset_name_reused_for_other_files_reads_the_new_files(tmp_path):
    """In one process, a second config whose dataset has the same name but another folder (the
    next run, a test) reads that folder, not the first one (the opened datasets were cached by name)."""
    for run, cases in (("first", 2), ("second", 3)):
        folder = write_dataset(tmp_path / run, cases=cases)
        spec = {"name": "Dataset900_Tiny", "path": str(folder), "region": "abdomen"}
        report = preprocess([spec], tmp_path / f"{run}_cache", seed=3, progress=False)
        assert (report.written, report.failed) == (cases, [])
        if run == "first":
            shutil.rmtree(folder)


def test_preprocess_split_over_two_processes_gives_the_one_process_cache(corpus):
    out = corpus["root"] / "split"
    parts = [subprocess.Popen(_cli("preprocess", str(corpus["config"]), "--set", f'preprocessed_dir="{out}"',
                                   "--parts", "2", "--part", str(i), "--no-progress"),
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]  # both at once, as two nodes would
    outputs = [p.communicate(timeout=300)[0] for p in parts]
    assert [p.returncode for p in parts] == [0, 0], outputs
    assert "5 case(s) preprocessed" in outputs[0] and "4 case(s) preprocessed" in outputs[1]
    _assert_same_cache(out, corpus["reference"])
    # and once more with two worker processes in one part: nothing left to do, then a fresh cache
    assert preprocess(corpus["datasets"], out, seed=3, workers=2, progress=False).already_cached == 9
    fresh = corpus["root"] / "workers"
    assert preprocess(corpus["datasets"], fresh, seed=3, workers=2, progress=False).written == 9
    _assert_same_cache(fresh, corpus["reference"])


def test_preprocess_resumes_after_a_kill_and_training_refuses_an_incomplete_cache(corpus):
    out = corpus["root"] / "killed"
    process = subprocess.Popen(_cli("preprocess", str(corpus["config"]), "--set", f'preprocessed_dir="{out}"',
                                    "--no-progress"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(out.glob("*/*.json")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.002)
    process.kill()
    process.wait()
    done = {p.stem for p in out.glob("Dataset900_Tiny/*.json")}
    assert 0 < len(done) < 5, "the kill should land between the first and the last case"
    vocabulary = Vocabulary()
    with pytest.raises(InputError, match=r"incomplete: \d+ of 9 case\(s\) missing.*voxtell-train preprocess"):
        prepare_data(corpus["datasets"], vocabulary, out, 0.0, 3)
    # damage a finished case as a crash of the file system could: a truncated array is redone too
    victim = out / "Dataset900_Tiny" / f"{sorted(done)[0]}_image.b2nd"
    victim.write_bytes(victim.read_bytes()[:100])
    report = preprocess(corpus["datasets"], out, seed=3, progress=False)
    assert report.written == 9 - len(done) + 1 and report.already_cached == len(done) - 1
    _assert_same_cache(out, corpus["reference"])
    assert not [p for p in out.rglob(".*") if p.is_file()], "no temporaries left behind"
    assert len(prepare_data(corpus["datasets"], vocabulary, out, 0.0, 3).train) == 9


def test_preprocess_parts_come_from_arguments_slurm_arrays_or_ranks():
    assert work_part(1, 4, {}) == (1, 4)
    assert work_part(env={"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
                          "SLURM_ARRAY_TASK_COUNT": "4"}) == (2, 4)
    assert work_part(env={"RANK": "3", "WORLD_SIZE": "8"}) == (3, 8)
    assert work_part(env={}) == (0, 1)
    with pytest.raises(InputError, match="part 4 of 4"):
        work_part(4, 4, {})


def test_compressed_crops_equal_uncompressed_ones(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 70, 90, 100)).astype(np.float32)
    channels = (rng.random((3, 70, 90, 100)) > 0.7).astype(np.uint8)
    labels = rng.integers(0, 300, (1, 70, 90, 100)).astype(np.uint16)
    for name, array in (("image", image), ("channels", channels), ("labels", labels)):
        write_array(tmp_path / f"{name}.b2nd", array)
        cached = CachedArray(tmp_path / f"{name}.b2nd")
        assert cached.shape == array.shape and cached.dtype == array.dtype
        assert np.array_equal(np.asarray(cached), array)
        for _ in range(20):  # inside, across chunk borders, and partly outside (zero padding)
            start = rng.integers(-20, 80, 3)
            size = tuple(int(s) for s in rng.integers(1, 60, 3))
            assert np.array_equal(crop_with_padding(cached, start, size), crop_with_padding(array, start, size))
    assert chunking((1, 350, 512, 512)) == ((1, 64, 64, 64), (1, 32, 32, 32))
    assert chunking((3, 20, 512, 40)) == ((1, 20, 64, 40), (1, 20, 32, 32))
    assert (tmp_path / "image.b2nd").stat().st_size < image.nbytes


def _decathlon_stub(root: Path, name: str, labels: dict[str, int], cases: int) -> Path:
    """A tiny nnU-Net raw dataset with the Decathlon label names: label 1 in every case, the
    others (a tumour) only in the first case."""
    folder = root / name
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    (folder / "dataset.json").write_text(json.dumps({"labels": {"background": 0, **labels}, "file_ending": ".nii.gz"}))
    grid = np.indices((24, 24, 24))
    for case in range(cases):
        label_map = np.zeros((24, 24, 24), np.uint8)
        for value in labels.values():
            if value == 1 or case == 0:
                label_map[sum((g - c) ** 2 for g, c in zip(grid, (6 * value, 12, 12))) <= 9] = value
        image = 100 + 50.0 * label_map + np.random.default_rng(case).standard_normal(label_map.shape)
        nibabel.save(nibabel.Nifti1Image(image.astype(np.float32), np.eye(4)),
                     folder / "imagesTr" / f"c{case}_0000.nii.gz")
        nibabel.save(nibabel.Nifti1Image(label_map, np.eye(4)), folder / "labelsTr" / f"c{case}.nii.gz")
    return folder


def test_default_config_negatives_are_never_visible_in_their_dataset(tmp_path):
    config = json.loads(DEFAULT_CONFIG.read_text())
    vocabulary = Vocabulary.load([DEFAULT_CONFIG.parent / path for path in config["vocabulary"]])
    assert all(concept.regions for concept in vocabulary.concepts.values()), "every shipped concept has regions"
    labels = {"Dataset003_Liver": {"liver": 1, "cancer": 2}, "Dataset009_Spleen": {"spleen": 1}}
    datasets = []
    for spec in config["datasets"]:
        assert dataset_regions(spec), f"{spec['name']} declares no region"
        if spec["name"] in labels:
            datasets.append({**spec, "path": str(_decathlon_stub(tmp_path, spec["name"], labels[spec["name"]], 3))})
    preprocess(datasets, tmp_path / "cache", 0, progress=False)
    data = prepare_data(datasets, vocabulary, tmp_path / "cache", 0.0, 0)
    sampler = BatchSampler(data.train, data.fallback_negatives, patch_size=(16, 16, 16), batch_size=4, positives=2,
                           negatives=1, default_name_probability=0.25, foreground_probability=0.5, augmenter=None,
                           seed=0, rank=0)
    drawn = {}
    for i in range(60):
        batch = sampler.batch(i)
        for prompts, weights in zip(batch.prompts, batch.weight):
            drawn.setdefault(prompts[2], weights[2] > 0)
    names = {n: c for c in vocabulary.concepts.values() for n in c.names}
    for spec in datasets:
        regions = dataset_regions(spec)
        negatives = data.fallback_negatives[spec["name"]]
        assert len(negatives) >= 10, "the out-of-view concepts of the shipped vocabulary"
        for target in negatives:
            concept = vocabulary.concepts[target.name]
            assert not can_be_visible(concept.regions, regions) and concept.name not in ABDOMINAL_CT_SHOWS
    negative_names = {n for spec in datasets for t in data.fallback_negatives[spec["name"]] for n in t.names}
    known_absent = {n for case in data.train for t in case.negatives for n in t.names}
    assert drawn and set(drawn) <= negative_names | known_absent and all(drawn.values())
    assert not {names[n].name for n in set(drawn) - known_absent} & ABDOMINAL_CT_SHOWS
    assert "liver tumor" in drawn  # labelled in the dataset, absent in that case: a safe negative


def test_shipped_vocabulary_regions_and_wording_fit_what_scans_show():
    vocabulary = Vocabulary.load([REPO / "Resources" / "vocabulary" / "voxtell_concepts.json"])
    chest_negatives = {t.name for t in out_of_view_negatives(vocabulary, ("thorax",), set())}
    abdomen_negatives = {t.name for t in out_of_view_negatives(vocabulary, ("abdomen",), set())}
    assert "small intestine" not in chest_negatives  # small bowel loops reach the lower thorax of a chest CT
    assert not {"left humerus", "right humerus"} & abdomen_negatives  # arms lie beside the abdomen in many scans
    assert "infarct" not in vocabulary.concepts["stroke"].names  # splenic and renal infarcts show in abdominal CT
    assert "brain" in abdomen_negatives  # the rule still gives abdominal datasets negatives


def test_a_dataset_without_a_safe_negative_gets_none_and_it_is_counted(tmp_path):
    folder = _decathlon_stub(tmp_path, "Dataset009_Spleen", {"spleen": 1}, 2)
    datasets = [{"name": "Dataset009_Spleen", "path": str(folder)}]  # no region: its field of view is unknown
    preprocess(datasets, tmp_path / "cache", 0, progress=False)
    vocabulary = Vocabulary.load([REPO / "Resources" / "vocabulary" / "voxtell_concepts.json"])
    data = prepare_data(datasets, vocabulary, tmp_path / "cache", 0.0, 0)
    assert data.fallback_negatives == {"Dataset009_Spleen": []}
    assert data.cases_without_negatives() == {"Dataset009_Spleen": (2, 2)}
    sampler = BatchSampler(data.train, data.fallback_negatives, patch_size=(16, 16, 16), batch_size=3, positives=2,
                           negatives=1, default_name_probability=1.0, foreground_probability=0.0, augmenter=None,
                           seed=0, rank=0)
    batch = sampler.batch(0)
    assert batch.skipped_negatives == 3 and batch.weight[:, 2].eq(0).all() and batch.weight[:, :2].eq(1).all()
    assert [p[2] for p in batch.prompts] == [p[1] if p[2] == p[1] else p[0] for p in batch.prompts]
    with pytest.raises(InputError, match="regions must be one or a list of"):
        dataset_regions({"name": "x", "region": "belly"})


def test_checkpoint_is_a_snapshot_written_in_the_background(tmp_path):
    config = TrainingConfig.from_dict({"model": TINY_MODEL, "patch_size": [32, 32, 32]})
    model = VoxTellModel(config.network_config())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(1, 1, 32, 32, 32), torch.randn(1, 1, 16)).sum().backward()
    optimizer.step()  # momentum buffers exist
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    momentum = [s["momentum_buffer"].clone() for s in optimizer.state.values()]
    writer = BackgroundWriter()
    save_training_state(tmp_path, model, optimizer, torch.amp.GradScaler("cuda", enabled=False), 7,
                        config.to_dict(), writer)
    with torch.no_grad():  # training goes on while the file is written
        for parameter in model.parameters():
            parameter.add_(1.0)
        for state in optimizer.state.values():
            state["momentum_buffer"].mul_(0)
    writer.wait()
    saved = torch.load(latest_path(tmp_path), weights_only=True)
    assert saved["iteration"] == 7
    assert all(torch.equal(saved["network_weights"][k], v) for k, v in expected.items())
    assert all(torch.equal(a, b) for a, b in zip(saved["optimizer_state"]["state"].values(), momentum)
               for a, b in [(a["momentum_buffer"], b)])

    failing = BackgroundWriter()
    failing.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.wait()


def test_rendezvous_port_follows_the_slurm_job_and_config_defaults():
    assert default_master_port({"MASTER_PORT": "1234", "SLURM_JOB_ID": "5"}) == 1234
    assert default_master_port({"SLURM_JOB_ID": "4711"}) == 24711
    assert default_master_port({"SLURM_JOB_ID": "123456"}) == 23456
    assert default_master_port({}) == 29500
    config = TrainingConfig()
    assert (config.checkpoint_every_epochs, config.compile, config.mirror_axes) == (50, False, [0, 1])
    with pytest.raises(InputError, match="checkpoint_every_epochs"):
        TrainingConfig.from_dict({"checkpoint_every_epochs": 0})
