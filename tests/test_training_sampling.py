"""Sampler statistics, augmentation laterality, vocabulary, ReXGroundingCT and instance prompts."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

from Training.augmentation import DEFAULT_MIRROR_AXES, LEFT_RIGHT_AXIS, Augmenter, input_patch_size
from Training.data.instances import location_prompts
from Training.data.prepare import prepare_data
from Training.data.preprocess import preprocess
from Training.data.vocabulary import Vocabulary
from Training.data.cache import CaseRecord
from Training.data.targets import Target
from Training.sampling import BatchSampler, sample_prompts
from test_training_support import VOCABULARY, write_dataset

DATASET = "Dataset900_Tiny"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampling")
    dataset = write_dataset(root, cases=3, with_liver=(0,))
    (root / "vocabulary.json").write_text(json.dumps(VOCABULARY))
    vocabulary = Vocabulary.load([root / "vocabulary.json"])
    datasets = [{"name": DATASET, "path": str(dataset), "region": ["abdomen", "pelvis"]}]
    preprocess(datasets, root / "cache", 3, progress=False)
    return prepare_data(datasets, vocabulary, root / "cache", 0.0, 3)


def test_cache_matches_inference_orientation_and_lists_present_labels(prepared):
    case = prepared.train[0]
    image, segmentation = (np.asarray(a) for a in case.arrays())
    assert image.dtype == np.float32 and image.shape[0] == 1 and segmentation.shape[0] == 1
    assert abs(float(image.mean())) < 1e-3 and abs(float(image.std()) - 1) < 1e-3  # z-scored crop
    assert case.present == (1, 2, 3)
    assert prepared.train[1].present == (1, 2)
    # network axis 2 is RAS x: indices grow towards the patient's right
    left = np.argwhere(segmentation[0] == 1)[:, 2].mean()
    right = np.argwhere(segmentation[0] == 2)[:, 2].mean()
    assert right > left


def test_vocabulary_targets_unions_and_leftover_labels(prepared):
    case = prepared.train[1]  # no liver
    positives = {t.name: t.labels for t in case.positives}
    # right_kidney only appears inside the "kidneys" union, so it is no concept of its own
    assert positives == {"left kidney": (1,), "kidneys": (1, 2)}
    assert [t.name for t in case.negatives] == ["liver"]
    # never annotated by the dataset: only a concept outside its field of view may be a negative
    assert [t.name for t in prepared.fallback_negatives[DATASET]] == ["brain"]


def test_sampler_prompt_counts_naming_split_and_foreground_rate(prepared):
    sampler = BatchSampler(prepared.train, prepared.fallback_negatives, patch_size=(32, 32, 32), batch_size=4,
                           positives=2, negatives=1, default_name_probability=0.25, foreground_probability=0.85,
                           augmenter=None, seed=11, rank=0)
    defaults = rephrased = foreground = samples = 0
    for iteration in range(150):
        batch = sampler.batch(iteration)
        assert batch.target.shape == (4, 3, 32, 32, 32) and batch.image.shape == (4, 1, 32, 32, 32)
        assert torch.all(batch.weight == 1)
        for b, prompts in enumerate(batch.prompts):
            samples += 1
            case_positive_names = {n for c in prepared.train for t in c.positives for n in t.names}
            assert prompts[0] in case_positive_names and prompts[1] in case_positive_names
            assert batch.target[b, 2].sum() == 0, "the negative prompt must have an empty target"
            for prompt in prompts[:2]:  # naming split, over the concepts that have rephrasings
                concept = next((c for c in VOCABULARY["concepts"] if prompt in [c["name"], *c["synonyms"]]), None)
                if concept:
                    defaults += prompt == concept["name"]
                    rephrased += prompt != concept["name"]
            if batch.foreground[b]:
                foreground += 1
                assert batch.target[b, :2, 16, 16, 16].any(), "a foreground patch is centred on a positive"
    assert samples == 600
    assert abs(defaults / (defaults + rephrased) - 0.25) < 0.05
    assert abs(foreground / samples - 0.85) < 0.05
    # deterministic per (seed, rank, iteration), different across ranks
    again = sampler.batch(3)
    assert again.prompts == sampler.batch(3).prompts and torch.equal(again.image, sampler.batch(3).image)
    # background workers produce the very same batches, in order
    from Training.trainer import batch_stream

    streamed = [b.prompts for b in batch_stream(sampler, 2, 7, num_workers=2)]
    assert streamed == [sampler.batch(i).prompts for i in range(2, 7)]
    sampler.rank = 1
    other = [sampler.batch(i).prompts for i in range(5)]
    sampler.rank = 0
    assert other != [sampler.batch(i).prompts for i in range(5)]


def _positive_shares(prepared, balance: bool) -> tuple[dict[str, float], dict[str, float]]:
    """(measured, expected) share of each structure among the positive prompts; expected from the
    rule: a case uniformly, then a structure with weight 1 or 1 / (cases holding it)."""
    sampler = BatchSampler(prepared.train, prepared.fallback_negatives, patch_size=(32, 32, 32), batch_size=8,
                           positives=1, negatives=0, default_name_probability=1.0, foreground_probability=0.0,
                           augmenter=None, seed=5, rank=0, balance_prompts=balance)
    names = [p[0] for i in range(250) for p in sampler.batch(i).prompts]
    holding = {t.name: sum(t.name in [u.name for u in c.positives] for c in prepared.train)
               for c in prepared.train for t in c.positives}
    expected = dict.fromkeys(holding, 0.0)
    for case in prepared.train:
        weights = {t.name: 1 / holding[t.name] if balance else 1.0 for t in case.positives}
        for name, w in weights.items():
            expected[name] += w / sum(weights.values()) / len(prepared.train)
    return {n: names.count(n) / len(names) for n in holding}, expected


def test_balanced_prompts_draw_rare_structures_more_often(prepared):
    uniform, uniform_expected = _positive_shares(prepared, balance=False)
    balanced, balanced_expected = _positive_shares(prepared, balance=True)
    for measured, expected in ((uniform, uniform_expected), (balanced, balanced_expected)):
        assert all(abs(measured[n] - expected[n]) < 0.04 for n in expected), (measured, expected)
    # the liver is in one case of three: balancing about doubles its share
    assert balanced["liver"] > 1.6 * uniform["liver"]


def test_negative_slots_hold_present_structures_until_the_warm_up_ends(prepared):
    sampler = BatchSampler(prepared.train, prepared.fallback_negatives, patch_size=(32, 32, 32), batch_size=4,
                           positives=1, negatives=1, default_name_probability=1.0, foreground_probability=0.0,
                           augmenter=None, seed=3, rank=0, negatives_from_iteration=20)
    present = {t.name for c in prepared.train for t in c.positives}
    for iteration in range(40):
        batch = sampler.batch(iteration)
        assert batch.target.shape[1] == 2  # the same slot count in both phases
        second = [prompts[1] for prompts in batch.prompts]
        if iteration < 20:
            assert all(name in present for name in second) and all(batch.target[:, 1].flatten(1).any(1))
        else:
            assert batch.target[:, 1].sum() == 0, "a negative slot has an empty target"


def _laterality(image: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(correlation of the image with a right-to-left ramp, target centre of mass on axis 2)."""
    ramp = torch.linspace(-1, 1, image.shape[-1]).expand_as(image[0])
    correlation = float(((image[0] - image[0].mean()) * ramp).mean())
    voxels = torch.nonzero(target[0]).float()
    return correlation, float(voxels[:, 2].mean()) if len(voxels) else float("nan")


