"""Undo without the scene's undo: a run leaves the scene's undo flag as it was, so Slicer's
later SaveStateForUndo calls (markups make one on every ROI drag) copy nothing of VoxTell's;
"Revert last run" is the way back (tested in test_logic.py)."""

from __future__ import annotations

import os

import numpy as np
import torch
import pytest
from slicer_fixtures import add_volume, lps_ijk_to_ras

CT_SHAPE = (300, 512, 512)


class BoxPredictor:
    """Masks supplied directly (no model): prompt n covers a slab of its own."""

    device = torch.device("cpu")

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        masks = np.zeros((len(prompts), *volume.array.shape), np.uint8)
        for index in range(len(prompts)):
            masks[index, 20 + 60 * index:70 + 60 * index, 100:400, 120:380] = 1
        return masks


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def box_logic():
    from VoxTellSlicerLib import VoxTellLogic
    from VoxTellSlicerLib.options import RunOptions

    return VoxTellLogic(predictor_factory=lambda *key: BoxPredictor()), RunOptions(model="masks given")


@pytest.mark.parametrize("undo_on", [False, True], ids=["undo off", "undo on"])
def test_a_run_leaves_the_scene_undo_flag_as_it_was(slicer_scene, undo_on):
    scene = slicer_scene.scene
    scene.SetUndoFlag(undo_on)
    logic, options = box_logic()
    volume = add_volume(np.zeros((8, 9, 10), np.int16), lps_ijk_to_ras())
    segmentation = logic.segment(volume, ["liver", "spleen"], options=options)
    logic.segment(volume, ["liver"], segmentationNode=segmentation, options=options)
    assert scene.GetUndoFlag() == undo_on
    assert not segmentation.GetUndoEnabled()


def test_saving_undo_states_after_a_ct_sized_run_copies_no_segmentation(slicer_scene):
    scene = slicer_scene.scene
    logic, options = box_logic()
    image = np.full(CT_SHAPE, -1000, np.int16)
    image[:, 100:400, 100:400] = 40
    volume = add_volume(image, lps_ijk_to_ras())
    del image
    segmentation = logic.segment(volume, ["liver", "spleen", "left kidney", "aorta"], options=options)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 4
    logic.releasePredictor()

    before = resident_bytes()
    for _ in range(20):
        scene.SaveStateForUndo()
    grown = resident_bytes() - before
    assert grown < 150 * 2**20, f"20 SaveStateForUndo calls grew resident memory by {grown / 2**20:.0f} MB"
