"""Text side: Qwen3 encoder recipe, embedding bank, PromptEmbedder caching, release parity."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from text_fixtures import TINY_PROMPTS, make_tiny_bank, make_tiny_encoder
from transformers import AutoModel, AutoTokenizer

from VoxTellCore.errors import InputError, ModelError
from VoxTellCore.text import EmbeddingBank, PromptEmbedder, Qwen3TextEncoder, default_cache_dir
from VoxTellCore.text import encoder as encoder_module
from VoxTellCore.text.encoder import last_token_pool, wrap_prompt
from VoxTellCore.text.small_qwen3 import build_small_qwen3

RELEASE_WRAPPED_LIVER = (
    "Instruct: Given an anatomical term query, retrieve the precise anatomical entity and "
    "location it represents\nQuery: liver"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(make_tiny_encoder(tmp_path_factory.mktemp("encoder")))


def load_auto(folder: str):
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    return tokenizer, model


class RecordingTokenizer:
    """Delegates to a tokenizer and records what it was asked to tokenize."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []

    def __call__(self, texts, **kwargs):
        self.calls.append((list(texts), kwargs))
        return self.tokenizer(texts, **kwargs)


def recording_encoder(folder: str) -> tuple[Qwen3TextEncoder, RecordingTokenizer]:
    encoder = Qwen3TextEncoder(folder, keep_loaded=True)
    encoder.load()
    encoder.tokenizer = recorder = RecordingTokenizer(encoder.tokenizer)
    return encoder, recorder


def make_bank_with_liver(tmp_path):
    bank = EmbeddingBank()
    bank.add("liver", np.ones(16))
    return bank.save(tmp_path / "liver.npz")


# --- the tiny encoder --------------------------------------------------------------


def test_tiny_encoder_is_a_qwen3_model_loaded_by_the_auto_classes(tiny):
    tokenizer, model = load_auto(tiny)
    assert type(model).__name__ == "Qwen3Model"
    assert model.config.hidden_size == 16
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    tokens = tokenizer.tokenize(wrap_prompt("left kidney"))
    assert tokens[-1] == " left kidney"  # each corpus prompt is one token
    assert tokenizer.unk_token_id not in tokenizer(wrap_prompt("zygomatic arch"))["input_ids"]


def test_small_qwen3_is_reproducible_and_keeps_prompts_apart(tmp_path):
    first = build_small_qwen3(tmp_path / "a", TINY_PROMPTS, hidden_size=16, seed=3)
    again = build_small_qwen3(tmp_path / "b", TINY_PROMPTS, hidden_size=16, seed=3)
    other = build_small_qwen3(tmp_path / "c", TINY_PROMPTS, hidden_size=16, seed=4)
    weights = [(folder / "model.safetensors").read_bytes() for folder in (first, again, other)]
    assert weights[0] == weights[1] != weights[2]
    assert (first / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()

    vectors = torch.nn.functional.normalize(Qwen3TextEncoder(str(first)).embed(list(TINY_PROMPTS)), dim=1)
    cosine = vectors @ vectors.T
    assert cosine[~torch.eye(len(TINY_PROMPTS), dtype=torch.bool)].max() < 0.9


# --- Qwen3TextEncoder ---------------------------------------------------------------


def test_encoder_is_last_token_pooling_of_left_padded_batches(tiny):
    prompts = ["liver", "Right lung upper lobe nodule with spiculated margins", "left kidney"]
    tokenizer, model = load_auto(tiny)
    batch = tokenizer([wrap_prompt(p) for p in prompts], padding=True, return_tensors="pt")
    assert not batch["attention_mask"].all(), "the prompts must need padding"
    with torch.no_grad():
        hand = model(**batch).last_hidden_state[:, -1]
        alone = torch.stack(
            [model(**tokenizer(wrap_prompt(p), return_tensors="pt")).last_hidden_state[0, -1] for p in prompts]
        )

    encoder = Qwen3TextEncoder(tiny)
    embedded = encoder.embed(prompts)
    assert embedded.dtype == torch.float32 and embedded.device.type == "cpu"
    torch.testing.assert_close(embedded, hand, rtol=0, atol=0)
    torch.testing.assert_close(embedded, alone, rtol=1e-4, atol=1e-4)  # padding does not leak in
    assert not torch.allclose(embedded.norm(dim=1), torch.ones(3))  # not L2-normalised
    assert not encoder.loaded  # released after use


def test_last_token_pool_handles_left_and_right_padding():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0]])
    assert last_token_pool(hidden, left).flatten().tolist() == [3.0, 7.0]
    assert last_token_pool(hidden, right).flatten().tolist() == [1.0, 6.0]


