"""Precomputed prompt embeddings (the text encoder stays frozen and off the GPU in training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from VoxTellCore.errors import InputError
from VoxTellCore.text.bank import EmbeddingBank


class PromptTable:
    """Every trainable prompt's embedding as one (N, D) tensor, looked up by text."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        self.index = {t.lower(): i for i, t in enumerate(texts)}
        self.vectors = torch.from_numpy(np.asarray(vectors, dtype=np.float32))

    @classmethod
    def from_bank(cls, bank_path: str | Path, prompts: list[str], dim: int) -> "PromptTable":
        if not bank_path:
            raise InputError(
                "The training config has no 'embedding_bank'. Build one for every prompt "
                "(`voxtell-train prompts CONFIG` lists them) and set its path."
            )
        bank = EmbeddingBank.load(bank_path)
        bank.check_dim(dim, "the model config (model.text_embedding_dim)")
        missing = [p for p in prompts if p not in bank]
        if missing:
            raise InputError(
                f"The embedding bank {bank_path} lacks {len(missing)} prompt(s) the training data uses, e.g. "
                f"{missing[:5]}. Rebuild the bank from `voxtell-train prompts CONFIG`."
            )
        return cls(prompts, np.stack([bank.get(p) for p in prompts]))

    def to(self, device: torch.device) -> "PromptTable":
        self.vectors = self.vectors.to(device)
        return self

    def lookup(self, prompts: list[list[str]]) -> torch.Tensor:
        """(B, K, D) embeddings for B lists of K prompt texts."""
        rows = torch.tensor([[self.index[p.lower()] for p in row] for row in prompts], device=self.vectors.device)
        return self.vectors[rows]
