"""Slicer-side logic of the VoxTell extension: no Qt, so it runs headless (tests, batch mode)."""

from VoxTellSlicerLib.logic import PROMPT_TAG, VoxTellLogic, cleanPrompts

__all__ = ["PROMPT_TAG", "VoxTellLogic", "cleanPrompts"]
