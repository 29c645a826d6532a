"""What the prompt box completes: the terminology's structure names (the names, colours and
codes a segment gets) and the prompts of the model's own embedding bank (answered without the
text encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import List

from VoxTellCore.models import resolve_model_dir
from VoxTellCore.terminology import default_table
from VoxTellCore.text.bank import EmbeddingBank
from VoxTellSlicerLib.options import OFFICIAL_MODEL

BANK_FILE = "embedding_bank.npz"


def prompt_suggestions(model: str) -> List[str]:
    """Bank prompts first (the model knows them), then terminology names; sorted, no repeats.
    The official model's bank is not downloaded for this: its prompts come after its first run."""
    bank: List[str] = []
    if model != OFFICIAL_MODEL:
        path = Path(resolve_model_dir(model)) / BANK_FILE
        if path.is_file():
            bank = sorted(EmbeddingBank.load(path).labels)
    terminology = sorted(label.lower() for label in default_table().entries)
    return list(dict.fromkeys(bank + terminology))
