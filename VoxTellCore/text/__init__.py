"""Text side: prompts -> embeddings (Qwen3 encoder, embedding bank, cached PromptEmbedder).

Importing this package does not import transformers; the encoder loads it on first use.
The small-encoder builders live in ``VoxTellCore.text.small_qwen3``.
"""

from VoxTellCore.text.bank import EmbeddingBank
from VoxTellCore.text.embedder import PromptEmbedder, default_cache_dir
from VoxTellCore.text.encoder import DEFAULT_TEXT_ENCODER, Qwen3TextEncoder, wrap_prompt

__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "EmbeddingBank",
    "PromptEmbedder",
    "Qwen3TextEncoder",
    "default_cache_dir",
    "wrap_prompt",
]
