"""Slicer-side logic of the VoxTell extension: no Qt, so it runs headless (tests, batch mode)."""

from VoxTellSlicerLib.logic import PROMPT_TAG, SegmentRequest, VoxTellLogic, cleanPrompts
from VoxTellSlicerLib.options import RunOptions
from VoxTellSlicerLib.report import FINDING_CATEGORY_TAG, FINDING_TEXT_TAG, extractReportFindings

__all__ = ["FINDING_CATEGORY_TAG", "FINDING_TEXT_TAG", "PROMPT_TAG", "RunOptions", "SegmentRequest", "VoxTellLogic",
           "cleanPrompts", "extractReportFindings"]
