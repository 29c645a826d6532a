"""VoxTellSlicerLib.slicerCompat: the terminology of a segment on Slicer 5.10+ (real slicer-core
objects) and on 5.6/5.8 (the segment tag, in the string form 5.6.2's code writes and parses)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from VoxTellSlicerLib.slicerCompat import setSegmentTerminology, setTerminologyTag

# Written from Slicer v5.6.2's source: vtkSegment.cxx (GetTerminologyEntryTagName returns
# "TerminologyEntry") and vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry (context~
# category~type~type modifier~anatomic context~region~region modifier, codes "scheme^value^meaning",
# empty codes "^^"), for the General Anatomy list's liver and left kidney.
TAG_5_6 = "TerminologyEntry"
GENERAL_ANATOMY = "Segmentation category and type - 3D Slicer General Anatomy list"
LIVER_5_6 = f"{GENERAL_ANATOMY}~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^~~^^~^^"
LEFT_KIDNEY_5_6 = f"{GENERAL_ANATOMY}~SCT^123037004^Anatomical Structure~SCT^64033007^Kidney~SCT^7771000^Left~~^^~^^"


def parses_on_5_6(serialized: str) -> bool:
    """The checks of v5.6.2's DeserializeTerminologyEntry before it looks codes up: seven "~"
    parts, a context name, a non-empty category, and category and type of three "^" parts."""
    parts = serialized.split("~")
    if len(parts) != 7 or not parts[0] or parts[1] == "^^":
        return False
    return all(len(part.split("^")) == 3 for part in parts[1:3])


class Slicer56Segment:
    """A real vtkSegment seen through the calls Slicer 5.6 has (no SetTerminology)."""

    def __init__(self, segment):
        self.SetTag = segment.SetTag
        self.GetTerminologyEntryTagName = segment.GetTerminologyEntryTagName


def tag(segment) -> str:
    import vtk

    value = vtk.reference("")
    assert segment.GetTag(TAG_5_6, value)
    return str(value)


def test_the_5_10_path_uses_set_terminology_on_a_real_segment():
    import slicer

    segment = slicer.vtkSegment()
    setSegmentTerminology(segment, LIVER_5_6)
    assert segment.GetTerminology() == LIVER_5_6 == tag(segment)


def test_the_5_6_path_writes_the_tag_that_set_terminology_writes():
    import slicer

    old, new = slicer.vtkSegment(), slicer.vtkSegment()
    setSegmentTerminology(Slicer56Segment(old), LEFT_KIDNEY_5_6)
    new.SetTerminology(LEFT_KIDNEY_5_6)
    assert tag(old) == LEFT_KIDNEY_5_6 == new.GetTerminology() == old.GetTerminology()


@pytest.mark.parametrize("serialized", [LIVER_5_6, LEFT_KIDNEY_5_6])
def test_the_expected_strings_are_what_5_6_parses(serialized):
    assert parses_on_5_6(serialized)
    assert not parses_on_5_6(serialized.replace("~", "|")) and not parses_on_5_6(serialized + "~extra")


@pytest.mark.parametrize(("prompt", "expected"), [("liver", LIVER_5_6), ("Left Kidney", LEFT_KIDNEY_5_6)])
def test_segments_carry_the_5_6_terminology_string(logic, prompt, expected):
    """The module's segments hold, under 5.6's tag name, the string 5.6.2's serializer writes."""
    import numpy as np
    from slicer_fixtures import add_volume

    class Slab:
        device = SimpleNamespace(type="cpu")

        def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
            masks = np.zeros((len(prompts), *volume.array.shape), np.uint8)
            masks[:, 1:3] = 1
            return masks

    from VoxTellSlicerLib import RunOptions, VoxTellLogic

    volume = add_volume(np.zeros((4, 5, 6), np.float32), np.eye(4))
    logic = VoxTellLogic(predictor_factory=lambda *key: Slab(), terminologyLogic=logic.terminologyLogic())
    segmentation = logic.segment(volume, prompt, options=RunOptions(model="stand-in"))
    segment = segmentation.GetSegmentation().GetNthSegment(0)
    assert tag(segment) == expected
    assert parses_on_5_6(tag(segment))
