"""Embedding bank: precomputed prompt embeddings in the release's ``.npz`` format.

The file holds two arrays: ``labels`` (unicode strings, N) and ``embeddings``
(float16, N x D). Labels are lowercased on load, as in the release, because prompts
are lowercased before they are looked up.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import InputError, ModelError

_BANK_HELP = (
    "An embedding bank is an .npz file with a 'labels' string array (N) and an "
    "'embeddings' float array (N x D); rebuild it with build_embedding_bank or use "
    "the bank that came with the model."
)


class EmbeddingBank:
    """A ``{lowercased prompt: float16 vector}`` mapping with a fixed vector size."""

    def __init__(self) -> None:
        self._vectors: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingBank:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelError(
                f"Embedding bank '{path}' does not exist. Pass the path of an existing "
                "bank (.npz), or leave the bank out and let the text encoder embed the prompts."
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = {"labels", "embeddings"} - set(data.files)
                if missing:
                    raise ModelError(
                        f"Embedding bank '{path}' lacks the array(s) {sorted(missing)} "
                        f"(it has {sorted(data.files)}). {_BANK_HELP}"
                    )
                labels, embeddings = data["labels"], data["embeddings"]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise ModelError(f"Embedding bank '{path}' cannot be read ({error}). {_BANK_HELP}") from error

        if labels.ndim != 1 or labels.dtype.kind != "U":
            raise ModelError(
                f"Embedding bank '{path}': 'labels' must be a 1-D string array, got "
                f"shape {labels.shape} of type {labels.dtype}. {_BANK_HELP}"
            )
        if embeddings.ndim != 2 or embeddings.dtype.kind != "f" or len(embeddings) != len(labels):
            raise ModelError(
                f"Embedding bank '{path}': 'embeddings' must be a float array of shape "
                f"({len(labels)}, D), got shape {embeddings.shape} of type {embeddings.dtype}. "
                f"{_BANK_HELP}"
            )
        bank = cls()
        for label, vector in zip(labels, embeddings):
            bank.add(str(label), vector)
        return bank

    def save(self, path: str | Path) -> Path:
        """Write the bank atomically (a temporary file renamed over ``path``)."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        labels = np.array(list(self._vectors), dtype=str)
        embeddings = (
            np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, 0), np.float16)
        )
        def write(temporary: str) -> None:
            with open(temporary, "wb") as file:
                np.savez(file, labels=labels, embeddings=embeddings)

        return atomic_write(path, write)

    @property
    def dim(self) -> int | None:
        """Vector size, or None while the bank is empty."""
        return next(iter(self._vectors.values())).shape[0] if self._vectors else None

    @property
    def labels(self) -> list[str]:
        return list(self._vectors)

    def add(self, prompt: str, vector: np.ndarray) -> None:
        """Store ``vector`` (rounded to float16) under the lowercased ``prompt``."""
        vector = np.asarray(vector, dtype=np.float16)
        if vector.ndim != 1 or vector.size == 0:
            raise InputError(f"The embedding for '{prompt}' must be a non-empty 1-D vector, got shape {vector.shape}.")
        if self.dim is not None and vector.shape[0] != self.dim:
            raise InputError(
                f"The embedding for '{prompt}' has {vector.shape[0]} values but this bank holds "
                f"{self.dim}-value embeddings; all embeddings of a bank must come from the same text encoder."
            )
        self._vectors[prompt.lower()] = vector

    def get(self, prompt: str) -> np.ndarray | None:
        return self._vectors.get(prompt.lower())

    def check_dim(self, expected: int, what: str) -> None:
        """Raise ModelError unless the bank's vectors have ``expected`` values (``what`` names who expects it)."""
        if self.dim is not None and self.dim != expected:
            raise ModelError(
                f"The embedding bank holds {self.dim}-value embeddings but {what} uses {expected}. "
                "Use the bank made with the same text encoder as the model."
            )

    def __contains__(self, prompt: object) -> bool:
        return isinstance(prompt, str) and prompt.lower() in self._vectors

    def __len__(self) -> int:
        return len(self._vectors)

    def __iter__(self) -> Iterator[str]:
        return iter(self._vectors)