def _lung_case(case_id: str, present: tuple[int, ...]) -> CaseRecord:
    """Labels: 1 lung parenchyma, 2 upper-lobe nodule, 3 lower-lobe nodule, 4 liver."""
    concepts = [Target(("lung",), (1, 2, 3)), Target(("lung nodule",), (2, 3)), Target(("upper lobe nodule",), (2,)),
                Target(("lower lobe nodule",), (3,)), Target(("liver",), (4,))]
    positives = [t for t in concepts if set(t.labels) & set(present)]
    negatives = [t for t in concepts if not set(t.labels) & set(present)]
    return CaseRecord(DATASET, case_id, Path("."), (8, 8, 8), "labels", present, positives, negatives, False)


def test_hard_negatives_are_the_absent_locations_of_a_present_finding():
    upper_nodule, no_nodule = _lung_case("a", (1, 2)), _lung_case("b", (1, 4))
    sampler = BatchSampler([upper_nodule, no_nodule], {}, patch_size=(8, 8, 8), batch_size=1, positives=1,
                           negatives=1, default_name_probability=1.0, foreground_probability=0.0, augmenter=None,
                           seed=0, rank=0, hard_negative_probability=0.9)
    # "lung" is in every case, so being part of it makes no absent structure hard; the liver is
    # no part of the case's nodules
    assert [t.name for t in sampler.hard_negatives(upper_nodule)] == ["lower lobe nodule"]
    assert sampler.hard_negatives(no_nodule) == []

    def negative_shares(probability: float) -> float:
        rng = np.random.default_rng(1)
        names = [sample_prompts(upper_nodule, [], rng, 1, 1, 1.0, None, sampler.hard_negatives(upper_nodule),
                                probability)[1].text for _ in range(2000)]
        assert set(names) == {"lower lobe nodule", "liver"}
        return names.count("lower lobe nodule") / len(names)

    # drawn uniformly among the 2 absent structures, or hard with the given probability
    assert abs(negative_shares(0.0) - 0.5) < 0.04
    assert abs(negative_shares(0.9) - (0.9 + 0.1 * 0.5)) < 0.03


