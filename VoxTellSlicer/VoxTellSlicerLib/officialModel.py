"""The Hub downloads behind the module: the official VoxTell model and the Qwen3 text encoder.

``cachedOfficialModel`` and ``textEncoderDownload`` look only at the local Hugging Face
cache, so the GUI thread can call them; the downloads run in a worker thread (a child
PythonSlicer process, see ``VoxTellCore.text.download``) with progress, timeouts and Cancel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from VoxTellCore.errors import ModelError
from VoxTellCore.models import OFFICIAL_BANK, OFFICIAL_MODEL, OFFICIAL_REPO
from VoxTellCore.progress import CancelCheck, Progress

OFFICIAL_PATTERNS = (f"{OFFICIAL_MODEL}/*", OFFICIAL_BANK)
# fold_0/checkpoint_final.pth of the release is 1,774,571,706 bytes ("about 1.8 GB"); the plans and
# the embedding bank add little. The exact total comes from the Hub when the download starts.
OFFICIAL_MODEL_BYTES = 1_774_571_706


def cachedOfficialModel(cacheDir: Optional[Path] = None) -> Optional[Tuple[Path, Optional[Path]]]:
    """(model folder, embedding bank or None) from the local Hub cache, or None when the model
    is not there. No network access."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # dependencies not set up yet
        return None

    def cached(filename: str) -> Optional[Path]:
        found = try_to_load_from_cache(OFFICIAL_REPO, filename, cache_dir=cacheDir)
        return Path(found) if isinstance(found, str) else None

    plans = cached(f"{OFFICIAL_MODEL}/plans.json")
    if plans is None or cached(f"{OFFICIAL_MODEL}/fold_0/checkpoint_final.pth") is None:
        return None
    return plans.parent, cached(OFFICIAL_BANK)


def downloadOfficialModel(
    progress: Optional[Progress] = None, cancel: CancelCheck = None, cacheDir: Optional[Path] = None
) -> Tuple[Path, Optional[Path]]:
    """(model folder, embedding bank) of the official model, downloading what the cache lacks.

    Call it from a worker thread: ``progress(bytes, total)`` is called there. Cancel stops the
    download at once (it resumes next time); a failure or a stalled network raises ModelError
    naming the ``hf download`` command for an offline copy.
    """
    from VoxTellCore.text.download import download_snapshot
    from VoxTellSlicerLib.dependencies import pythonExecutable

    found = cachedOfficialModel(cacheDir)
    if found is not None:
        return found
    download_snapshot(
        OFFICIAL_REPO, OFFICIAL_PATTERNS, progress, cancel,
        expected_bytes=OFFICIAL_MODEL_BYTES, cache_dir=cacheDir, python=pythonExecutable(),
    )
    found = cachedOfficialModel(cacheDir)
    if found is None:
        raise ModelError(
            f"The download of {OFFICIAL_REPO} finished but {OFFICIAL_MODEL}/plans.json or its fold_0 checkpoint is "
            "missing. Press Run again to resume, or choose a local model folder."
        )
    return found


def textEncoderDownload(encoder: str, device: str) -> Optional[str]:
    """What the GUI asks before the first prompt that needs the text encoder, or None when the
    encoder is already on disk. No network access. Raises ModelError when it cannot fit in memory."""
    from VoxTellCore.text.encoder import (
        check_text_encoder_memory,
        text_encoder_download_bytes,
        text_encoder_memory_bytes,
    )

    size = text_encoder_download_bytes(encoder)
    if size == 0:
        return None
    check_text_encoder_memory(encoder, device)
    memory = text_encoder_memory_bytes(encoder, device)
    amount = f"about {size / 1e9:.1f} GB" if size else "size unknown"
    needs = f" It needs about {memory / 1e9:.0f} GB of free memory while it runs." if memory else ""
    return (
        f"Prompts that are not in the embedding bank need the text encoder {encoder} ({amount} to download once, "
        f"into the Hugging Face cache).{needs} Download it now? Prompts from the bank work without it."
    )


def downloadTextEncoder(
    encoder: str, device: str, progress: Optional[Progress] = None, cancel: CancelCheck = None
) -> Path:
    """The text encoder's folder, downloading it first if needed (worker thread; progress, Cancel
    and timeouts as for the model). Refuses before downloading when it cannot fit in memory."""
    from VoxTellCore.text.encoder import download_text_encoder
    from VoxTellSlicerLib.dependencies import pythonExecutable

    return download_text_encoder(encoder, device, progress, cancel, python=pythonExecutable())
