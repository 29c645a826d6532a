"""Tiny Qwen3 text encoders that the tests build themselves (well under a second each,
once transformers is imported).

Usage: ``from text_fixtures import make_tiny_encoder`` then
``PromptEmbedder(encoder=str(make_tiny_encoder(tmp_path)), cache_dir=tmp_path / "cache")``.
"""

from __future__ import annotations

from pathlib import Path

from VoxTellCore.text.small_qwen3 import build_embedding_bank, build_small_qwen3

TINY_PROMPTS = (
    "liver",
    "spleen",
    "left kidney",
    "right kidney",
    "aorta",
    "pancreas",
    "left lung",
    "right lung",
    "urinary bladder",
    "lung nodule",
)


def make_tiny_encoder(tmp_path: Path, hidden_size: int = 16, prompts=TINY_PROMPTS, seed: int = 0) -> Path:
    """A real (random-weight) Qwen3 model + tokenizer folder with ``hidden_size``-dim embeddings."""
    return build_small_qwen3(
        Path(tmp_path) / f"tiny_qwen3_{hidden_size}_{seed}",
        prompts,
        hidden_size=hidden_size,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=2 * hidden_size,
        seed=seed,
    )


def make_tiny_bank(tmp_path: Path, encoder_dir: Path, prompts=TINY_PROMPTS) -> Path:
    """The embedding bank of ``prompts`` computed with the encoder at ``encoder_dir``."""
    return build_embedding_bank(encoder_dir, prompts, Path(tmp_path) / "tiny_bank.npz")
