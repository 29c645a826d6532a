"""Real servers on 127.0.0.1 for the server tests: ours as a `voxtell-core serve` child process,
any ASGI app (e.g. the release's) in a thread; random free ports, bounded waits, always stopped."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from scipy.ndimage import gaussian_filter

from VoxTellCore.io import Volume
from VoxTellCore.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(np.__file__).resolve().parents[1]



def wait_healthy(url: str, deadline_s: float = 90.0, process: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy in {deadline_s} s")


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log: Path
    port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill_hard(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def serve(args: list, log: Path, env: Optional[dict] = None, port: Optional[int] = None,
          scheme: str = "http", wait: bool = True) -> Iterator[ServerProcess]:
    """``voxtell-core serve ARGS`` on a free port (``--port`` unless given)."""
    port = port or free_port()
    command = [sys.executable, "-m", "VoxTellCore.cli", "serve", "--port", str(port), *map(str, args)]
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=environment, cwd=ROOT)
    server = ServerProcess(f"{scheme}://127.0.0.1:{port}", process, log, port)
    try:
        if wait:
            try:
                wait_healthy(server.url, process=process) if scheme == "http" else time.sleep(0)
            except Exception as error:
                raise RuntimeError(f"{error}; its output:\n{server.output()}") from None
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """An ASGI app (e.g. the release's voxtell-server app) under uvicorn in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 30)
        yield url
    finally:
        server.should_exit = True
        thread.join(15)


def load_napari_client() -> types.ModuleType:
    """napari-voxtell 0.2.0's ``remote/client.py``, unmodified, loaded by file: the package's
    ``__init__`` imports napari, which the tests do not install."""
    folder = SITE / "napari_voxtell" / "remote"
    for package in ("napari_voxtell", "napari_voxtell.remote"):
        module = sys.modules.setdefault(package, types.ModuleType(package))
        module.__path__ = []  # a namespace stand-in: its real __init__ is never run
    for name in ("serialization", "client"):
        spec = importlib.util.spec_from_file_location(f"napari_voxtell.remote.{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["napari_voxtell.remote.client"]


def smooth_volume(shape=(40, 70, 90), seed: int = 0, ijk_to_ras: Optional[np.ndarray] = None) -> Volume:
    """A CT-like int-valued volume (float32) in LPS-like orientation unless given."""
    rng = np.random.default_rng(seed)
    array = (gaussian_filter(rng.standard_normal(shape), 4) * 3000).round().astype(np.float32)
    matrix = ijk_to_ras if ijk_to_ras is not None else np.array(
        [[-0.8, 0, 0, 100.0], [0, -0.9, 0, 80.0], [0, 0, 2.5, -40.0], [0, 0, 0, 1]])
    return Volume(array=array, ijk_to_ras=matrix, source="test volume")



#: Prompts of the tiny model's bank (no text encoder is ever needed).
BANK_PROMPTS = ["liver", "spleen", "aorta", "left kidney", "right kidney", "heart", "left lung", "right lung"]


def tiny_model(folder: Path) -> tuple:
    """A tiny random model folder and an embedding bank of ``BANK_PROMPTS``."""
    from model_fixtures import TINY, make_bank, make_model_folder

    folder.mkdir(parents=True, exist_ok=True)
    model = make_model_folder(folder / "model", TINY, seed=1)
    return model, make_bank(folder / "bank.npz", BANK_PROMPTS, TINY.text_embedding_dim, seed=2)
