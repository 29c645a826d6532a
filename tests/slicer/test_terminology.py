"""The command line's segment names, colours and codes (VoxTellCore.terminology, from the shipped
extract) equal what the module gets from Slicer's real terminology logic; CLI .seg.nrrd files
read by Slicer's own segmentation storage node."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest_io_helpers import vocabulary_prompts
from slicer_fixtures import SLICER_MODULE_DIR, add_volume, lps_ijk_to_ras, oblique_ijk_to_ras, phantom

from VoxTellCore import terminology
from VoxTellCore.io import ModelInfo, Volume, segment_infos, writer_for




@pytest.fixture
def module_terminology(slicer_scene):
    from VoxTellSlicerLib.terminology import PromptTerminology, findSynonymsFile, loadSynonyms

    return PromptTerminology(slicer_scene.logic("terminologies"), loadSynonyms(findSynonymsFile(SLICER_MODULE_DIR)))


def module_codes(module_terminology, prompt):
    """(category, type, modifier) code values of the entry Slicer's logic finds for a prompt."""
    entry = module_terminology._entry(prompt)
    if entry is None:
        return None
    modifier = entry.GetTypeModifierObject()
    return (entry.GetCategoryObject().GetCodeValue(), entry.GetTypeObject().GetCodeValue(),
            modifier.GetCodeValue() if modifier is not None and modifier.GetCodeValue() else None)


def core_codes(info):
    if info.terminology is None:
        return None
    term = info.terminology
    return term.category.value, term.type.value, term.modifier.value if term.modifier else None


def test_cli_names_colours_and_codes_equal_the_modules(module_terminology):
    labels = list(json.loads(terminology.GENERAL_ANATOMY_FILE.read_text())["labels"])
    prompts = vocabulary_prompts() + labels + [label.upper() for label in labels[:20]]
    matched = 0
    for prompt in prompts:
        style, info = module_terminology.style(prompt), terminology.segment_info(prompt)
        assert style.name == info.name, prompt
        assert style.color == pytest.approx(info.color, abs=1e-12), prompt
        assert module_codes(module_terminology, prompt) == core_codes(info), prompt
        assert style.terminology == (info.terminology.serialize() if info.terminology else ""), prompt
        matched += info.terminology is not None
    assert matched > len(labels)  # every label, and vocabulary prompts through the synonyms


def test_each_left_right_pair_differs_in_the_module_and_in_the_cli(module_terminology):
    labels = json.loads(terminology.GENERAL_ANATOMY_FILE.read_text())["labels"]
    known = {label.lower() for label in labels}
    prompts = vocabulary_prompts() + list(labels)
    pairs = {(p, p.lower().replace("left", "right")) for p in prompts
             if "left" in p.lower() and p.lower().replace("left", "right") in known | {q.lower() for q in prompts}}
    assert len(pairs) >= 40
    for left, right in pairs:
        assert module_terminology.style(left).color != pytest.approx(module_terminology.style(right).color, abs=0.05)
        assert terminology.segment_info(left).color != pytest.approx(terminology.segment_info(right).color, abs=0.05)


@pytest.mark.parametrize("geometry", [lps_ijk_to_ras, oblique_ijk_to_ras], ids=["lps", "oblique"])
def test_cli_seg_nrrd_reads_in_slicer_with_names_colours_terminology_and_voxels(
        slicer_scene, module_terminology, tmp_path, geometry):
    import slicer
    import vtk
    from VoxTellSlicerLib.logic import VoxTellLogic

    image = phantom()
    volume = Volume(image, geometry(), source="phantom")
    prompts = ["liver", "left kidney", "right kidney", "xyzzy structure"]
    masks = np.stack([image > 150, image > 250, image < -20, image > 100]).astype(np.uint8)  # overlapping
    path = tmp_path / "case.seg.nrrd"
    writer_for("seg-nrrd", "case.nii.gz").write(masks, segment_infos(prompts), volume, path,
                                                ModelInfo("test", "0.1.0", False))

    scene = slicer_scene.scene
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    assert storage.ReadData(node)
    segmentation = node.GetSegmentation()
    reference = add_volume(image, geometry(), "reference")
    assert segmentation.GetNumberOfSegments() == len(prompts)
    for index, prompt in enumerate(prompts):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        style = module_terminology.style(prompt)
        assert segment.GetName() == style.name
        assert segment.GetColor() == pytest.approx(style.color, abs=1e-6)
        if style.terminology:
            assert segment.GetTerminology() == style.terminology
        assert VoxTellLogic.promptSegmentId(segmentation, prompt) == segment_id  # the module finds it again
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(node, segment_id, reference)
        np.testing.assert_array_equal(voxels, masks[index], err_msg=prompt)
    # The stored labelmap's geometry is the volume's, exactly (no resampling hides a shift).
    labelmap = segmentation.GetSegment(segmentation.GetNthSegmentID(0)).GetRepresentation(
        slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    matrix = vtk.vtkMatrix4x4()
    labelmap.GetImageToWorldMatrix(matrix)
    image_to_world = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    assert np.allclose(image_to_world, geometry(), atol=1e-9)
