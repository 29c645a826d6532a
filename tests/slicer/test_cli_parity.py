"""The module and the core CLI agree: same NIfTI image and model, same voxels."""

from __future__ import annotations

import nibabel
import numpy as np
from slicer_fixtures import oblique_ijk_to_ras, phantom

PROMPTS = ["liver", "left kidney"]


def load_with_slicer(path):
    """A scalar volume node read by Slicer's own archetype reader (exact voxels and geometry)."""
    import slicer

    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "case")
    storage = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.ReadData(node)
    return node


def test_segments_equal_the_core_cli_nifti_output(tmp_path, logic, options, run_options):
    from VoxTellCore.cli import main as voxtell_core

    affine = oblique_ijk_to_ras()
    image = nibabel.Nifti1Image(phantom(seed=5).transpose(2, 1, 0), affine)  # nibabel stores IJK
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nibabel.save(image, tmp_path / "case.nii.gz")

    status = voxtell_core(["predict", "-i", str(tmp_path / "case.nii.gz"), "-o", str(tmp_path / "cli"), "-p", *PROMPTS,
                           "-m", run_options["modelPath"], "--embeddings", run_options["embeddingBank"],
                           "--device", "cpu"])
    assert status == 0

    volume_node = load_with_slicer(tmp_path / "case.nii.gz")
    segmentation_node = logic.segment(volume_node, PROMPTS, options=options)

    import slicer

    for prompt in PROMPTS:
        cli_mask = np.asanyarray(nibabel.load(tmp_path / "cli" / f"case_{prompt.replace(' ', '_')}.nii.gz").dataobj)
        segment_id = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(prompt)
        module_mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, volume_node)
        assert 0 < cli_mask.mean() < 1
        np.testing.assert_array_equal(module_mask, cli_mask.transpose(2, 1, 0))
