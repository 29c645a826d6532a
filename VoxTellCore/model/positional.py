"""3D sinusoidal positional encoding of the prompt decoder's memory tokens.

Matches ``positional_encodings.PositionalEncoding3D``, which the release uses: the
channels are split into three equal, even-sized groups (x, y, z; the last one is cut to
fit), each group interleaves ``sin`` and ``cos`` of the same frequency.
"""

from __future__ import annotations

import math

import torch


def _axis_encoding(length: int, channels: int) -> torch.Tensor:
    inv_freq = 1.0 / (10000 ** (torch.arange(0, channels, 2, dtype=torch.float32) / channels))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # interleaved


def sinusoidal_encoding_3d(grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """Encoding of a ``grid`` of tokens, shaped ``(*grid, dim)``; the grid axes are (x, y, z)."""
    per_axis = int(math.ceil(dim / 6) * 2)
    x, y, z = (_axis_encoding(n, per_axis) for n in grid)
    out = torch.zeros(*grid, 3 * per_axis)
    out[..., :per_axis] = x[:, None, None, :]
    out[..., per_axis : 2 * per_axis] = y[None, :, None, :]
    out[..., 2 * per_axis :] = z[None, None, :, :]
    return out[..., :dim]
