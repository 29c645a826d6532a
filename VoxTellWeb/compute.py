"""Where the page's runs compute: in this process (the module's shared VoxTellPredictor) or on a
VoxTell server (``voxtell-core serve``) through the core's torch-free client. The server's URL and
key come from the environment of whoever starts the app ($VOXTELL_SERVER_URL, $VOXTELL_API_KEY or
``--api-key-file``), never from the page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable, Optional

SERVER_URL_ENVIRONMENT = "VOXTELL_SERVER_URL"


class ServerCompute:
    """A VoxTell server as the module's logic sees a predictor: ``predict_volume``, ``device``
    (its ``type`` picks the precision option, which the server decides for itself), who made the masks."""

    def __init__(self, url: str, api_key: Optional[str]) -> None:
        from VoxTellCore.remote.client import RemotePredictor

        self.remote = RemotePredictor(url, api_key)
        self.device = SimpleNamespace(type="server")
        self.precision = "auto"
        self.description, self.is_demo = self.remote.description, self.remote.is_demo

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        return self.remote.predict_volume(volume, prompts, roi_ras=roi_ras, progress=progress, cancel=cancel)


def server_factory(url: str, api_key: Optional[str]) -> Callable[..., Any]:
    """A predictor factory for ``VoxTellLogic``: the server is first asked at the first run, so an
    unreachable one is a message in the page, not a failed start."""
    return lambda model, device, bank: ServerCompute(url, api_key)
