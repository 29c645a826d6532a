"""RunOptions: what a VoxTell run needs besides the image and the prompts.

One object for the module, the Segment Editor effect and batch mode, read from the user's
settings (``settings.UserSettings``; the module adds its ROI, the effect its own).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from VoxTellCore.errors import InputError
from VoxTellSlicerLib import settings as user
from VoxTellSlicerLib.settings import UserSettings

#: Model names that are not folders.
OFFICIAL_MODEL = "official"
DEMO_MODEL = "demo"


@dataclass(frozen=True)
class RunOptions:
    """``model``: ``"official"`` (VoxTell v1.1, downloaded once), ``"demo"`` or a model folder.
    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. ``embeddingBank``:
    a bank ``.npz`` of precomputed prompt embeddings. ``roiNode``: a markups ROI node; only
    voxels inside it are segmented. ``precision``: ``"auto"`` (the release's arithmetic) or
    ``"bf16"`` (faster on CPUs with native bf16; see ``VoxTellCore.inference.precision``), a
    CPU option: see ``precisionOn``. ``serverUrl``: compute on this VoxTell server instead
    (``model``, ``device`` and ``precision`` are then the server's), sending ``serverKey``."""

    model: str = OFFICIAL_MODEL
    device: str = "auto"
    embeddingBank: Optional[str] = None
    roiNode: Any = None
    precision: str = "auto"
    serverUrl: Optional[str] = None
    serverKey: Optional[str] = dataclasses.field(default=None, repr=False)

    def withRoi(self, roiNode) -> RunOptions:
        return dataclasses.replace(self, roiNode=roiNode)

    def modelLabel(self) -> str:
        """The model as the user knows it (shown while it runs)."""
        if self.serverUrl:
            return f"the VoxTell server at {self.serverUrl}"
        if self.model in (OFFICIAL_MODEL, DEMO_MODEL):
            return {OFFICIAL_MODEL: "the official VoxTell v1.1", DEMO_MODEL: "the demo model"}[self.model]
        return f"the model in {self.model}"

    def precisionOn(self, deviceType: str) -> str:
        """The precision a run on a ``deviceType`` ("cpu", "cuda", "mps") device uses.

        The module offers bf16 for CPUs that compute it natively; a GPU keeps the release's
        fp16 autocast (GPUs before Ampere have no bf16, and autocast refuses it there).
        """
        return self.precision if deviceType == "cpu" else "auto"

    @classmethod
    def fromSettings(cls, settings: UserSettings, roiNode: Any = None) -> RunOptions:
        """The model, device and precision the user chose (kept in Slicer's user settings, so
        they hold in every scene and after a restart; the module and the effect both read them).

        A model folder that was chosen but not given is an error, never a silent fallback to
        the official model (whose download would start on an offline site)."""
        if settings.get(user.COMPUTE_ON) == "server":
            server = settings.get(user.SERVER_URL)
            if not server:
                raise InputError("No VoxTell server is set: enter its URL under 'Compute on' in the VoxTell "
                                 "Segmentation module, or choose 'this computer'.")
            return cls(roiNode=roiNode, serverUrl=server, serverKey=settings.get(user.SERVER_KEY) or None)
        source = settings.get(user.MODEL_SOURCE)
        model = settings.get(user.MODEL_FOLDER) if source == "folder" else source
        if not model:
            raise InputError("No model folder is set: choose it under 'Model and device' in the VoxTell Segmentation module.")
        return cls(model=model, device=settings.get(user.DEVICE), roiNode=roiNode,
                   precision=settings.get(user.PRECISION))
