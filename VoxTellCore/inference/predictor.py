"""VoxTellPredictor: a model folder, a text embedder and the sliding window, for whole volumes."""

from __future__ import annotations

import hashlib
import os
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from VoxTellCore.checkpoint import load_model, read_model_info
from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.inference.precision import DEFAULT_PRECISION, autocast, check_precision, resolve_precision
from VoxTellCore.inference.sliding_window import (
    DEFAULT_STEP,
    FeatureCache,
    LogitAccumulator,
    Window,
    check_step,
    sliding_windows,
)
from VoxTellCore.io import Volume
from VoxTellCore.models import DEMO_MODEL_DIR, OFFICIAL_MODEL, download_official_bank, resolve_model_dir
from VoxTellCore.preprocessing import insert_crop, pad_to_patch, preprocess
from VoxTellCore.progress import CancelCheck, Progress, is_cancelled
from VoxTellCore.text.encoder import DEFAULT_TEXT_ENCODER


DEVICES = ("auto", "cuda", "cuda:N", "mps", "cpu")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` (a CUDA GPU, else the CPU with a warning), ``cuda``, ``cuda:N``, ``mps`` (Apple) or ``cpu``."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        hint = ("Pass --device mps to try this Mac's GPU." if _mps_available()
                else "Install a CUDA build of PyTorch to use an NVIDIA GPU.")
        warnings.warn(f"No CUDA GPU found (device 'auto'): running on the CPU, which takes minutes per image. {hint}",
                      RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise InputError(f"Unknown device {device!r}: write cuda:N with N the GPU number, e.g. cuda:1.")
        if not torch.cuda.is_available():
            raise InputError(f"--device {name} was asked for, but PyTorch sees no CUDA GPU. Use --device cpu or auto.")
        if index and int(index) >= torch.cuda.device_count():
            raise InputError(f"--device {name}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s), numbered "
                             f"from 0. Pick one of them.")
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise InputError("--device mps was asked for, but PyTorch has no Apple GPU (mps) here. Use --device cpu or auto.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"Unknown device {device!r}: use one of {', '.join(DEVICES)}.")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


class VoxTellPredictor:
    """Segments volumes from free-text prompts.

    ``model``: ``"demo"``, a model folder, or None (``$VOXTELL_MODEL``, else the official
    download). ``text_encoder`` and ``embedding_bank`` default to what the model folder's
    ``voxtell_model.json`` names, else Qwen3-Embedding-4B and (for the official model) the
    published bank. ``use_model_bank=False`` ignores the model's own or published bank, so
    every prompt not in ``embedding_bank`` goes through the text encoder. ``step``: the
    sliding window's step as a fraction of the patch (the release's 0.5; others change the masks).
    ``feature_cache_bytes``: memory that the last volume's per-window encoder features may
    keep for the next prompt (None: half of the free host memory, or GPU memory on CUDA; 0: off).
    ``precision``: ``auto`` (as the release: fp16 autocast on CUDA, else fp32), ``fp32``,
    ``fp16`` or ``bf16`` (faster on CPUs with native bf16; see ``VoxTellCore.inference.precision``).
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        text_encoder: str | None = None,
        embedding_bank: str | os.PathLike | None = None,
        embedding_cache_dir: str | os.PathLike | None = None,
        keep_text_encoder_loaded: bool = False,
        use_model_bank: bool = True,
        step: float = DEFAULT_STEP,
        feature_cache_bytes: int | None = None,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        from VoxTellCore.text.embedder import PromptEmbedder

        self.step = check_step(step)
        self.device = resolve_device(device)
        self.precision = precision  # checked here: fp16 on a CPU is refused before the model loads
        self.model_dir = resolve_model_dir(model)
        self.info = read_model_info(self.model_dir)
        self.network = load_model(self.model_dir, "cpu").drop_unused_weights().to(self.device)
        self.patch_size = tuple(self.network.config.patch_size)
        self.is_demo = self.model_dir.resolve() == DEMO_MODEL_DIR.resolve()
        official = self.model_dir.name == OFFICIAL_MODEL and not self.info
        self.description = self.info.get("description") or (
            f"VoxTell {OFFICIAL_MODEL} (official)" if official else f"VoxTell model {self.model_dir}")
        bank = embedding_bank
        if not bank and use_model_bank:
            bank = self._info_path("embedding_bank") or _bank_beside(self.model_dir)
            if bank is None and self.model_dir.name == OFFICIAL_MODEL:
                bank = download_official_bank()
        encoder = text_encoder or self._info_path("text_encoder") or DEFAULT_TEXT_ENCODER
        self._preprocessed: tuple | None = None  # (volume fingerprint, preprocess() result)
        self._features = FeatureCache(feature_cache_bytes)
        self.embedder = PromptEmbedder(
            bank=bank, encoder=str(encoder), device=self.device, cache_dir=embedding_cache_dir,
            keep_loaded=keep_text_encoder_loaded, expected_dim=self.network.config.text_embedding_dim,
        )

    def use_feature_cache(self, cache: FeatureCache) -> None:
        """Keep encoder features in ``cache`` from now on: a server holds one per uploaded image."""
        self._features = cache

    def _info_path(self, key: str) -> str | None:
        value = self.info.get(key)
        if not value:
            return None
        path = self.model_dir / value
        return str(path) if path.exists() else str(value)

    # ------------------------------------------------------------------ prompts
    def embed(self, prompts: Sequence[str]) -> torch.Tensor:
        """(N, D) float32 prompt embeddings (bank, on-disk cache, then the text encoder)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise InputError("No prompt given: pass at least one text prompt, e.g. -p liver.")
        return self.embedder.embed(list(prompts))

    # ------------------------------------------------------------------ volumes
    def predict_volume(
        self,
        volume: Volume,
        prompts: Sequence[str] | torch.Tensor,
        roi_ras: Sequence[float] | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
    ) -> np.ndarray:
        """uint8 masks (N, K, J, I) on ``volume``'s grid. ``prompts`` may be embeddings (N, D).

        The last volume's preprocessing and (within ``feature_cache_bytes``) its windows' encoder
        features are kept, so another call on the same (unchanged) volume, e.g. a second prompt
        typed in Slicer, only runs the decoders.
        """
        embeddings = prompts if isinstance(prompts, torch.Tensor) else self.embed(prompts)
        box = None if roi_ras is None else roi_to_network_box(volume, roi_ras)
        preprocessed = self._preprocess_cached(volume)
        volume_key = self._preprocessed[0]
        masks = self._predict_preprocessed(preprocessed, embeddings, box, progress, cancel, volume_key)
        return volume.from_network(masks)

    def predict_network_array(
        self,
        array: np.ndarray,
        embeddings: torch.Tensor,
        box: tuple[slice, slice, slice] | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
    ) -> np.ndarray:
        """uint8 masks (N, S, A, R) for the release's network array; ``box`` limits them to a region."""
        return self._predict_preprocessed(preprocess(array), embeddings, box, progress, cancel)

    def _preprocess_cached(self, volume: Volume) -> tuple[np.ndarray, tuple, tuple[int, ...]]:
        array = np.ascontiguousarray(volume.array)
        key = (volume.ijk_to_ras.tobytes(), array.shape, array.dtype.str,
               hashlib.blake2b(memoryview(array).cast("B"), digest_size=16).digest())
        if self._preprocessed is None or self._preprocessed[0] != key:
            self._preprocessed = (key, preprocess(volume.to_network()))
        return self._preprocessed[1]

    def _predict_preprocessed(
        self,
        preprocessed: tuple[np.ndarray, tuple, tuple[int, ...]],
        embeddings: torch.Tensor,
        box: tuple[slice, slice, slice] | None,
        progress: Progress | None,
        cancel: CancelCheck,
        volume_key: tuple | None = None,
    ) -> np.ndarray:
        data, bbox, shape = preprocessed
        logits, unpad = self.predict_logits(
            torch.from_numpy(data), embeddings, _box_in_crop(box, bbox), progress, cancel, volume_key)
        masks = (logits[(slice(None), *unpad[1:])] > 0).cpu().numpy().astype(np.uint8)
        full = insert_crop(masks, bbox, shape)
        if box is not None:
            inside = np.zeros(shape, dtype=bool)
            inside[box] = True
            full[:, ~inside] = 0
        return full

    def predict_logits(
        self,
        data: torch.Tensor,
        embeddings: torch.Tensor,
        box: tuple[slice, ...] | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
        volume_key: tuple | None = None,
    ) -> tuple[torch.Tensor, tuple[slice, ...]]:
        """fp16 logits of a preprocessed (1, S, A, R) image, padded to the patch; and the unpad slices.

        ``volume_key`` names the image (it must change whenever ``data`` does): the windows'
        encoder features are kept for the next call with the same key. A CUDA out-of-memory
        error drops them and retries with the blending buffers in host memory, then on the CPU.
        """
        padded, unpad = pad_to_patch(data.numpy(), self.patch_size)
        padded = torch.from_numpy(padded)
        windows = sliding_windows(tuple(padded.shape[1:]), self.patch_size, self.step)
        if box is not None:
            pad_box = tuple(slice(b.start + u.start, b.stop + u.start) for b, u in zip(box, unpad[1:]))
            windows = [w for w in windows if all(s.start < b.stop and b.start < s.stop for s, b in zip(w, pad_box))]
        attempts = [(self.device, self.device)]
        if self.device.type == "cuda":
            attempts += [(self.device, torch.device("cpu")), (torch.device("cpu"), torch.device("cpu"))]
        for attempt, (compute, results) in enumerate(attempts):
            try:
                return self._run_windows(padded, embeddings, windows, compute, results, progress, cancel,
                                         volume_key), unpad
            except torch.cuda.OutOfMemoryError:
                self._features.clear()
                if attempt == len(attempts) - 1:
                    raise
                next_compute, next_results = attempts[attempt + 1]
                where = "the CPU" if next_compute.type == "cpu" else "the GPU with blending in host memory"
                warnings.warn(f"CUDA ran out of memory; retrying on {where}.", RuntimeWarning, stacklevel=2)
                torch.cuda.empty_cache()
        raise AssertionError("unreachable")

    @torch.inference_mode()
    def _run_windows(
        self,
        image: torch.Tensor,
        embeddings: torch.Tensor,
        windows: list[Window],
        compute: torch.device,
        results: torch.device,
        progress: Progress | None,
        cancel: CancelCheck,
        volume_key: tuple | None = None,
    ) -> torch.Tensor:
        network = self.network.to(compute)
        dtype = self.compute_dtype(compute)
        network.set_channels_last(compute.type == "cpu" and dtype == torch.bfloat16)
        if compute.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as the release: every window has the same shape
        if compute != image.device and results == compute:
            image = image.to(compute)  # one upload (a CT is a few hundred MB); windows are slices on the GPU
        if volume_key is not None:
            self._features.use((volume_key, _model_key(network), compute, dtype), compute)
        text = embeddings.to(compute, torch.float32)[None]
        n_prompts = text.shape[1]
        blend = LogitAccumulator(n_prompts, tuple(image.shape[1:]), self.patch_size, results)
        for done, window in enumerate(windows):
            if is_cancelled(cancel):
                raise Cancelled("Inference cancelled.")
            features = self._features.get(window) if volume_key is not None else None
            with autocast(compute, dtype):
                if features is None:
                    features = network.window_features(image[(slice(None), *window)][None].to(compute))
                    if volume_key is not None:
                        self._features.put(window, features)
                mask_embeddings = network.mask_embeddings(features.memory, text)
                for prompt in range(n_prompts):
                    if is_cancelled(cancel):
                        raise Cancelled("Inference cancelled.")
                    logits = network.decode_prompt(features, mask_embeddings, prompt)[0]
                    blend.add(window, prompt, logits[0, 0].float())
            blend.count(window)
            del features, mask_embeddings
            if progress is not None:
                progress(done + 1, len(windows))
        return blend.result()

    @property
    def precision(self) -> str:
        """``auto``, ``fp32``, ``bf16`` or ``fp16``; may change between calls (the kept features follow)."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        value = check_precision(value)
        resolve_precision(value, self.device)
        self._precision = value

    def compute_dtype(self, compute: torch.device) -> torch.dtype:
        """The dtype the network runs in on ``compute`` (a GPU's fp16 falls back to the CPU's auto)."""
        precision = "auto" if self.precision == "fp16" and compute.type == "cpu" else self.precision
        return resolve_precision(precision, compute)


def roi_to_network_box(volume: Volume, roi_ras: Sequence[float]) -> tuple[slice, slice, slice]:
    """The network-array index box covering an axis-aligned RAS box (x0, y0, z0, x1, y1, z1)."""
    if len(roi_ras) != 6:
        raise InputError("A region of interest needs 6 numbers: x0 y0 z0 x1 y1 z1 (RAS millimetres).")
    lo, hi = np.minimum(roi_ras[:3], roi_ras[3:]), np.maximum(roi_ras[:3], roi_ras[3:])
    corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    indices = (np.linalg.inv(volume.network_to_ras) @ corners.T)[:3]
    shape = volume.network_shape
    start = np.clip(np.floor(indices.min(axis=1) + 0.5), 0, shape).astype(int)
    stop = np.clip(np.floor(indices.max(axis=1) + 0.5) + 1, 0, shape).astype(int)
    if np.any(stop <= start):
        grid = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])
        world = (volume.network_to_ras @ grid.T)[:3]
        extent = ", ".join(f"{axis} {low:.1f} to {high:.1f}" for axis, low, high in
                           zip("xyz", world.min(axis=1), world.max(axis=1)))
        raise InputError(f"The region of interest does not overlap the image, whose voxel centres span {extent} "
                         "(RAS millimetres). Move or enlarge the ROI.")
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))


def _model_key(network: torch.nn.Module) -> tuple:
    """The network object and its weights' versions (bumped by any in-place change, e.g. a load)."""
    tensors = [*network.parameters(), *network.buffers()]
    return weakref.ref(network), sum(t._version for t in tensors)


def _bank_beside(model_dir: Path) -> Path | None:
    """An embedding bank stored in the model folder under the release's file name."""
    path = model_dir / "text_embeddings.npz"
    return path if path.is_file() else None


def _box_in_crop(box: tuple[slice, ...] | None, bbox: Sequence[Sequence[int]]) -> tuple[slice, ...] | None:
    if box is None:
        return None
    return tuple(slice(max(b.start - lo, 0), max(min(b.stop, hi) - lo, 0)) for b, (lo, hi) in zip(box, bbox))
