"""Qwen3 text encoder: prompts -> embeddings, with the released VoxTell recipe.

Recipe (VoxTell 0.1.2): lowercase the prompt, wrap it in the anatomical instruction,
tokenize with left padding (batches of 32, truncation at 8192 tokens), run the
backbone (bf16 on CUDA, fp32 on CPU) and take the hidden state of each sequence's
last real token. The vectors are not L2-normalised.

Before the backbone is loaded, the functions below say without any network access whether
the encoder is already on disk, how much it downloads and how much memory it takes, so a
caller can ask the user first and refuse clearly instead of being killed for memory.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch

from VoxTellCore.errors import ModelError
from VoxTellCore.memory import available_memory_bytes
from VoxTellCore.progress import CancelCheck, Progress

DEFAULT_TEXT_ENCODER = "Qwen/Qwen3-Embedding-4B"
# Qwen3-Embedding-4B: 4.02 billion parameters stored as bfloat16 (2 bytes each) in two safetensors
# shards; the exact size comes from the Hub when the download starts.
DEFAULT_TEXT_ENCODER_BYTES = 8_040_000_000
#: the files a Hub text encoder needs (config, tokenizer, weights); the rest of the repository is skipped
TEXT_ENCODER_PATTERNS = ("*.json", "*.safetensors", "*.txt")
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
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
    f"Download it once with `hf download {DEFAULT_TEXT_ENCODER}` (about {DEFAULT_TEXT_ENCODER_BYTES / 1e9:.1f} GB, "
    "needs internet), pass a local model folder with --text-encoder, or use an embedding bank that contains "
    "your prompts."
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
    ) or (not looks_like_path(name) and cached_text_encoder(name) is not None)  # cached: never ask the network
    try:
        return loader.from_pretrained(name, local_files_only=offline, **kwargs)
    except (OSError, ValueError, RuntimeError) as error:
        if offline or not _is_connection_error(error):
            raise _load_error(name, error) from error
        try:
            return loader.from_pretrained(name, local_files_only=True, **kwargs)
        except (OSError, ValueError, RuntimeError) as retry_error:
            raise _load_error(name, retry_error) from retry_error


def cached_text_encoder(name: str = DEFAULT_TEXT_ENCODER) -> Optional[Path]:
    """The folder with the encoder's files, or None when it must be downloaded first. No network access.

    A local folder counts when it has a config.json; a Hub id when the Hub cache holds its
    config, tokenizer config and every weight shard.
    """
    if looks_like_path(name):
        folder = Path(name).expanduser()
        return folder if (folder / "config.json").is_file() else None
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> Optional[Path]:
        found = try_to_load_from_cache(name, filename)
        return Path(found) if isinstance(found, str) else None

    config, index = cached("config.json"), cached("model.safetensors.index.json")
    if config is None or cached("tokenizer_config.json") is None:
        return None
    try:
        shards = set(json.loads(index.read_text())["weight_map"].values()) if index else {"model.safetensors"}
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return config.parent if all(cached(shard) is not None for shard in shards) else None


def text_encoder_download_bytes(name: str = DEFAULT_TEXT_ENCODER) -> Optional[int]:
    """Bytes still to download before the encoder can load: 0 when on disk, None when unknown."""
    if cached_text_encoder(name) is not None:
        return 0
    return DEFAULT_TEXT_ENCODER_BYTES if name == DEFAULT_TEXT_ENCODER else None


def text_encoder_memory_bytes(name: str, device: str | torch.device) -> Optional[int]:
    """Memory the encoder's weights take once loaded for ``device`` (bfloat16 on CUDA, float32
    elsewhere, as the recipe loads them); None when the size cannot be known without downloading."""
    folder = cached_text_encoder(name)
    if folder is not None:
        weights = sum(f.stat().st_size for f in folder.iterdir() if f.suffix in {".safetensors", ".bin"} and f.is_file())
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            config = {}  # loading reports a broken config; here the size only decides whether it fits
        stored = _DTYPE_BYTES.get(str(config.get("torch_dtype") or config.get("dtype")), 4)
    elif name == DEFAULT_TEXT_ENCODER:
        weights, stored = DEFAULT_TEXT_ENCODER_BYTES, 2
    else:
        return None
    loaded = 2 if _on_cuda(device) else 4
    return weights * loaded // stored or None


def _on_cuda(device: str | torch.device) -> bool:
    if str(device) == "auto":  # as the predictor resolves it
        return torch.cuda.is_available()
    return torch.device(device).type == "cuda"


def check_text_encoder_memory(name: str, device: str | torch.device) -> None:
    """Raise ModelError when the encoder cannot fit in the memory that is free now."""
    needed, available = text_encoder_memory_bytes(name, device), available_memory_bytes()
    if needed is None or available is None or available >= needed:
        return
    on_gpu = _on_cuda(device)
    where = "in bfloat16 for the GPU" if on_gpu else "in float32 on the CPU"
    alternative = "" if on_gpu else ", run on a CUDA GPU (it then needs half as much)"
    raise ModelError(
        f"The text encoder '{name}' needs about {needed / 1e9:.1f} GB of memory ({where}), but only "
        f"{available / 1e9:.1f} GB is free. Close other programs{alternative}, or use prompts from the embedding "
        "bank, which need no text encoder."
    )


def download_text_encoder(
    name: str = DEFAULT_TEXT_ENCODER,
    device: str | torch.device = "cpu",
    progress: Optional[Progress] = None,
    cancel: CancelCheck = None,
    python: str = sys.executable,
) -> Path:
    """The encoder's folder, downloading a Hub encoder into the Hub cache first if needed.

    Refuses (ModelError) before downloading when the encoder would not fit in memory on
    ``device``. ``progress(bytes, total)``, Cancel and timeouts as in ``download_snapshot``;
    ``python`` runs the download (inside Slicer: PythonSlicer).
    """
    folder = cached_text_encoder(name)
    if folder is not None:
        return folder
    if looks_like_path(name):
        return Path(_model_folder(name))  # raises the ModelError that says what is wrong with it
    check_text_encoder_memory(name, device)
    from VoxTellCore.text.download import download_snapshot

    return download_snapshot(
        name, TEXT_ENCODER_PATTERNS, progress, cancel, expected_bytes=text_encoder_download_bytes(name) or 0, python=python
    )


class Qwen3TextEncoder:
    """Embeds prompts with a Qwen3 embedding model (the released recipe).

    The tokenizer and backbone are loaded on the first ``embed`` and released again
    after it, unless ``keep_loaded`` is set (an interactive session that embeds often);
    a kept backbone is parked on the CPU between calls so the GPU stays free for the
    segmentation network. Loading checks the free memory first; with ``allow_download``
    False a Hub encoder that is not in the cache is a ModelError instead of a silent download.
    """

    def __init__(
        self,
        name_or_path: str = DEFAULT_TEXT_ENCODER,
        device: str | torch.device = "cpu",
        keep_loaded: bool = False,
        allow_download: bool = True,
    ) -> None:
        self.name_or_path = str(name_or_path)
        self.device = torch.device(device)
        self.keep_loaded = keep_loaded
        self.allow_download = allow_download
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
        name = self.name_or_path
        if not self.allow_download and not looks_like_path(name) and cached_text_encoder(name) is None:
            size = text_encoder_download_bytes(name)
            raise ModelError(
                f"The text encoder '{name}' is not downloaded yet" + (f" (about {size / 1e9:.1f} GB)" if size else "")
                + f". Download it first (in Slicer: confirm the download when asked), or with `hf download {name}`."
            )
        check_text_encoder_memory(name, self.device)
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
