"""Small Qwen3 text encoders made locally, for tests and the demo model.

``build_small_qwen3`` writes a real Qwen3 model (random weights) and a tokenizer
trained on the given prompts into a folder that ``AutoTokenizer`` / ``AutoModel``
load exactly like ``Qwen/Qwen3-Embedding-4B``, so the whole text path
(``Qwen3TextEncoder``, ``PromptEmbedder``) runs unchanged on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

from VoxTellCore.text.bank import EmbeddingBank
from VoxTellCore.text.encoder import MAX_LENGTH, Qwen3TextEncoder, wrap_prompt

END_OF_TEXT = "<|endoftext|>"  # Qwen3's end-of-text token, also its padding token


def _unique_prompts(corpus: Iterable[str]) -> list[str]:
    prompts = list(dict.fromkeys(p.strip().lower() for p in corpus if p and p.strip()))
    if not prompts:
        raise ValueError("The corpus holds no non-empty prompt.")
    return prompts


def train_tokenizer(prompts: list[str], vocab_size: int | None = None, whole_prompt_tokens: bool = True):
    """A byte-level BPE tokenizer (like Qwen's) trained on the wrapped ``prompts``.

    Without a ``vocab_size`` the merges go on until every word of the corpus and of the
    instruction is a single token. With ``whole_prompt_tokens`` each corpus prompt, as it
    follows ``Query:``, is also one token. Last-token pooling then ends on a token unique
    to the prompt, so even a tiny random model gives clearly different embeddings for
    prompts that differ in one word ("left kidney" / "right kidney"). Text outside the
    corpus still tokenizes, into subwords or bytes.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [wrap_prompt(prompt) for prompt in prompts]
    merges_bound = 256 + 1 + sum(len(text.encode()) for text in texts)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(prompts) * whole_prompt_tokens if vocab_size else merges_bound,
        min_frequency=1,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    if whole_prompt_tokens:
        tokenizer.add_tokens([AddedToken(f" {prompt}", normalized=False) for prompt in prompts])
    return tokenizer


def build_small_qwen3(
    out_dir: str | Path,
    corpus: Iterable[str],
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    vocab_size: int | None = None,
    seed: int = 0,
    whole_prompt_tokens: bool = True,
    initializer_range: float = 0.3,
) -> Path:
    """Write a small random-weight Qwen3 embedding model and its tokenizer to ``out_dir``.

    The weights are drawn with ``seed`` (the global RNG is left untouched). The
    ``initializer_range`` is larger than Qwen3's 0.02 so attention mixes the tokens
    noticeably: prompts outside the corpus that share their last token still differ.
    """
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prompts = _unique_prompts(corpus)

    tokenizer = train_tokenizer(prompts, vocab_size, whole_prompt_tokens)
    if vocab_size is not None and vocab_size < tokenizer.get_vocab_size():
        raise ValueError(f"vocab_size={vocab_size} is too small: the tokenizer needs {tokenizer.get_vocab_size()}.")
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        padding_side="left",
        model_max_length=MAX_LENGTH,
    )
    wrapped.save_pretrained(out_dir)
    # transformers 5 records its own class name; the generic name loads in 4.x and 5.x.
    config_file = out_dir / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text(encoding="utf-8"))
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(tokenizer_config, indent=2))

    pad_id = tokenizer.token_to_id(END_OF_TEXT)
    config = Qwen3Config(
        vocab_size=vocab_size or tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=MAX_LENGTH,
        initializer_range=initializer_range,
        pad_token_id=pad_id,
        eos_token_id=pad_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3Model(config).eval()
    model.save_pretrained(out_dir)
    return out_dir


def build_embedding_bank(
    encoder_dir_or_id: str | Path,
    prompts: Iterable[str],
    out_path: str | Path,
    device: str | torch.device = "cpu",
) -> Path:
    """Embed ``prompts`` with the encoder (release recipe) and save them as a bank ``.npz``."""
    keys = _unique_prompts(prompts)
    vectors = Qwen3TextEncoder(str(encoder_dir_or_id), device).embed(keys)
    bank = EmbeddingBank()
    for key, vector in zip(keys, vectors.numpy()):
        bank.add(key, vector)
    return bank.save(out_path)
