"""The page's actions on an in-process app (no browser): Cancel during a run writes nothing and
the page keeps answering; Run while a run goes on is refused; an unexpected failure is a message."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import VoxTellWeb  # noqa: F401  (VoxTellSlicerLib on the path)
from VoxTellCore.errors import Cancelled
from VoxTellCore.progress import is_cancelled


class GatedPredictor:
    """Reports progress, then waits for ``release`` (or Cancel); fails for the prompt 'boom'."""

    description, is_demo, precision = "gated stand-in", False, "auto"
    device = SimpleNamespace(type="cpu")

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        if "boom" in prompts:
            raise RuntimeError("stand-in failure")
        progress(1, 4)
        self.started.set()
        deadline = time.monotonic() + 20  # bounded: a missed Cancel fails the test instead of hanging it
        while not self.release.wait(0.02):
            if is_cancelled(cancel):
                raise Cancelled("Cancelled: nothing was written.")
            if time.monotonic() > deadline:
                raise RuntimeError("neither released nor cancelled")
        return np.stack([volume.array > 100 for _ in prompts]).astype(np.uint8)


@pytest.fixture
def app(phantom):
    from trame.app import get_server

    from VoxTellWeb.app import VoxTellWebApp

    predictor = GatedPredictor()
    made = VoxTellWebApp(get_server(f"actions-{id(predictor)}", client_type="vue3"), device="cpu",
                         predictor_factory=lambda *key: predictor)
    made.predictor = predictor
    asyncio.run(made._on_upload([{"name": phantom.name, "content": phantom.read_bytes()}]))
    assert made.server.state.voxtell_has_volume
    return made


def segment_count(app) -> int:
    return app._slicer_app.segmentation_editor.active_segmentation_node.GetSegmentation().GetNumberOfSegments()


def test_cancel_writes_nothing_and_the_next_run_works(app):
    state = app.server.state

    async def cancel_then_run():
        state.voxtell_prompts = ["liver"]
        running = asyncio.ensure_future(app.run())
        await asyncio.get_running_loop().run_in_executor(None, app.predictor.started.wait, 30)
        await asyncio.sleep(0.3)
        assert state.voxtell_running and state.voxtell_progress == 25
        await app.run()  # a second Run while one goes on: refused, the first goes on
        assert "already running" in state.voxtell_error
        app.cancel()
        await asyncio.wait_for(running, 15)
        assert state.voxtell_status.startswith("Run 1 cancelled") and segment_count(app) == 0
        assert not state.voxtell_running
        app.predictor.release.set()
        await app.run()

    asyncio.run(cancel_then_run())
    assert state.voxtell_status.startswith("Segmented liver (run 2,") and segment_count(app) == 1


def test_an_unexpected_failure_is_a_message_and_nothing_is_written(app):
    app.server.state.voxtell_prompts = ["boom"]
    asyncio.run(app.run())
    assert app.server.state.voxtell_error.startswith("Unexpected error (RuntimeError: stand-in failure)")
    assert segment_count(app) == 0 and not app.server.state.voxtell_running