def test_encoder_lowercases_and_wraps_with_the_release_instruction(tiny):
    encoder, recorder = recording_encoder(tiny)
    upper, lower = encoder.embed(["Liver"]), encoder.embed(["liver"])
    torch.testing.assert_close(upper, lower, rtol=0, atol=0)
    texts, options = recorder.calls[0]
    assert texts == [RELEASE_WRAPPED_LIVER]
    assert options["padding"] is True and options["truncation"] is True and options["max_length"] == 8192
    assert encoder.tokenizer.tokenizer.padding_side == "left"


def test_encoder_batches_32_prompts_and_keep_loaded(tiny):
    encoder, recorder = recording_encoder(tiny)
    prompts = [f"structure {i}" for i in range(70)]
    vectors = encoder.embed(prompts)
    assert [len(texts) for texts, _ in recorder.calls] == [32, 32, 6]
    assert vectors.shape == (70, 16)
    torch.testing.assert_close(vectors[40:41], Qwen3TextEncoder(tiny).embed(prompts[40:41]), rtol=1e-5, atol=1e-5)
    assert encoder.loaded and next(encoder.backbone.parameters()).device.type == "cpu"
    encoder.release()
    assert not encoder.loaded


def test_missing_encoder_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match=r"does not exist.*hf download Qwen/Qwen3-Embedding-4B` \(about 8.0 GB"):
        Qwen3TextEncoder(str(tmp_path / "no-such-encoder")).embed(["liver"])


def test_folder_without_config_is_a_model_error(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="has no config.json"):
        Qwen3TextEncoder(str(tmp_path)).embed(["liver"])


def test_offline_hub_id_not_in_cache_is_a_model_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="voxtell-tests/no-such-encoder.*hf download.*--text-encoder"):
        Qwen3TextEncoder("voxtell-tests/no-such-encoder").embed(["liver"])


def test_connection_failure_retries_with_the_local_cache(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    class FlakyHub:
        @staticmethod
        def from_pretrained(name, local_files_only, **kwargs):
            calls.append(local_files_only)
            if not local_files_only:
                raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")
            return "from cache"

    assert encoder_module.from_pretrained(FlakyHub, "org/model") == "from cache"
    assert calls == [False, True]


# --- EmbeddingBank ------------------------------------------------------------------


def test_bank_round_trip_in_the_release_format(tmp_path):
    from voxtell.utils.embedding_bank import load_embedding_bank

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2, 8)).astype(np.float32)
    bank = EmbeddingBank()
    bank.add("Liver", vectors[0])
    bank.add("left kidney", vectors[1])
    path = bank.save(tmp_path / "bank.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.npz"]  # no temporary left behind

    with np.load(path) as data:
        assert data["labels"].dtype.kind == "U" and data["embeddings"].dtype == np.float16
    loaded = EmbeddingBank.load(path)
    assert loaded.labels == ["liver", "left kidney"] and loaded.dim == 8
    assert "LIVER" in loaded and "spleen" not in loaded
    np.testing.assert_array_equal(loaded.get("liver"), vectors[0].astype(np.float16))
    release = load_embedding_bank(str(path))
    np.testing.assert_array_equal(release["left kidney"], loaded.get("Left Kidney"))


def test_bank_lowercases_labels_of_release_files(tmp_path):
    path = tmp_path / "release.npz"
    np.savez(path, labels=np.array(["Aorta", "SPLEEN"]), embeddings=np.ones((2, 4), np.float16))
    bank = EmbeddingBank.load(path)
    assert bank.labels == ["aorta", "spleen"] and len(bank) == 2


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"labels": np.array(["liver"])}, "lacks the array.*embeddings"),
        ({"labels": np.array(["liver"]), "embeddings": np.ones(4, np.float16)}, "shape"),
        ({"labels": np.array(["liver", "aorta"]), "embeddings": np.ones((1, 4), np.float16)}, "shape"),
        ({"labels": np.array([1, 2]), "embeddings": np.ones((2, 4), np.float16)}, "string array"),
    ],
)
def test_bad_bank_files_are_model_errors(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match=message):
        EmbeddingBank.load(path)


