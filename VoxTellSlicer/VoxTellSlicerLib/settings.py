"""The user's VoxTell choices that outlive a scene and a restart: Slicer's user settings.

A scene's parameter node is reset by Close Scene and stored in every scene file; the model,
its folder, the device and the precision are the user's, not the scene's, so they live in
``slicer.app.userSettings()`` (a QSettings) under ``VoxTell/<name>`` and the module fills its
parameter node from them. Each setting is one typed ``Setting``: a new one (e.g. a server URL)
is one more line in ``USER_SETTINGS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

GROUP = "VoxTell"


@dataclass(frozen=True)
class Setting:
    """``name`` is also the parameter node's parameter; ``choices`` (if any) bound the values."""

    name: str
    default: str
    choices: Tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{GROUP}/{self.name}"

    def valid(self, value: str) -> str:
        return value if value and (not self.choices or value in self.choices) else self.default


MODEL_SOURCE = Setting("modelSource", "official", ("official", "folder", "demo"))  # RunOptions names
MODEL_FOLDER = Setting("modelFolder", "")
DEVICE = Setting("device", "auto")
PRECISION = Setting("precision", "auto", ("auto", "bf16"))
USER_SETTINGS = (MODEL_SOURCE, MODEL_FOLDER, DEVICE, PRECISION)
#: Where runs compute: "local" (this computer) or "server" (a VoxTell server, docs/server.md).
#: Kept out of USER_SETTINGS, so neither the server nor its key reaches a parameter node or a scene.
COMPUTE_ON = Setting("computeOn", "local", ("local", "server"))
SERVER_URL = Setting("serverUrl", "")
SERVER_KEY = Setting("serverKey", "")


class UserSettings:
    """Typed access to a QSettings-like ``store`` (``value(key, default)``, ``setValue(key, value)``);
    by default Slicer's ``slicer.app.userSettings()``."""

    def __init__(self, store: Any = None) -> None:
        if store is None:
            import slicer

            store = slicer.app.userSettings()
        self.store = store

    def get(self, setting: Setting) -> str:
        value = self.store.value(setting.key, setting.default)
        return setting.valid("" if value is None else str(value))

    def set(self, setting: Setting, value: Optional[str]) -> None:
        self.store.setValue(setting.key, setting.valid(value or "") if setting.choices else (value or ""))

    def fillParameterNode(self, parameterNode) -> None:
        """Give a (raw, vtkMRMLScriptedModuleNode) parameter node the user's settings."""
        for setting in USER_SETTINGS:
            parameterNode.SetParameter(setting.name, self.get(setting))
