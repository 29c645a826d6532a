"""Downloading the official VoxTell model with a progress callback the GUI can follow.

The download itself is VoxTellCore's (the Hugging Face Hub cache, resumable). It runs in
a worker thread while the caller's thread polls the bytes already in the cache, so the
progress callback (which processes GUI events) runs on the caller's thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from VoxTellCore.errors import Cancelled
from VoxTellCore.progress import CancelCheck, Progress, is_cancelled


def cacheFolder() -> Path:
    from huggingface_hub import constants

    from VoxTellCore.models import OFFICIAL_REPO

    return Path(constants.HF_HUB_CACHE) / ("models--" + OFFICIAL_REPO.replace("/", "--"))


def bytesInCache() -> int:
    folder = cacheFolder()
    if not folder.is_dir():
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def expectedBytes() -> int:
    """Size of the model files on the Hub, or 0 when it cannot be asked (offline)."""
    try:
        from huggingface_hub import HfApi

        from VoxTellCore.models import OFFICIAL_BANK, OFFICIAL_MODEL, OFFICIAL_REPO

        info = HfApi().model_info(OFFICIAL_REPO, files_metadata=True)
        wanted = [s for s in info.siblings if s.rfilename.startswith(OFFICIAL_MODEL + "/") or s.rfilename == OFFICIAL_BANK]
        return sum(s.size or 0 for s in wanted)
    except Exception:
        return 0


def downloadOfficialModel(
    progress: Progress | None = None,
    cancel: CancelCheck = None,
    pollSeconds: float = 0.5,
) -> tuple[Path, Path | None]:
    """(model folder, embedding bank) of the official model, downloading what is missing.

    ``progress(bytes in cache, expected bytes or 0)``. Cancelling stops waiting; the
    download finishes in the background and is reused next time.
    """
    from VoxTellCore import models

    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["model"] = models.download_official_model()
            result["bank"] = models.download_official_bank()
        except BaseException as exc:  # re-raised on the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=work, name="VoxTell download", daemon=True)
    worker.start()
    total = expectedBytes() if progress is not None else 0
    while worker.is_alive():
        worker.join(pollSeconds)
        if progress is not None:
            progress(bytesInCache(), total)
        if is_cancelled(cancel):
            raise Cancelled("Download cancelled; it continues in the background and is reused next time.")
    if "error" in result:
        raise result["error"]
    return result["model"], result["bank"]
