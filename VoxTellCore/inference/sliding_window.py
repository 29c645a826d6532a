"""nnU-Net's sliding window, as the release runs it.

Windows overlap by half a patch and are blended with a Gaussian importance map that is
stored in fp16 with a peak of 10; logits are accumulated in fp16 (on CPU too). Both are
kept because they decide which borderline voxels end up > 0: an fp32 accumulator
disagrees with the release on voxels that only a window corner reaches.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from VoxTellCore.errors import InputError
from VoxTellCore.memory import free_memory_bytes
from VoxTellCore.model.network import WindowFeatures

Window = tuple[slice, ...]

#: The window step as a fraction of the patch: the release's 0.5 (half-patch overlap).
#: Other values are an option (``--step``) and change the masks.
DEFAULT_STEP = 0.5


def check_step(step: float, name: str = "Window step") -> float:
    """``step`` when it is a fraction of the patch in (0, 1], else an InputError that starts with ``name``."""
    if not 0 < step <= 1:
        raise InputError(f"{name} {step}: give a fraction of the patch size in (0, 1]; the release uses 0.5.")
    return step


def compute_steps(image_size: tuple[int, ...], patch_size: tuple[int, ...], step_fraction: float = DEFAULT_STEP) -> list[list[int]]:
    """Window start positions per axis, spread evenly; the image is at least one patch large."""
    steps = []
    for size, patch in zip(image_size, patch_size):
        n = int(np.ceil((size - patch) / (patch * step_fraction))) + 1
        spacing = (size - patch) / (n - 1) if n > 1 else 0.0
        steps.append([int(np.round(spacing * i)) for i in range(n)])
    return steps


def sliding_windows(image_size: tuple[int, ...], patch_size: tuple[int, ...], step_fraction: float = DEFAULT_STEP) -> list[Window]:
    """All windows, first axis outermost (the release's order)."""
    starts = compute_steps(image_size, patch_size, step_fraction)
    return [tuple(slice(s, s + p) for s, p in zip(corner, patch_size)) for corner in itertools.product(*starts)]


@functools.lru_cache(maxsize=4)
def _gaussian_fp16(patch_size: tuple[int, ...]) -> torch.Tensor:
    # A Gaussian-smoothed delta is separable: filter a 1D delta per axis, take the outer product.
    weights = torch.ones(())
    for axis, patch in enumerate(patch_size):
        delta = np.zeros(patch)
        delta[patch // 2] = 1
        profile = torch.from_numpy(gaussian_filter(delta, patch / 8, 0, mode="constant", cval=0))
        weights = weights[..., None] * profile.view(*([1] * axis), patch)
    weights = (weights / (weights.max() / 10)).to(torch.float16)
    zero = weights == 0
    weights[zero] = weights[~zero].min()
    return weights


def gaussian_weights(patch_size: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    """The release's blending weights: peak 10, fp16, no zeros."""
    return _gaussian_fp16(tuple(patch_size)).to(device)


class LogitAccumulator:
    """Gaussian-weighted average of overlapping window logits, in the release's fp16."""

    def __init__(self, n_prompts: int, image_size: tuple[int, ...], patch_size: tuple[int, ...], device: torch.device) -> None:
        self.logits = torch.zeros((n_prompts, *image_size), dtype=torch.half, device=device)
        self.weight_sum = torch.zeros(image_size, dtype=torch.half, device=device)
        self.gaussian = gaussian_weights(patch_size, device)

    def add(self, window: Window, prompt: int, logits: torch.Tensor) -> None:
        """``logits``: one prompt's (*patch) fp32 output for ``window``."""
        self.logits[(prompt, *window)] += logits.to(self.logits.device) * self.gaussian

    def count(self, window: Window) -> None:
        self.weight_sum[window] += self.gaussian

    def result(self) -> torch.Tensor:
        covered = self.weight_sum > 0
        out = self.logits
        torch.div(out, torch.where(covered, self.weight_sum, torch.ones_like(self.weight_sum)), out=out)
        out[:, ~covered] = -1  # outside every run window (only with a region of interest)
        if torch.isinf(out).any():
            raise RuntimeError("Infinite logits while blending windows: the network output overflowed fp16.")
        return out


#: Share of the free host (or, on CUDA, GPU) memory that kept encoder features may fill by default.
FEATURE_CACHE_FRACTION = 0.5


class FeatureCache:
    """Each window's prompt-independent features (``WindowFeatures``) of one volume, kept for the next prompt.

    They do not depend on the prompt, so a new prompt on the same volume only runs the prompt
    decoder and the prompt's half of the image decoder. They are kept for one (volume, model, device)
    key at a time and only while they fit ``budget_bytes`` (None: ``FEATURE_CACHE_FRACTION``
    of the memory free when the key's first window is stored); windows that do not fit are
    recomputed. The same tensors go through the same decoder, so the masks do not change.
    """

    def __init__(self, budget_bytes: int | None = None) -> None:
        self.budget_bytes = budget_bytes
        self.key: tuple | None = None
        self.limit = 0
        self.used = 0
        self._features: dict[tuple, WindowFeatures] = {}

    def __len__(self) -> int:
        return len(self._features)

    def use(self, key: tuple, device: torch.device) -> None:
        """Keeps the features if they belong to ``key``; else drops them and starts over for it."""
        if key == self.key:
            return
        self.clear()
        self.key = key
        budget = self.budget_bytes
        self.limit = int(FEATURE_CACHE_FRACTION * free_memory_bytes(device)) if budget is None else budget

    def get(self, window: Window) -> WindowFeatures | None:
        return self._features.get(_window_key(window))

    def put(self, window: Window, features: WindowFeatures) -> None:
        if self.used + features.nbytes <= self.limit:
            self._features[_window_key(window)] = features
            self.used += features.nbytes

    def clear(self) -> None:
        self._features.clear()
        self.key, self.used = None, 0


def _window_key(window: Window) -> tuple:
    return tuple((s.start, s.stop) for s in window)  # slices are hashable only from Python 3.12
