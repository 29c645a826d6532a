"""Which model folder to use: ``demo``, a folder, ``$VOXTELL_MODEL``, or the official download."""

from __future__ import annotations

import os
from pathlib import Path

from VoxTellCore.errors import ModelError

OFFICIAL_REPO = "mrokuss/VoxTell"
OFFICIAL_MODEL = "voxtell_v1.1"
OFFICIAL_BANK = f"embeddings/{OFFICIAL_MODEL}/text_embeddings.npz"
DEMO_NAME = "demo"
DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "Resources" / "DemoModel"
DEMO_DESCRIPTION = "demo model (synthetic training data, not for clinical images)"


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """``-m`` first, then ``$VOXTELL_MODEL``, then the official model from the Hugging Face Hub."""
    if model is None or str(model) == "":
        model = os.environ.get("VOXTELL_MODEL") or None
    if model is not None and str(model) == DEMO_NAME:
        if not (DEMO_MODEL_DIR / "plans.json").is_file():
            raise ModelError(
                f"The built-in demo model is missing from {DEMO_MODEL_DIR}. Reinstall VoxTell from a full "
                "checkout, or rebuild it with `python -m Training.demo_model` from the checkout (about an hour "
                "on a CPU; see README)."
            )
        return DEMO_MODEL_DIR
    if model is not None:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ModelError(f"The model folder {path} does not exist. Pass a folder with plans.json and fold_0/, or `-m demo`.")
        return path
    return download_official_model()


def download_official_model() -> Path:
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(repo_id=OFFICIAL_REPO, allow_patterns=[f"{OFFICIAL_MODEL}/*"])
    except Exception as exc:  # any hub/network failure gets the same advice
        raise ModelError(
            f"No model given and the official {OFFICIAL_MODEL} could not be downloaded from the Hugging Face Hub "
            f"({type(exc).__name__}). Either connect to the internet once (the download is cached), download it "
            f"elsewhere with `hf download {OFFICIAL_REPO} --include '{OFFICIAL_MODEL}/*' --local-dir voxtell` "
            f"and pass its voxtell/{OFFICIAL_MODEL} folder with -m or $VOXTELL_MODEL, or try the built-in demo model with `-m demo`."
        ) from exc
    return Path(local) / OFFICIAL_MODEL


def download_official_bank() -> Path | None:
    """The published embedding bank of the official model, or None when offline."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=OFFICIAL_REPO, filename=OFFICIAL_BANK))
    except Exception:
        return None
