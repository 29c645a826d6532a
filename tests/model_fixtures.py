"""Random-weight VoxTell model folders and embedding banks that the tests make themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from VoxTellCore.checkpoint import save_model_folder
from VoxTellCore.model import VoxTellConfig, VoxTellModel

# The release's predictor hard-codes the text side (2560 -> 2048, 32 fusion channels) and a
# 192^3 patch, so the oracle tests use those with a lighter encoder (one block per stage).
RELEASE_COMPATIBLE = VoxTellConfig(n_blocks_per_stage=(1, 1, 1, 1, 1, 1))

TINY = VoxTellConfig(
    patch_size=(64, 64, 64),
    features_per_stage=(4, 8, 8, 16, 16, 16),
    n_blocks_per_stage=(1, 1, 1, 1, 1, 1),
    text_embedding_dim=16,
    text_hidden_dim=32,
    query_dim=32,
    prompt_decoder_layers=2,
    prompt_decoder_ffn_dim=32,
    fusion_channels=4,
    mask_projection_hidden_dim=32,
)


def random_model(config: VoxTellConfig = TINY, seed: int = 0, deep_supervision: bool = False) -> VoxTellModel:
    torch.manual_seed(seed)
    model = VoxTellModel(config, deep_supervision=deep_supervision)
    model.initialize_weights()
    # nnU-Net's init zeroes each residual block's last norm; randomise the norms so that the
    # whole network, not only the skip paths, shapes the random logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.ndim == 1:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    return model


def make_model_folder(path: Path, config: VoxTellConfig = TINY, seed: int = 0, info: dict | None = None) -> Path:
    return save_model_folder(random_model(config, seed), path, info=info)


def make_bank(path: Path, prompts: list[str], dim: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((len(prompts), dim)).astype(np.float16)
    np.savez(path, labels=np.array(prompts), embeddings=embeddings)
    return path
