"""Shared builders for the training tests: a tiny synthetic dataset, bank and config."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np

SHAPE = (40, 40, 40)  # NIfTI (i, j, k); identity affine, so the network array is its transpose
LABELS = {"background": 0, "left_kidney": 1, "right_kidney": 2, "liver": 3}
TINY_MODEL = {  # 32^3 patches; the last stage keeps 2^3 voxels (instance norm needs > 1)
    "features_per_stage": [2, 4, 8, 8, 8, 8],
    "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 1, 1]],
    "n_blocks_per_stage": [1, 1, 1, 1, 1, 1],
    "text_embedding_dim": 16,
    "text_hidden_dim": 32,
    "query_dim": 32,
    "prompt_decoder_layers": 1,
    "prompt_decoder_heads": 2,
    "prompt_decoder_ffn_dim": 32,
    "fusion_channels": 2,
    "mask_projection_hidden_dim": 32,
}
VOCABULARY = {
    "version": 1,
    "concepts": [
        {"name": "left kidney", "synonyms": ["left renal organ", "kidney on the left", "sinistral kidney"],
         "datasets": {"Dataset900_Tiny": "left_kidney"}},
        {"name": "kidneys", "synonyms": ["both kidneys", "bilateral kidneys"],
         "datasets": {"Dataset900_Tiny": ["left_kidney", "right_kidney"]}},
        {"name": "brain", "synonyms": ["cerebrum"], "regions": ["head"], "datasets": {}},
        {"name": "spleen", "synonyms": ["lien"], "regions": ["thorax", "abdomen"], "datasets": {}},
    ],
}


def _ball(centre: tuple[int, int, int], radius: float) -> np.ndarray:
    grid = np.indices(SHAPE)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2


def write_dataset(root: Path, cases: int = 3, with_liver: tuple[int, ...] = (0,)) -> Path:
    """nnU-Net raw layout with an identity affine: NIfTI axis 0 is RAS x (towards the patient's
    right), i.e. network axis 2. The right kidney sits at large x, the left kidney at small x."""
    folder = root / "Dataset900_Tiny"
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    (folder / "dataset.json").write_text(json.dumps({"labels": LABELS, "channel_names": {"0": "CT"},
                                                    "file_ending": ".nii.gz", "numTraining": cases}))
    rng = np.random.default_rng(0)
    for case in range(cases):
        labels = np.zeros(SHAPE, np.uint8)
        labels[_ball((11 + case % 3, 20, 14), 5)] = 1  # left kidney: small x
        labels[_ball((28, 20 + case % 2, 14), 5)] = 2  # right kidney: large x (RAS +x is the patient's right)
        if case in with_liver:
            labels[_ball((14, 20, 30), 6)] = 3
        image = 100 + 10 * rng.standard_normal(SHAPE) + 80 * labels
        nibabel.save(nibabel.Nifti1Image(image.astype(np.float32), np.eye(4)),
                     folder / "imagesTr" / f"case{case:03d}_0000.nii.gz")
        nibabel.save(nibabel.Nifti1Image(labels, np.eye(4)), folder / "labelsTr" / f"case{case:03d}.nii.gz")
    return folder


def write_bank(path: Path, prompts: list[str], dim: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((len(prompts), dim)).astype(np.float16)
    np.savez(path, labels=np.array([p.lower() for p in prompts], dtype=str), embeddings=embeddings)
    return path


def write_config(root: Path, **overrides) -> Path:
    """Dataset, vocabulary, bank of every prompt, and a tiny fast config; returns the config path."""
    from Training.data.prepare import prepare_data
    from Training.data.preprocess import preprocess
    from Training.data.vocabulary import Vocabulary

    dataset = write_dataset(root)
    (root / "vocabulary.json").write_text(json.dumps(VOCABULARY))
    datasets = [{"name": "Dataset900_Tiny", "path": str(dataset), "region": "abdomen"}]
    preprocess(datasets, root / "preprocessed", seed=1, progress=False)
    data = prepare_data(datasets, Vocabulary.load([root / "vocabulary.json"]), root / "preprocessed", 0.0, 1)
    write_bank(root / "bank.npz", data.prompt_names())
    config = {
        "datasets": datasets,
        "vocabulary": [str(root / "vocabulary.json")],
        "preprocessed_dir": str(root / "preprocessed"),
        "embedding_bank": str(root / "bank.npz"),
        "model": TINY_MODEL,
        "patch_size": [32, 32, 32],
        "batch_size_per_process": 2,
        "num_epochs": 3,
        "iterations_per_epoch": 2,
        "val_fraction": 0.0,
        "val_iterations": 0,
        "initial_lr": 0.05,
        "momentum": 0.9,
        "augmentation": False,
        "num_workers": 0,
        "seed": 7,
    }
    config.update(overrides)
    path = root / "config.json"
    path.write_text(json.dumps(config, indent=1))
    return path
