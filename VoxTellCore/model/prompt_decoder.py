"""The prompt decoder: text queries attend to the image encoder's memory tokens.

The release builds DETR's ``TransformerDecoderLayer`` with ``normalize_before=True``; that
path (``forward_pre``) has no self-attention: each layer is a pre-norm cross-attention
(positional encoding on the keys only) followed by a pre-norm ReLU feed-forward. So every
prompt is decoded independently of the others. ``self_attn`` and ``norm1`` are built and
stored by the release but never used; they are kept here so checkpoints load key for key.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class PromptDecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)  # unused, see module doc
        self.multihead_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)  # unused, see module doc
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def drop_unused_weights(self) -> None:
        """Frees ``self_attn`` and ``norm1`` (after a strict load; the state dict then lacks them)."""
        self.self_attn = None
        self.norm1 = None

    def forward(self, queries: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor) -> torch.Tensor:
        """``queries`` (N, B, dim), ``memory`` and ``memory_pos`` (T, B|1, dim), sequence first."""
        attended, _ = self.multihead_attn(
            query=self.norm2(queries), key=memory + memory_pos, value=memory, need_weights=False
        )
        queries = queries + self.dropout2(attended)
        hidden = self.linear2(self.dropout(torch.relu(self.linear1(self.norm3(queries)))))
        return queries + self.dropout3(hidden)


class PromptDecoder(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, layers: int) -> None:
        super().__init__()
        layer = PromptDecoderLayer(dim, heads, ffn_dim)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            queries = layer(queries, memory, memory_pos)
        return self.norm(queries)