def test_augmentation_mirrors_every_axis_but_left_right():
    from Training.config import TrainingConfig
    from VoxTellCore.errors import InputError

    assert DEFAULT_MIRROR_AXES == (0, 1) and LEFT_RIGHT_AXIS == 2
    assert TrainingConfig().mirror_axes == [0, 1]
    with pytest.raises(InputError, match="axis 2 is left-right"):
        TrainingConfig.from_dict({"mirror_axes": [0, 2]})
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    def nnunet(patch):
        return tuple(int(e) for e in get_patch_size(patch, *[(-np.pi / 6, np.pi / 6)] * 3, (0.85, 1.25)))

    assert input_patch_size((192, 192, 192)) == nnunet((192, 192, 192)) == (308, 308, 308)
    # for other shapes ours also covers the rotations of the opposite sign: never smaller
    assert all(a >= b for a, b in zip(input_patch_size((64, 96, 128)), nnunet((64, 96, 128))))
    augmenter = Augmenter((32, 32, 32))
    mirrors = [t for t in augmenter.transforms.transforms if "Mirror" in type(t).__name__]
    assert [tuple(m.allowed_axes) for m in mirrors] == [(0, 1)]
    assert not any("Mirror" in type(t).__name__ for t in Augmenter((32, 32, 32), ()).transforms.transforms)
    size = augmenter.input_size
    assert all(s > 32 for s in size)
    ramp = torch.linspace(-1, 1, size[2]).expand(1, *size).clone()
    target = torch.zeros(1, *size, dtype=torch.uint8)
    target[0, :, :, size[2] // 2 + 4:] = 1  # the patient's right half (high axis-2 indices)
    for seed in range(40):
        image, labels = augmenter(ramp.clone(), target.clone(), seed=seed)
        assert image.shape == (1, 32, 32, 32) and labels.shape == (1, 32, 32, 32)
        correlation, centre = _laterality(image, labels)
        assert correlation > 0, f"seed {seed}: image flipped left-right"
        assert np.isnan(centre) or centre > 15.5, f"seed {seed}: target moved to the other side"
        flipped = _laterality(image.flip(-1), labels.flip(-1))
        assert flipped[0] < 0  # the detector does see a mirrored patch
    # the superior-inferior axis is mirrored about half the time (a 30 degree rotation cannot invert a ramp)
    s_ramp = torch.linspace(-1, 1, size[0])[:, None, None].expand(1, *size).clone()

    def superior_correlation(seed: int) -> float:
        image = augmenter(s_ramp.clone(), target.clone(), seed=seed)[0][0]
        return float(((image - image.mean()) * torch.linspace(-1, 1, 32)[:, None, None]).mean())

    inverted = sum(superior_correlation(seed) < 0 for seed in range(40))
    assert 8 <= inverted <= 32, inverted
    # a fixed seed gives the same augmentation, without touching the global random state
    state = torch.get_rng_state()
    first = augmenter(ramp.clone(), target.clone(), seed=5)[0]
    assert torch.equal(first, augmenter(ramp.clone(), target.clone(), seed=5)[0])
    assert torch.equal(state, torch.get_rng_state())


def _lobes() -> tuple[np.ndarray, dict[int, str]]:
    lobes = np.zeros((30, 30, 30), np.uint8)
    lobes[15:, :, :15] = 1  # "right upper lobe" (the layout is arbitrary for these tests)
    lobes[5:15, :, :15] = 2  # right middle lobe
    lobes[:5, :, :15] = 3  # right lower lobe
    lobes[15:, :, 15:] = 4  # left upper lobe
    lobes[:15, :, 15:] = 5  # left lower lobe
    names = {1: "right upper lobe", 2: "right middle lobe", 3: "right lower lobe", 4: "left upper lobe",
             5: "left lower lobe"}
    return lobes, names


def test_instance_prompts_assign_components_to_the_part_holding_most_voxels():
    lobes, names = _lobes()
    lesions = np.zeros_like(lobes, dtype=bool)
    lesions[20:23, 10:13, 3:6] = True  # right upper lobe
    lesions[25:28, 20:23, 8:11] = True  # right upper lobe, second nodule
    lesions[2:8, 5:8, 5:8] = True  # 3 slices in the lower lobe, 3 in the middle lobe ...
    lesions[1, 5:8, 5:8] = True  # ... one more in the lower lobe: mostly lower lobe
    positives, negatives = location_prompts(lesions, lobes, names, "lung nodule")
    by_name = {p.names[0]: p.mask for p in positives}
    assert set(by_name) == {"lung nodule in the right upper lobe", "lung nodule in the right lower lobe",
                            "lung nodule"}
    upper = np.zeros_like(lesions)
    upper[20:23, 10:13, 3:6] = upper[25:28, 20:23, 8:11] = True
    assert np.array_equal(by_name["lung nodule in the right upper lobe"], upper)
    assert by_name["lung nodule in the right lower lobe"].sum() == 4 * 9 + 3 * 9
    assert np.array_equal(by_name["lung nodule"], lesions)
    # the middle lobe holds part of the lower-lobe nodule (it crosses the fissure): not a negative
    assert sorted(n[0] for n in negatives) == ["lung nodule in the left lower lobe", "lung nodule in the left upper lobe"]
    assert "lung nodule located in the right upper lobe" in positives[0].names


def test_location_negatives_are_only_parts_known_to_lack_the_lesion():
    lobes, names = _lobes()
    near_fissure = np.zeros_like(lobes, dtype=bool)
    near_fissure[16:20, 10:13, 3:6] = True  # right upper lobe, one voxel from the middle lobe (row 14)
    positives, negatives = location_prompts(near_fissure, lobes, names, "lung nodule")
    assert [p.names[0] for p in positives] == ["lung nodule in the right upper lobe", "lung nodule"]
    assert sorted(n[0] for n in negatives) == ["lung nodule in the left lower lobe", "lung nodule in the left upper lobe",
                                              "lung nodule in the right lower lobe"]
    # a nodule against the chest wall, outside every lobe mask: its lobe is unknown, so no lobe is a negative
    chest_wall = lobes.copy()
    chest_wall[:, 25:, :] = 0  # the masks stop short of the wall
    outside = np.zeros_like(lobes, dtype=bool)
    outside[20:23, 27:30, 3:6] = True
    positives, negatives = location_prompts(outside, chest_wall, names, "lung nodule")
    assert [p.names[0] for p in positives] == ["lung nodule"] and negatives == []


def test_instance_dataset_and_rexgroundingct_cases(tmp_path):
    lobes, names = _lobes()
    affine = np.eye(4)
    # instance dataset: nnU-Net raw lesion labels + part maps (NIfTI = network array transposed)
    raw = tmp_path / "Dataset901_Nodules"
    (raw / "imagesTr").mkdir(parents=True)
    (raw / "labelsTr").mkdir()
    (tmp_path / "lobes").mkdir()
    (raw / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "nodule": 1}, "file_ending": ".nii.gz"}))
    lesion = np.zeros_like(lobes)
    lesion[20:23, 10:13, 3:6] = 1
    image = 50 + np.arange(lobes.size, dtype=np.float32).reshape(lobes.shape) % 7
    nibabel.save(nibabel.Nifti1Image(image.T.copy(), affine), raw / "imagesTr" / "c1_0000.nii.gz")
    nibabel.save(nibabel.Nifti1Image(lesion.T.copy(), affine), raw / "labelsTr" / "c1.nii.gz")
    nibabel.save(nibabel.Nifti1Image(lobes.T.copy(), affine), tmp_path / "lobes" / "c1.nii.gz")
    # ReXGroundingCT: 3 findings, the third without voxels (not annotated)
    rex = tmp_path / "rex"
    (rex / "images_flat" / "train").mkdir(parents=True)
    (rex / "segmentations" / "train").mkdir(parents=True)
    findings = {"0": "Nodule in the right upper lobe", "1": "Left lower lobe consolidation", "2": "Emphysema"}
    (rex / "dataset.json").write_text(json.dumps({"train": [{"name": "train_1_a_1.nii.gz", "findings": findings}]}))
    masks = np.zeros((*lobes.shape, 3), np.uint8)  # network (S, A, R) per channel
    masks[20:23, 10:13, 3:6, 0] = 1
    masks[2:6, 5:9, 20:25, 1] = 1
    nibabel.save(nibabel.Nifti1Image(image.T.copy(), affine), rex / "images_flat" / "train" / "train_1_a_1.nii.gz")
    nifti_masks = np.stack([masks[..., c].T for c in range(3)], axis=-1)  # (X, Y, Z, C)
    nibabel.save(nibabel.Nifti1Image(nifti_masks, affine), rex / "segmentations" / "train" / "train_1_a_1.nii.gz")
    datasets = [
        {"name": "Nodules", "type": "instances", "path": str(raw), "parts_dir": str(tmp_path / "lobes"),
         "parts": {str(k): v for k, v in names.items()}, "lesions": {"nodule": "lung nodule"}},
        {"name": "ReX", "type": "rexgroundingct", "path": str(rex)},
    ]
    preprocess(datasets, tmp_path / "cache", 0, progress=False)
    data = prepare_data(datasets, Vocabulary(), tmp_path / "cache", 0.0, 0)
    nodules, scan = data.train
    assert [t.name for t in nodules.positives] == ["lung nodule in the right upper lobe", "lung nodule"]
    assert len(nodules.negatives) == 4 and not nodules.partial
    channels = np.asarray(nodules.arrays()[1])
    assert channels[nodules.positives[0].channel].sum() == 27
    assert scan.partial and scan.negatives == []
    assert [t.name for t in scan.positives] == ["nodule in the right upper lobe", "left lower lobe consolidation"]
    rex_channels = np.asarray(scan.arrays()[1])
    assert rex_channels.shape[0] == 3 and rex_channels[1].sum() == 4 * 4 * 5 and rex_channels[2].sum() == 0
    # the partially labelled scan never gets a negative: its third slot is a zero-weight filler
    sampler = BatchSampler([scan], data.fallback_negatives, patch_size=(32, 32, 32), batch_size=1, positives=2,
                           negatives=1, default_name_probability=0.25, foreground_probability=0.85, augmenter=None,
                           seed=0, rank=0)
    for i in range(20):
        batch = sampler.batch(i)
        assert batch.weight.tolist() == [[1.0, 1.0, 0.0]]
        assert "emphysema" not in batch.prompts[0]


def test_vocabulary_files_merge_and_ranks_come_from_torchrun_or_slurm():
    from Training.distributed import environment_ranks

    root = Path(__file__).resolve().parents[1] / "Resources" / "vocabulary"
    vocabulary = Vocabulary.load([root / "voxtell_concepts.json", root / "phantom_vocabulary.json"])
    liver = vocabulary.concepts["liver"]
    assert liver.name == "liver" and "hepatic organ" in liver.synonyms
    assert {"Dataset003_Liver", "Dataset900_VoxTellPhantoms"} <= set(liver.datasets)  # merged, not replaced
    targets = {t.name: t.labels for t in vocabulary.targets_for_dataset("Dataset003_Liver", {"liver": 1, "cancer": 2})}
    assert targets == {"liver": (1, 2), "liver tumor": (2,)}
    assert environment_ranks({}) == (0, 1, 0)
    assert environment_ranks({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "SLURM_PROCID": "0"}) == (3, 8, 1)
    assert environment_ranks({"SLURM_PROCID": "9", "SLURM_NTASKS": "64", "SLURM_LOCALID": "1"}) == (9, 64, 1)
