"""The Slicer calls that differ between the releases VoxTell supports (5.6 to the newest).

The oldest supported release is 5.6 (tests/data/slicer_api/v5.6.2.txt lists what it declares;
tests/slicer/test_slicer_api.py fails on any other call). Calls that only newer Slicer has live
here, behind a check, and carry a ``# slicer-api: 5.10+`` comment on their line.

* Terminology: 5.10 added ``vtkSegment.SetTerminology``, which sets the segment's
  ``GetTerminologyEntryTagName()`` tag ("TerminologyEntry"); 5.6 and 5.8 read the same tag, in
  the same "~"-separated form that their ``vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry``
  writes (context~category~type~type modifier~anatomic context~region~region modifier, each code
  "scheme^value^meaning").
* Segment editor: ``vtkSlicerSegmentEditorLogic`` (headless editing) exists only from 5.10; on
  every release the Segment Editor effect edits through its ``scriptedEffect``, whose calls
  (``parameterSetNode``, ``defaultModifierLabelmap``, ``saveStateForUndo``,
  ``modifySelectedSegmentByLabelmap``, ``ModificationModeSet``) 5.6 has. ``SegmentEditorLogicEditor``
  gives the 5.10+ logic the same face, for headless use and the tests.
"""

from __future__ import annotations


def setSegmentTerminology(segment, serializedEntry: str) -> None:
    """Give a ``vtkSegment`` a serialised terminology entry, on every supported Slicer."""
    if hasattr(segment, "SetTerminology"):
        segment.SetTerminology(serializedEntry)  # slicer-api: 5.10+
    else:
        setTerminologyTag(segment, serializedEntry)


def setTerminologyTag(segment, serializedEntry: str) -> None:
    """What Slicer 5.6/5.8 read as a segment's terminology (5.10's ``SetTerminology`` does the same)."""
    segment.SetTag(segment.GetTerminologyEntryTagName(), serializedEntry)


class SegmentEditorLogicEditor:
    """A ``vtkSlicerSegmentEditorLogic`` (Slicer 5.10+) seen through the scripted effect's calls
    that ``VoxTellLogic.fillSelectedSegment`` uses; in Slicer the effect passes its own
    ``scriptedEffect`` instead, which every supported release has."""

    def __init__(self, editorLogic) -> None:
        self.editorLogic = editorLogic
        # The effect's enum value by name (the wrapped logic enum accepts no int).
        self.ModificationModeSet = type(editorLogic).ModificationModeSet

    def parameterSetNode(self):
        return self.editorLogic.GetSegmentEditorNode()  # slicer-api: 5.10+

    def defaultModifierLabelmap(self):
        self.editorLogic.ResetModifierLabelmapToDefault()  # slicer-api: 5.10+
        return self.editorLogic.GetModifierLabelmap()  # slicer-api: 5.10+

    def saveStateForUndo(self) -> None:
        self.editorLogic.SaveStateForUndo()

    def modifySelectedSegmentByLabelmap(self, labelmap, modificationMode) -> None:
        node = self.parameterSetNode()
        self.editorLogic.ModifySegmentByLabelmap(  # slicer-api: 5.10+
            node.GetSegmentationNode(), node.GetSelectedSegmentID(), labelmap, modificationMode, True, False)
