"""Segment Editor effect "VoxTell": fill the selected segment from a text prompt."""

from SegmentEditorVoxTellLib.SegmentEditorEffect import SegmentEditorEffect

__all__ = ["SegmentEditorEffect"]
