"""RunOptions: what a VoxTell run needs besides the image and the prompts.

One object for the module, the Segment Editor effect and batch mode, read from the VoxTell
module's parameter node (the effect adds its own ROI).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

#: Model names that are not folders.
OFFICIAL_MODEL = "official"
DEMO_MODEL = "demo"
#: The VoxTell module's parameter node: a singleton vtkMRMLScriptedModuleNode tagged with the module name.
MODULE_NAME = "VoxTellSlicer"


@dataclass(frozen=True)
class RunOptions:
    """``model``: ``"official"`` (VoxTell v1.1, downloaded once), ``"demo"`` or a model folder.
    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. ``embeddingBank``:
    a bank ``.npz`` of precomputed prompt embeddings. ``roiNode``: a markups ROI node; only
    voxels inside it are segmented. ``precision``: ``"auto"`` (the release's arithmetic) or
    ``"bf16"`` (faster on CPUs with native bf16; see ``VoxTellCore.inference.precision``), a
    CPU option: see ``precisionOn``."""

    model: str = OFFICIAL_MODEL
    device: str = "auto"
    embeddingBank: Optional[str] = None
    roiNode: Any = None
    precision: str = "auto"

    def withRoi(self, roiNode) -> RunOptions:
        return dataclasses.replace(self, roiNode=roiNode)

    def precisionOn(self, deviceType: str) -> str:
        """The precision a run on a ``deviceType`` ("cpu", "cuda", "mps") device uses.

        The module offers bf16 for CPUs that compute it natively; a GPU keeps the release's
        fp16 autocast (GPUs before Ampere have no bf16, and autocast refuses it there).
        """
        return self.precision if deviceType == "cpu" else "auto"

    @classmethod
    def fromParameterNode(cls, parameterNode) -> RunOptions:
        """The options the VoxTell module's parameter node holds (defaults for None).

        Reads the raw vtkMRMLScriptedModuleNode (the wrapper stores strings as parameters and
        nodes as references under the attribute's name), so the effect needs no module widget.
        """
        if parameterNode is None:
            return cls()
        source = parameterNode.GetParameter("modelSource") or OFFICIAL_MODEL
        model = parameterNode.GetParameter("modelFolder") if source == "folder" else source
        return cls(model=model or OFFICIAL_MODEL, device=parameterNode.GetParameter("device") or "auto",
                   roiNode=parameterNode.GetNodeReference("roi"),
                   precision=parameterNode.GetParameter("precision") or "auto")


def moduleParameterNode(scene):
    """The VoxTell module's parameter node in ``scene``, or None before the module was opened."""
    return scene.GetSingletonNode(MODULE_NAME, "vtkMRMLScriptedModuleNode") if scene is not None else None
