"""The prompts of a batch, before the first image: known to the model, embedded once."""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from VoxTellCore.errors import InputError
from VoxTellCore.inference.cases import Case


def bank_labels(predictor: Any) -> set:
    """The lower-case prompts of the predictor's embedding bank (none for a predictor without one)."""
    bank = getattr(getattr(predictor, "embedder", None), "bank", None)
    return {label.lower() for label in getattr(bank, "labels", ())}


def check_vocabulary(predictor: Any, prompts: Sequence[str]) -> None:
    """The demo model knows only the prompts it was trained on (its bank): others are refused
    with the closest ones it knows. With any model, a prompt that no name of the terminology, its
    synonyms or the bank matches but one nearly does gets a "did you mean" warning."""
    from VoxTellCore.models import DEMO_NAME
    from VoxTellCore.terminology import TYPO_SIMILARITY, closest_prompts, known_prompts, prompt_key

    bank = bank_labels(predictor)
    unknown = [prompt for prompt in dict.fromkeys(prompts) if prompt_key(prompt) not in bank]
    if getattr(predictor, "is_demo", False) and unknown:
        lines = [f"  {prompt!r}: closest known: {', '.join(map(repr, closest_prompts(prompt, bank))) or 'none'}"
                 for prompt in unknown]
        raise InputError(f"The {DEMO_NAME} model knows only the {len(bank)} prompts it was trained on; these are "
                         "not among them:\n" + "\n".join(lines) + f"\nUse a known prompt (all of them: voxtell-core "
                         f"predict -m {DEMO_NAME} --list-embeddings) or a real VoxTell model.")
    names = known_prompts() | bank
    for prompt in unknown:
        if prompt_key(prompt) not in names:
            close = closest_prompts(prompt, names, cutoff=TYPO_SIMILARITY)
            if close:
                print(f"Warning: the prompt {prompt!r} matches no known anatomy name; did you mean "
                      f"{' or '.join(map(repr, close))}? It is segmented as written.", file=sys.stderr)


def announce_text_encoder(predictor: Any, prompts: Sequence[str]) -> None:
    """Before prompts outside the embedding bank load the text encoder: refuse when it cannot
    fit in memory, and say so when it must be downloaded first (about 8 GB for Qwen3-Embedding-4B)."""
    from VoxTellCore.text.encoder import check_text_encoder_memory, text_encoder_download_bytes

    embedder = getattr(predictor, "embedder", None)
    encoder = getattr(embedder, "encoder", None)
    needing = embedder.prompts_needing_encoder(prompts) if encoder is not None else []
    if not needing:
        return
    check_text_encoder_memory(encoder.name_or_path, predictor.device)
    missing = text_encoder_download_bytes(encoder.name_or_path)
    shown = ", ".join(repr(prompt) for prompt in needing[:3]) + (", ..." if len(needing) > 3 else "")
    if missing:
        print(f"{len(needing)} prompt(s) are not in the embedding bank ({shown}): downloading the text encoder "
              f"{encoder.name_or_path} first, about {missing / 1e9:.1f} GB, once. Prompts from the bank need no "
              "download (voxtell-core predict --list-embeddings).", file=sys.stderr)


def embed_once(predictor: Any, cases: Sequence[Case]) -> Callable[[Case], Any]:
    """Embed every distinct prompt of the batch once; returns a case's embedding rows."""
    unique = list(dict.fromkeys(prompt for case in cases for prompt in case.prompts))
    announce_text_encoder(predictor, unique)
    table = predictor.embed(unique)
    row = {prompt: index for index, prompt in enumerate(unique)}
    return lambda case: table[[row[prompt] for prompt in case.prompts]]
