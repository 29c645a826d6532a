"""A Slicer scene with the module logics VoxTell needs, for plain Python with ``slicer-core``.

Inside the Slicer application none of this is needed: ``slicer.mrmlScene`` and
``slicer.modules`` already exist. Outside it, this sets them up the way the application
does. The returned object owns every logic; keep it alive as long as the scene is used
(when a colour logic is garbage-collected, the default colour nodes disappear).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HeadlessSlicer:
    scene: object
    applicationLogic: object
    logics: dict[str, object] = field(default_factory=dict)

    def logic(self, name: str):
        return self.logics[name]


def inSlicerApplication() -> bool:
    import slicer

    return hasattr(slicer, "app")


def createHeadlessSlicer(terminologiesDir: str | Path | None = None) -> HeadlessSlicer:
    """A new scene set as ``slicer.mrmlScene``, with colour, volume, segmentation and
    terminology logics reachable as ``slicer.modules.<name>.logic()``.

    ``terminologiesDir`` holds Slicer's ``*.term.json`` files; without it the terminology
    logic has no lists and segments get hash colours.
    """
    import slicer

    scene = slicer.vtkMRMLScene()
    applicationLogic = slicer.vtkSlicerApplicationLogic()
    applicationLogic.SetMRMLScene(scene)
    headless = HeadlessSlicer(scene, applicationLogic)

    colors = slicer.vtkMRMLColorLogic()
    colors.SetMRMLScene(scene)
    colors.SetMRMLApplicationLogic(applicationLogic)
    colors.AddDefaultColorNodes()
    applicationLogic.SetModuleLogic("Colors", colors)
    headless.logics["colors"] = colors

    terminologies = slicer.vtkSlicerTerminologiesModuleLogic()
    if terminologiesDir is not None:
        # Must come before SetMRMLScene, which loads the lists from this folder.
        terminologies.SetModuleShareDirectory(str(terminologiesDir))
    modules = {
        "terminologies": ("Terminologies", terminologies),
        "volumes": ("Volumes", slicer.vtkSlicerVolumesLogic()),
        "segmentations": ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic()),
    }
    for key, (name, logic) in modules.items():
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(applicationLogic)
        applicationLogic.SetModuleLogic(name, logic)
        headless.logics[key] = logic

    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(
        **{key: types.SimpleNamespace(logic=(lambda logic=logic: logic)) for key, logic in headless.logics.items()}
    )
    return headless