def test_unreadable_or_missing_bank_is_a_model_error(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ModelError, match="cannot be read"):
        EmbeddingBank.load(garbage)
    with pytest.raises(ModelError, match="does not exist"):
        EmbeddingBank.load(tmp_path / "missing.npz")


def test_bank_rejects_mixed_dimensions():
    bank = EmbeddingBank()
    bank.add("liver", np.zeros(8))
    with pytest.raises(InputError, match="same text encoder"):
        bank.add("aorta", np.zeros(4))
    with pytest.raises(ModelError, match="holds 8-value embeddings but the model uses 16"):
        bank.check_dim(16, "the model")


# --- PromptEmbedder -----------------------------------------------------------------


def forbid_backbone(monkeypatch):
    def refuse(self):
        raise AssertionError("the text backbone must not be loaded")

    monkeypatch.setattr(Qwen3TextEncoder, "load", refuse)


def test_bank_prompts_never_load_the_encoder(tmp_path, monkeypatch):
    bank = EmbeddingBank()
    rng = np.random.default_rng(1)
    for prompt in ("liver", "spleen"):
        bank.add(prompt, rng.standard_normal(16))
    embedder = PromptEmbedder(bank=bank, encoder=str(tmp_path / "absent-encoder"), cache_dir=tmp_path / "cache")
    vectors = embedder.embed(["Spleen", "liver", "spleen"])
    assert vectors.dtype == torch.float32 and vectors.shape == (3, 16)
    np.testing.assert_array_equal(vectors[0].numpy(), bank.get("spleen").astype(np.float32))
    np.testing.assert_array_equal(vectors[1].numpy(), bank.get("liver").astype(np.float32))
    assert torch.equal(vectors[0], vectors[2])
    assert embedder.dim == 16
    with pytest.raises(ModelError, match="absent-encoder.*does not exist"):
        embedder.embed(["aorta"])


def test_computed_prompts_are_fp16_cached_on_disk_and_reused(tiny, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    embedded_batches = []
    original_embed = Qwen3TextEncoder.embed

    def spy(self, prompts):
        embedded_batches.append(list(prompts))
        return original_embed(self, prompts)

    monkeypatch.setattr(Qwen3TextEncoder, "embed", spy)
    first = PromptEmbedder(encoder=tiny, cache_dir=cache).embed(["Liver", "aorta", "liver"])
    assert embedded_batches == [["liver", "aorta"]]  # unique unknown prompts, one call
    assert len(list(cache.glob("*.npy"))) == 2 and not list(cache.glob("*.tmp"))

    exact = Qwen3TextEncoder(tiny).embed(["liver", "aorta"])
    torch.testing.assert_close(first[:2], exact.half().float(), rtol=0, atol=0)
    assert not torch.equal(first[:2], exact)  # the fp16 rounding really happened

    forbid_backbone(monkeypatch)
    second = PromptEmbedder(encoder=tiny, cache_dir=cache).embed(["aorta", "LIVER"])
    assert torch.equal(second, first[[1, 0]])


def test_only_unknown_prompts_reach_the_encoder(tiny, tmp_path, monkeypatch):
    bank = EmbeddingBank.load(make_tiny_bank(tmp_path, tiny, ["liver"]))
    seen = []
    original_embed = Qwen3TextEncoder.embed
    monkeypatch.setattr(Qwen3TextEncoder, "embed", lambda self, p: seen.append(list(p)) or original_embed(self, p))
    embedder = PromptEmbedder(bank=bank, encoder=tiny, disk_cache=False)
    vectors = embedder.embed(["liver", "spleen"])
    assert seen == [["spleen"]] and embedder.cache_dir is None
    np.testing.assert_array_equal(vectors[0].numpy(), bank.get("liver").astype(np.float32))


def test_results_are_identical_across_runs_and_sources(tiny, tmp_path):
    prompts = ["left kidney", "right kidney", "pancreas"]
    bank_path = make_tiny_bank(tmp_path, tiny, prompts)
    runs = [PromptEmbedder(encoder=tiny, disk_cache=False).embed(prompts) for _ in range(2)]
    from_bank = PromptEmbedder(bank=bank_path, encoder=None).embed(prompts)
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], from_bank)


