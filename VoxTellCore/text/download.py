"""Hugging Face Hub downloads that can be followed, bounded in time and cancelled.

The download runs ``huggingface_hub.snapshot_download`` in a child Python process: only a
process can be stopped in the middle of a multi-GB file on every huggingface_hub version
(a thread cannot be interrupted, and older versions offer no per-chunk hook). The child
writes into the normal Hub cache, so a cancelled download resumes next time and what it
leaves is found by the ``local_files_only`` lookups. The caller's thread follows the bytes
arriving in the cache and calls ``progress``; it never touches the network itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from VoxTellCore.child_process import ChildProcess
from VoxTellCore.errors import Cancelled, ModelError
from VoxTellCore.progress import CancelCheck, Progress, is_cancelled

#: seconds any single Hub request may wait (connect or read) before it fails
REQUEST_TIMEOUT_S = 30
#: seconds without a new byte or message from the child before the download is given up; the
#: bound that always holds (huggingface_hub leaves some requests without a timeout of its own)
STALL_TIMEOUT_S = 60

# Runs in the child: prints JSON lines {"total": bytes still to download}, then {"path": snapshot folder},
# or {"error": ...}. The size comes from one metadata request with its own timeout.
_CHILD = r"""
import json, sys
from huggingface_hub import HfApi, snapshot_download, try_to_load_from_cache
from huggingface_hub.utils import filter_repo_objects
repo, patterns, cache_dir, timeout = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] or None, float(sys.argv[4])
try:
    try:
        info = HfApi().model_info(repo, files_metadata=True, timeout=timeout)
        wanted = set(filter_repo_objects([s.rfilename for s in info.siblings], allow_patterns=patterns))
        missing = [s for s in info.siblings if s.rfilename in wanted
                   and not isinstance(try_to_load_from_cache(repo, s.rfilename, cache_dir=cache_dir), str)]
        print(json.dumps({"total": sum(s.size or 0 for s in missing)}), flush=True)
    except Exception as error:  # the size is only for the progress bar; the download says what is wrong
        print(json.dumps({"note": f"size unknown: {type(error).__name__}"}), flush=True)
    path = snapshot_download(repo, allow_patterns=patterns, cache_dir=cache_dir, etag_timeout=timeout)
    print(json.dumps({"path": path}), flush=True)
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
    sys.exit(1)
"""


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hugging Face Hub cache (``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def repo_cache_folder(repo_id: str, cache_dir: str | os.PathLike | None = None) -> Path:
    return hub_cache_dir(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def bytes_in_folder(folder: Path) -> int:
    """Bytes of the real files under ``folder`` (blobs, partial downloads; not the snapshot links)."""
    if not folder.is_dir():
        return 0
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:  # a partial file renamed while we look
            pass
    return total


def hf_download_command(repo_id: str, patterns: Sequence[str]) -> str:
    """The shell command that downloads the same files (huggingface_hub installs ``hf``)."""
    include = " ".join(f'"{pattern}"' for pattern in patterns)
    return f"hf download {repo_id} --include {include}"


def download_snapshot(
    repo_id: str,
    patterns: Sequence[str],
    progress: Optional[Progress] = None,
    cancel: CancelCheck = None,
    expected_bytes: int = 0,
    cache_dir: str | os.PathLike | None = None,
    python: str = sys.executable,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    stall_timeout_s: float = STALL_TIMEOUT_S,
    poll_s: float = 0.25,
) -> Path:
    """Download the files of ``repo_id`` matching ``patterns`` into the Hub cache; the snapshot folder.

    ``progress(bytes downloaded, bytes to download or 0)`` is called from this thread.
    ``expected_bytes`` is shown until the Hub has said the real size. Cancel stops the child
    process within ``poll_s`` and raises Cancelled; a download that gets no byte for
    ``stall_timeout_s`` or fails raises ModelError with the ``hf download`` command to use instead.
    """
    folder = repo_cache_folder(repo_id, cache_dir)
    start = bytes_in_folder(folder)
    environment = dict(
        os.environ,
        HF_HUB_ETAG_TIMEOUT=str(max(1, round(request_timeout_s))),
        HF_HUB_DOWNLOAD_TIMEOUT=str(max(1, round(request_timeout_s))),
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
    )
    arguments = [repo_id, json.dumps(list(patterns)), str(cache_dir or ""), str(request_timeout_s)]
    total, seen_lines, last_done, last_activity = expected_bytes, 0, -1, time.monotonic()
    with ChildProcess([python, "-c", _CHILD, *arguments], env=environment,
                      name=f"{repo_id} download output") as child:
        lines = child.lines
        while child.running:
            if is_cancelled(cancel):
                raise Cancelled(f"Download of {repo_id} cancelled; what was downloaded is reused next time.")
            received = len(lines)
            for line in lines[seen_lines:received]:
                total = _message(line).get("total", total)
            done = bytes_in_folder(folder) - start
            if done != last_done or received != seen_lines:
                last_done, seen_lines, last_activity = done, received, time.monotonic()
            elif time.monotonic() - last_activity > stall_timeout_s:
                raise ModelError(
                    f"The download of {repo_id} got no data for {stall_timeout_s:.0f} s (network filtered or too slow). "
                    f"Check the internet connection or proxy (HTTPS_PROXY), or download it elsewhere with "
                    f"`{hf_download_command(repo_id, patterns)}`."
                )
            if progress is not None:
                progress(max(done, 0), max(total, done, 0) if total else 0)
            time.sleep(poll_s)

    messages = [_message(line) for line in lines]
    path = next((m["path"] for m in messages if "path" in m), None)
    if child.returncode != 0 or path is None:
        error = next((m["error"] for m in messages if "error" in m), None)
        if error is None:  # the child died before it could report (e.g. huggingface_hub missing)
            error = " ".join(line.strip() for line in lines[-3:]) or f"exit code {child.returncode}"
        error = " ".join(error.split())  # one line for a status bar or terminal
        raise ModelError(
            f"{repo_id} could not be downloaded from the Hugging Face Hub ({error}). Check the internet "
            f"connection or proxy (HTTPS_PROXY) and retry, or download it on another computer with "
            f"`{hf_download_command(repo_id, patterns)}` and copy the folder."
        )
    if progress is not None:
        done = max(bytes_in_folder(folder) - start, 0)
        progress(max(total, done), max(total, done))
    return Path(path)


def _message(line: str) -> dict:
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}
