"""Qwen3 text encoder: prompts -> embeddings, with the released VoxTell recipe.

Recipe (VoxTell 0.1.2): lowercase the prompt, wrap it in the anatomical instruction,
tokenize with left padding (batches of 32, truncation at 8192 tokens), run the
backbone (bf16 on CUDA, fp32 on CPU) and take the hidden state of each sequence's
last real token. The vectors are not L2-normalised.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from VoxTellCore.errors import ModelError

DEFAULT_TEXT_ENCODER = "Qwen/Qwen3-Embedding-4B"
INSTRUCTION = (
    "Given an anatomical term query, retrieve the precise anatomical entity and location it represents"
)
BATCH_SIZE = 32
MAX_LENGTH = 8192


def wrap_prompt(prompt: str) -> str:
    """The exact text the tokenizer sees for ``prompt``."""
    return f"Instruct: {INSTRUCTION}\nQuery: {prompt.lower()}"


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each sequence's last real token, for left or right padding."""
    if bool(attention_mask[:, -1].all()):
        return hidden[:, -1]
    last = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def looks_like_path(name: str) -> bool:
    """True for names meant as folders rather than Hugging Face ids like 'org/model'."""
    return (
        Path(name).expanduser().is_absolute()
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
        or Path(name).exists()
    )


def _is_connection_error(error: BaseException) -> bool:
    while error is not None:
        text = f"{type(error).__name__} {error}".lower()
        if "connect" in text or "offline" in text or "timeout" in text:
            return True
        error = error.__cause__ or error.__context__
    return False


_WHAT_TO_DO = (
    f"Download it once with `huggingface-cli download {DEFAULT_TEXT_ENCODER}` (needs internet), "
    "pass a local model folder with --text-encoder, or use an embedding bank that contains your prompts."
)


def _load_error(name: str, error: BaseException) -> ModelError:
    reason = " ".join(str(error).split())  # one line for the command line
    return ModelError(f"The text encoder '{name}' cannot be loaded ({type(error).__name__}: {reason}). {_WHAT_TO_DO}")


def _model_folder(name: str) -> str:
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ModelError(f"The text encoder folder '{folder}' does not exist. {_WHAT_TO_DO}")
    if not (folder / "config.json").is_file():
        raise ModelError(
            f"The text encoder folder '{folder}' has no config.json, so it is not a Hugging Face model "
            f"folder (it needs config.json, weights and tokenizer files). {_WHAT_TO_DO}"
        )
    return str(folder)


def from_pretrained(loader, name: str, **kwargs):
    """``loader.from_pretrained(name)``; offline it uses the local Hugging Face cache only.

    ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) selects the cache from the start; a
    connection failure retries with the cache. Every failure becomes a ModelError that
    says what to do.
    """
    if looks_like_path(name):
        name = _model_folder(name)
    offline = any(
        os.environ.get(variable, "").strip().lower() in {"1", "true", "yes", "on"}
        for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    try:
        return loader.from_pretrained(name, local_files_only=offline, **kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        if offline or not _is_connection_error(error):
            raise _load_error(name, error) from error
        try:
            return loader.from_pretrained(name, local_files_only=True, **kwargs)
        except (OSError, ValueError, RuntimeError) as retry_error:
            raise _load_error(name, retry_error) from retry_error


class Qwen3TextEncoder:
    """Embeds prompts with a Qwen3 embedding model (the released recipe).

    The tokenizer and backbone are loaded on the first ``embed`` and released again
    after it, unless ``keep_loaded`` is set (an interactive session that embeds often);
    a kept backbone is parked on the CPU between calls so the GPU stays free for the
    segmentation network.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_TEXT_ENCODER,
        device: str | torch.device = "cpu",
        keep_loaded: bool = False,
    ) -> None:
        self.name_or_path = str(name_or_path)
        self.device = torch.device(device)
        self.keep_loaded = keep_loaded
        self.tokenizer = None
        self.backbone = None
        self._dim: int | None = None

    @property
    def loaded(self) -> bool:
        return self.backbone is not None

    @property
    def dim(self) -> int:
        """Embedding size, read from the model config without loading the weights."""
        if self._dim is None:
            from transformers import AutoConfig

            self._dim = int(from_pretrained(AutoConfig, self.name_or_path).hidden_size)
        return self._dim

    def load(self) -> None:
        if self.loaded:
            return
        from transformers import AutoModel, AutoTokenizer

        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.tokenizer = from_pretrained(AutoTokenizer, self.name_or_path, padding_side="left")
        self.backbone = from_pretrained(AutoModel, self.name_or_path, dtype=dtype).eval()

    def release(self) -> None:
        """Free the backbone and tokenizer; the next ``embed`` loads them again."""
        self.tokenizer = self.backbone = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @torch.no_grad()
    def embed(self, prompts: Sequence[str]) -> torch.Tensor:
        """(N, hidden) float32 CPU embeddings of ``prompts``, in order."""
        if not prompts:
            return torch.zeros(0, self.dim)
        self.load()
        try:
            self.backbone.to(self.device)
            vectors = []
            for start in range(0, len(prompts), BATCH_SIZE):
                batch = [wrap_prompt(prompt) for prompt in prompts[start : start + BATCH_SIZE]]
                tokens = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"
                ).to(self.device)
                hidden = self.backbone(**tokens, use_cache=False).last_hidden_state
                vectors.append(last_token_pool(hidden, tokens["attention_mask"]).float().cpu())
            return torch.cat(vectors)
        finally:
            if self.keep_loaded:
                self.backbone.to("cpu")
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            else:
                self.release()