def test_default_cache_dir_follows_the_environment(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXTELL_CACHE_DIR", str(tmp_path / "voxtell-cache"))
    embedder = PromptEmbedder(encoder=tiny)
    assert embedder.cache_dir == default_cache_dir(tiny)
    assert embedder.cache_dir.parent == tmp_path / "voxtell-cache" / "embeddings"
    assert default_cache_dir(tiny) != default_cache_dir("Qwen/Qwen3-Embedding-4B")
    embedder.embed(["spleen"])
    assert len(list(embedder.cache_dir.glob("*.npy"))) == 1


@pytest.mark.parametrize("prompts, message", [([""], "Prompt 1"), (["liver", "   "], "Prompt 2"), ([], "No prompts")])
def test_empty_prompts_are_input_errors(tmp_path, prompts, message):
    with pytest.raises(InputError, match=message):
        PromptEmbedder(encoder=None).embed(prompts)


def test_unknown_prompt_without_encoder_names_it(tmp_path):
    embedder = PromptEmbedder(bank=make_bank_with_liver(tmp_path), encoder=None)
    with pytest.raises(InputError, match="'gallbladder' are not in the embedding bank and no text encoder is configured"):
        embedder.embed(["liver", "Gallbladder"])


def test_bank_and_encoder_of_different_sizes_is_a_model_error(tiny, tmp_path):
    bank = EmbeddingBank()
    bank.add("liver", np.ones(8))
    with pytest.raises(ModelError, match="8-value embeddings but the text encoder"):
        PromptEmbedder(bank=bank, encoder=tiny, disk_cache=False).embed(["aorta"])


# --- parity with the released VoxTellPredictor --------------------------------------


def test_embeddings_match_the_release_predictor(tiny, tmp_path):
    from voxtell.inference.predictor import VoxTellPredictor

    prompts = ["Liver", "right lung upper lobe nodule", "left kidney"]
    release = VoxTellPredictor.__new__(VoxTellPredictor)
    release.tokenizer, release.text_backbone = load_auto(tiny)
    release.device = torch.device("cpu")
    release.embedding_bank = None
    release.max_text_length = 8192
    release._text_encoding_model = tiny

    first_use = release.embed_text_prompts(prompts)[0]
    ours = Qwen3TextEncoder(tiny).embed(prompts)
    torch.testing.assert_close(ours, first_use, rtol=0, atol=1e-5)

    # The release reuses its fp16 copy from the second use on; we return that value always.
    second_use = release.embed_text_prompts(prompts)[0]
    assert torch.equal(PromptEmbedder(encoder=tiny, disk_cache=False).embed(prompts), second_use)


def test_embeddings_of_another_size_than_the_model_are_model_errors(tiny, tmp_path):
    with pytest.raises(ModelError, match="holds 16-value embeddings but the model uses 32"):
        PromptEmbedder(bank=make_bank_with_liver(tmp_path), encoder=None, expected_dim=32)
    embedder = PromptEmbedder(encoder=tiny, disk_cache=False, expected_dim=32)
    with pytest.raises(ModelError, match="gives 16-value embeddings but the model uses 32"):
        embedder.embed(["liver"])


# --- before the encoder loads: cached?, size, memory, download --------------------


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache for this process and its children."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def refuse_network(*args, **kwargs):
    raise AssertionError("network access")


def test_default_encoder_size_and_memory_are_stated_before_any_download(hub_cache, monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", refuse_network)
    assert encoder_module.cached_text_encoder() is None
    size = encoder_module.text_encoder_download_bytes()
    assert 7.5e9 < size < 8.5e9, "about 8 GB: 4.02 B bfloat16 parameters"
    cpu = encoder_module.text_encoder_memory_bytes(encoder_module.DEFAULT_TEXT_ENCODER, "cpu")
    assert cpu == 2 * size, "float32 on the CPU: ~16 GB"
    assert encoder_module.text_encoder_memory_bytes(encoder_module.DEFAULT_TEXT_ENCODER, "cuda") == size
    assert encoder_module.text_encoder_download_bytes("org/unknown-encoder") is None


def test_too_little_memory_is_refused_before_loading(tiny, monkeypatch):
    needed = encoder_module.text_encoder_memory_bytes(tiny, "cpu")
    weights = sum(f.stat().st_size for f in Path(tiny).glob("*.safetensors"))
    assert needed == weights, "a float32 folder loads at its size on the CPU"
    monkeypatch.setattr(encoder_module, "available_memory_bytes", lambda: needed - 1)
    forbid_backbone_load = Qwen3TextEncoder(tiny)
    with pytest.raises(ModelError, match=r"needs about .* GB of memory \(in float32 on the CPU\).*free.*run on a CUDA GPU"):
        forbid_backbone_load.embed(["liver"])
    assert not forbid_backbone_load.loaded
    monkeypatch.setattr(encoder_module, "available_memory_bytes", lambda: needed)
    assert Qwen3TextEncoder(tiny).embed(["liver"]).shape == (1, 16)


def test_available_memory_without_psutil_reads_proc_meminfo(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil -> ImportError
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        assert encoder_module.available_memory_bytes() is None
        return
    line = next(line for line in meminfo.read_text().splitlines() if line.startswith("MemAvailable:"))
    expected = int(line.split()[1]) * 1024
    assert abs(encoder_module.available_memory_bytes() - expected) < 512 * 2**20  # it moves a little meanwhile


def test_encoder_is_downloaded_with_progress_then_used_without_network(tiny, hub_cache, monkeypatch):
    from fake_hub import FakeHub

    files = {f.name: f.read_bytes() for f in Path(tiny).iterdir() if f.is_file()}
    files["README.md"] = b"not needed"
    seen = []
    with FakeHub({"voxtell-tests/tiny-encoder": files}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        folder = encoder_module.download_text_encoder("voxtell-tests/tiny-encoder", "cpu", lambda *p: seen.append(p))
    assert not any("README" in request for request in hub.requests), "only config, tokenizer and weights"
    assert seen[-1][0] == seen[-1][1] >= sum(len(data) for name, data in files.items() if name != "README.md")
    assert encoder_module.cached_text_encoder("voxtell-tests/tiny-encoder") == folder
    assert encoder_module.text_encoder_download_bytes("voxtell-tests/tiny-encoder") == 0

    monkeypatch.setattr(socket.socket, "connect", refuse_network)
    encoder = Qwen3TextEncoder("voxtell-tests/tiny-encoder", allow_download=False)
    torch.testing.assert_close(encoder.embed(["liver"]), Qwen3TextEncoder(tiny).embed(["liver"]), rtol=0, atol=0)


def test_download_is_refused_before_it_starts_when_memory_is_too_small(hub_cache, monkeypatch):
    from fake_hub import FakeHub

    monkeypatch.setattr(encoder_module, "available_memory_bytes", lambda: 4 * 10**9)
    with FakeHub({encoder_module.DEFAULT_TEXT_ENCODER: {"config.json": b"{}"}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(ModelError, match=r"needs about 16.1 GB .* only 4.0 GB is free"):
            encoder_module.download_text_encoder(encoder_module.DEFAULT_TEXT_ENCODER, "cpu")
    assert hub.requests == []


def test_without_download_permission_an_uncached_hub_encoder_is_an_error(hub_cache, monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", refuse_network)
    encoder = Qwen3TextEncoder(encoder_module.DEFAULT_TEXT_ENCODER, allow_download=False)
    with pytest.raises(ModelError, match=r"is not downloaded yet \(about 8.0 GB\).*hf download Qwen/Qwen3-Embedding-4B"):
        encoder.embed(["liver"])


def test_prompts_needing_the_encoder_are_known_without_loading_it(tmp_path, monkeypatch):
    forbid_backbone(monkeypatch)
    embedder = PromptEmbedder(bank=make_bank_with_liver(tmp_path), encoder="voxtell-tests/absent", cache_dir=tmp_path)
    assert embedder.prompts_needing_encoder(["Liver", "Spleen", "spleen", "aorta"]) == ["spleen", "aorta"]
    assert embedder.prompts_needing_encoder("LIVER") == []
