"""PromptEmbedder: prompts -> embeddings from the cheapest source that knows them.

Lookup order per prompt: this object's memory, the embedding bank, the on-disk cache
of the text encoder, and only then the text encoder itself (for the rest, in one call).
When every prompt is known the backbone is never loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import InputError, ModelError
from VoxTellCore.text.bank import EmbeddingBank
from VoxTellCore.text.encoder import DEFAULT_TEXT_ENCODER, Qwen3TextEncoder, looks_like_path


def default_cache_dir(encoder: str) -> Path:
    """``$VOXTELL_CACHE_DIR`` (default ``~/.cache/voxtell``) ``/embeddings/<encoder id>``."""
    base = os.environ.get("VOXTELL_CACHE_DIR") or Path.home() / ".cache" / "voxtell"
    return Path(base).expanduser() / "embeddings" / encoder_fingerprint(encoder)


def encoder_fingerprint(encoder: str) -> str:
    """A folder name that changes when the encoder does.

    A Hugging Face id is fixed; a local folder is identified by its path, its
    config.json and the size and time of its weight and tokenizer files, so a
    rebuilt encoder at the same place gets a fresh cache.
    """
    digest = hashlib.sha1(encoder.encode())
    folder = Path(encoder).expanduser()
    if looks_like_path(encoder) and folder.is_dir():
        folder = folder.resolve()
        digest = hashlib.sha1(str(folder).encode())
        for file in sorted(folder.iterdir()):
            if file.is_file() and (file.suffix in {".safetensors", ".bin"} or file.name == "tokenizer.json"):
                stat = file.stat()
                digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        if (folder / "config.json").is_file():
            digest.update((folder / "config.json").read_bytes())
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", folder.name or encoder)[:40]
    return f"{readable}-{digest.hexdigest()[:16]}"


class PromptEmbedder:
    """Embeds prompts as (N, D) float32, reusing every embedding it has seen.

    Prompts are lowercased (as in the release). Embeddings computed by the encoder are
    kept as float16 in memory and on disk and are always returned as that
    float16-rounded value. This deliberately differs from the release, which uses the
    fp32 vector the first time a prompt is computed and the fp16 copy afterwards: here
    the first run and every later run give identical results, and a computed prompt
    behaves exactly like a prompt from the (float16) embedding bank.

    Args:
        bank: an EmbeddingBank, the path of a bank ``.npz``, or None.
        encoder: a Hugging Face id or local folder of a Qwen3 embedding model, or None
            to use the bank (and cache) only.
        device: where the encoder runs.
        cache_dir: folder of the on-disk cache (one ``<sha1 of prompt>.npy`` per
            prompt, written atomically, so concurrent processes are safe). None
            means :func:`default_cache_dir` of the encoder.
        disk_cache: False turns the on-disk cache off.
        keep_loaded: keep the encoder's backbone loaded between calls.
        expected_dim: the model's text embedding size; any other size is a ModelError.
        allow_encoder_download: False makes a Hub encoder that is not in the Hub cache a
            ModelError instead of a download (a GUI downloads it first, with progress).
    """

    def __init__(
        self,
        bank: EmbeddingBank | str | Path | None = None,
        encoder: str | None = DEFAULT_TEXT_ENCODER,
        device: str | torch.device = "cpu",
        cache_dir: str | Path | None = None,
        disk_cache: bool = True,
        keep_loaded: bool = False,
        expected_dim: int | None = None,
        allow_encoder_download: bool = True,
    ) -> None:
        if bank is None:
            bank = EmbeddingBank()
        elif not isinstance(bank, EmbeddingBank):
            bank = EmbeddingBank.load(bank)
        if expected_dim is not None:
            bank.check_dim(expected_dim, "the model")
        self.bank = bank
        self.expected_dim = expected_dim
        self.encoder = Qwen3TextEncoder(encoder, device, keep_loaded, allow_encoder_download) if encoder else None
        if not disk_cache:
            self.cache_dir = None
        elif cache_dir is not None:
            self.cache_dir = Path(cache_dir).expanduser()
        else:
            self.cache_dir = default_cache_dir(str(encoder)) if encoder else None
        self._memory: dict[str, np.ndarray] = {}

    @property
    def dim(self) -> int | None:
        """Embedding size (bank, else the encoder's config); None if it cannot be known yet."""
        if self.bank.dim is not None:
            return self.bank.dim
        if self._memory:
            return next(iter(self._memory.values())).shape[0]
        if self.encoder is None:
            return None
        try:
            return self.encoder.dim
        except ModelError:
            return None  # not available here; embed() reports why if the encoder is needed

    def prompts_needing_encoder(self, prompts: Sequence[str]) -> list[str]:
        """The (lowercased, distinct) prompts that only the text encoder can embed: not in memory,
        the bank or the disk cache. Loads nothing and asks no network, so a GUI can check first."""
        keys = dict.fromkeys(prompt.strip().lower() for prompt in ([prompts] if isinstance(prompts, str) else prompts))
        return [key for key in keys if key.strip() and not self._recall(key)]

    def embed(self, prompts: Sequence[str]) -> torch.Tensor:
        """(N, D) float32 CPU embeddings of ``prompts``, in order."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if len(prompts) == 0:
            raise InputError("No prompts were given; give at least one text prompt, e.g. 'liver'.")
        keys = []
        for number, prompt in enumerate(prompts, start=1):
            if not isinstance(prompt, str) or not prompt.strip():
                raise InputError(
                    f"Prompt {number} ({prompt!r}) is empty; give a short anatomical description "
                    "such as 'liver' or 'left kidney'."
                )
            keys.append(prompt.strip().lower())  # surrounding spaces would change the embedding

        unknown = self.prompts_needing_encoder(keys)
        if unknown:
            self._compute(unknown)
        vectors = np.stack([self._memory[key] for key in keys]).astype(np.float32)
        if self.expected_dim is not None and vectors.shape[1] != self.expected_dim:
            raise ModelError(
                f"The text encoder gives {vectors.shape[1]}-value embeddings but the model uses "
                f"{self.expected_dim}. Use the text encoder (or embedding bank) that belongs to the model."
            )
        return torch.from_numpy(vectors)

    def release(self) -> None:
        """Free the text encoder's backbone if it is loaded."""
        if self.encoder is not None:
            self.encoder.release()

    def _recall(self, key: str) -> bool:
        if key in self._memory:
            return True
        vector = self.bank.get(key)
        if vector is None:
            vector = self._read_cache(key)
            if vector is None:
                return False
            self.bank.check_dim(vector.shape[0], f"the embeddings cached in {self.cache_dir}")
        self._memory[key] = vector
        return True

    def _compute(self, keys: list[str]) -> None:
        if self.encoder is None:
            listed = ", ".join(repr(key) for key in keys)
            raise InputError(
                f"The prompt(s) {listed} are not in the embedding bank and no text encoder is "
                "configured. Use prompts from the bank, or configure a text encoder (e.g. "
                f"--text-encoder {DEFAULT_TEXT_ENCODER} or a local folder) to embed new prompts."
            )
        vectors = self.encoder.embed(keys).numpy().astype(np.float16)
        self.bank.check_dim(vectors.shape[1], f"the text encoder '{self.encoder.name_or_path}'")
        for key, vector in zip(keys, vectors):
            self._memory[key] = vector
            self._write_cache(key, vector)

    def _cache_file(self, key: str) -> Path:
        return self.cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def _read_cache(self, key: str) -> np.ndarray | None:
        if self.cache_dir is None:
            return None
        try:
            vector = np.load(self._cache_file(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None  # not cached yet, or a damaged file that will be rewritten
        return vector if vector.ndim == 1 and vector.dtype == np.float16 else None

    def _write_cache(self, key: str, vector: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        try:
            atomic_write(self._cache_file(key), lambda tmp: np.save(tmp, vector), ".npy")
        except OSError as error:
            warnings.warn(f"Could not cache the embedding of '{key}' in {self.cache_dir}: {error}")
