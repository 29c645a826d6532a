"""The reader/writer registry, the label-map writers, the .seg.nrrd writer (read back by
slicerio) and the core prompt terminology."""

import nibabel
import numpy as np
import pytest
from conftest_io_helpers import make_affine, random_image, vocabulary_prompts, write_dicom_series

from VoxTellCore import terminology
from VoxTellCore.errors import InputError
from VoxTellCore.io import (
    ModelInfo,
    Volume,
    is_image_file,
    read_volume,
    register_writer,
    segment_infos,
    write_mask,
    writer_for,
    writer_names,
)
from VoxTellCore.io import formats
from VoxTellCore.io.formats.base import label_map
from VoxTellCore.io.volume import LPS_TO_RAS

MODEL = ModelInfo(name="test model", version="0.1.0", is_demo=False)


def reference(kind: str = "oblique") -> Volume:
    return Volume(random_image((6, 7, 8), seed=5), make_affine(kind, seed=2), source="reference")


@pytest.mark.parametrize(("image", "expected"), [
    ("ct.nii.gz", "nifti"), ("ct.nii", "nifti"), ("CT.NRRD", "nrrd"), ("ct.nhdr", "nrrd"),
    ("ct.mha", "mha"), ("ct.mhd", "mha"), ("dicom_folder", "nifti"),
])
def test_writer_by_input_type_is_the_release_default(image, expected):
    assert writer_for(None, image).name == expected


def test_writer_by_name_and_unknown_name():
    assert writer_names() == ["nifti", "nrrd", "mha", "seg-nrrd", "dicom-seg", "dicom-seg-deflated", "rtstruct"]
    assert writer_for("seg-nrrd", "ct.nii.gz").suffix == ".seg.nrrd"
    assert writer_for("DICOM-SEG", "ct").suffix == ".dcm" and not writer_for("dicom-seg", "ct").label_map
    with pytest.raises(InputError, match="Unknown output format 'png'.*nifti, nrrd, mha, seg-nrrd, dicom-seg, dicom-seg-deflated, rtstruct"):
        writer_for("png", "ct.nii.gz")


def test_a_new_format_is_one_class_and_its_registration(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "_WRITERS", dict(formats._WRITERS))

    class NumpyWriter:
        name, suffix, label_map = "npy", ".npy", True

        def check_input(self, volume):
            pass

        def write(self, masks, segments, ref, path, model):
            np.save(path, label_map(masks))

    register_writer(NumpyWriter())
    writer = writer_for("npy", "ct.nii.gz")
    writer.write(np.ones((1, 2, 3, 4), np.uint8), segment_infos(["liver"]), reference(), tmp_path / "m.npy", MODEL)
    assert np.load(tmp_path / "m.npy").sum() == 24


def test_label_map_of_several_prompts_later_prompts_win():
    masks = np.zeros((3, 2, 2, 2), np.uint8)
    masks[0, 0] = 1
    masks[1, :, 0] = 1
    masks[2, 1, 1, 1] = 1
    labels = label_map(masks)
    assert labels.dtype == np.uint8
    assert labels[0, 0].tolist() == [2, 2] and labels[0, 1].tolist() == [1, 1]
    assert labels[1].tolist() == [[2, 2], [0, 3]]
    assert label_map(masks[1:2]).tolist() == masks[1].tolist()
    assert label_map(np.zeros((255, 2, 2, 2), np.uint8)).dtype == np.uint16


@pytest.mark.parametrize("name", ["nifti", "nrrd", "mha"])
def test_label_map_writers_write_what_write_mask_writes(tmp_path, name):
    volume = reference()
    masks = np.stack([volume.array > 100, volume.array > 140]).astype(np.uint8)
    writer = writer_for(name, "x")
    writer.write(masks[:1], segment_infos(["liver"]), volume, tmp_path / f"one{writer.suffix}", MODEL)
    writer.write(masks, segment_infos(["liver", "spleen"]), volume, tmp_path / f"two{writer.suffix}", MODEL)
    assert np.array_equal(read_volume(tmp_path / f"one{writer.suffix}").array, masks[0])
    assert np.array_equal(read_volume(tmp_path / f"two{writer.suffix}").array, label_map(masks))
    write_mask(masks[0], volume, tmp_path / f"old{writer.suffix}")
    if name == "nifti":  # bit-identical to the release's writer (test_io checks that one)
        assert np.array_equal(nibabel.load(tmp_path / "one.nii.gz").dataobj,
                              nibabel.load(tmp_path / "old.nii.gz").dataobj)
        assert np.array_equal(nibabel.load(tmp_path / "one.nii.gz").affine,
                              nibabel.load(tmp_path / "old.nii.gz").affine)


def test_seg_nrrd_files_are_not_images_to_segment():
    assert is_image_file("case.nrrd") and is_image_file("case.NII.GZ")
    assert not is_image_file("case.seg.nrrd") and not is_image_file("case.png")


def test_dicom_series_writes_nifti_by_default(tmp_path):
    write_dicom_series(tmp_path / "ct", np.zeros((3, 4, 5), np.int16), "1.2.826.0.1.3680043.2.1125.9")
    assert writer_for(None, tmp_path / "ct").name == "nifti"


# ------------------------------------------------------------------ .seg.nrrd
PROMPTS = ["Liver", "left kidney", "right kidney", "xyzzy structure"]


def overlapping_masks(volume: Volume) -> np.ndarray:
    data = volume.array
    return np.stack([data > 100, data > 130, data < 60, data > 180]).astype(np.uint8)


@pytest.mark.parametrize("kind", ["lps", "oblique"])
def test_seg_nrrd_is_read_back_by_slicerio(tmp_path, kind):
    slicerio = pytest.importorskip("slicerio")
    volume = reference(kind)
    masks = overlapping_masks(volume)
    path = tmp_path / "case.seg.nrrd"
    writer_for("seg-nrrd", "x").write(masks, segment_infos(PROMPTS), volume, path, MODEL)
    assert [p.name for p in tmp_path.iterdir()] == ["case.seg.nrrd"]

    segmentation = slicerio.read_segmentation(str(path))
    assert np.allclose(segmentation["ijkToLPS"], LPS_TO_RAS @ volume.ijk_to_ras, atol=1e-9)
    segments = segmentation["segments"]
    assert [s["name"] for s in segments] == PROMPTS
    expected = segment_infos(PROMPTS)
    for segment, info in zip(segments, expected):
        assert np.allclose(segment["color"], info.color, atol=1e-6)
        assert segment["tags"]["VoxTell.Prompt"] == info.prompt.lower()
    assert segments[0]["terminology"]["type"] == ["SCT", "10200004", "Liver"]
    assert segments[1]["terminology"]["typeModifier"] == ["SCT", "7771000", "Left"]
    assert segments[2]["terminology"]["typeModifier"] == ["SCT", "24028007", "Right"]
    assert "terminology" not in segments[3]
    assert not np.allclose(segments[1]["color"], segments[2]["color"], atol=0.05)
    for index, prompt in enumerate(PROMPTS):
        voxels = slicerio.extract_segments(segmentation, [(prompt, 1)])["voxels"]  # IJK order
        assert np.array_equal(voxels.transpose(2, 1, 0), masks[index]), prompt


def test_seg_nrrd_terminology_string_is_slicers():
    """slicerio serialises the terminology as Slicer's SerializeTerminologyEntry does."""
    slicerio = pytest.importorskip("slicerio")
    from VoxTellCore.io.formats.seg_nrrd import _segment

    for info in segment_infos(["liver", "left kidney"]):
        string = slicerio.segmentation.terminology_entry_to_string(_segment(info, 0, 1, 0)["terminology"])
        assert string == info.terminology.serialize()
    assert terminology.segment_info("left kidney").terminology.serialize() == (
        "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
        "~SCT^64033007^Kidney~SCT^7771000^Left~~^^~^^")


# ------------------------------------------------------------------ core terminology


def side_pairs(prompts):
    """(left prompt, right prompt) for every vocabulary prompt whose mirror is also a prompt."""
    known = {p.lower(): p for p in prompts}
    return [(p, known[p.lower().replace("left", "right")]) for p in prompts
            if "left" in p.lower() and p.lower().replace("left", "right") in known]


def test_left_and_right_vocabulary_prompts_get_different_colours():
    pairs = side_pairs(vocabulary_prompts())
    assert len(pairs) >= 10
    for left, right in pairs:
        left_info, right_info = terminology.segment_info(left), terminology.segment_info(right)
        assert not np.allclose(left_info.color, right_info.color, atol=0.05), (left, right)


def test_prompts_map_like_the_module_rule():
    liver = terminology.segment_info("  Hepatic   organ ")
    assert liver.name == "Hepatic organ" and liver.terminology.type.meaning == "Liver"
    assert tuple(round(c * 255) for c in liver.color) == (221, 130, 101)
    left = terminology.segment_info("Left Kidney")
    assert tuple(round(c * 255) for c in left.color) == (185, 102, 83)  # the list's colour
    right = terminology.segment_info("right kidney")
    assert tuple(round(c * 255) for c in right.color) != (185, 102, 83)
    unknown = terminology.segment_info("xyzzy  structure")
    assert unknown.terminology is None and unknown.color == terminology.stable_color("XYZZY structure")


def test_side_color_keeps_left_and_shades_right_only_when_the_list_colours_both_alike():
    assert terminology.side_color((10, 20, 30), "left", (10, 20, 30)) == (10 / 255, 20 / 255, 30 / 255)
    assert terminology.side_color((10, 20, 30), "right", (40, 50, 60)) == (10 / 255, 20 / 255, 30 / 255)
    for rgb in [(0, 0, 0), (255, 255, 255), (250, 240, 200), (185, 102, 83)]:
        shaded = terminology.side_color(rgb, "right", rgb)
        assert max(abs(a - b / 255) for a, b in zip(shaded, rgb)) > 0.1, rgb
        assert all(0.0 <= c <= 1.0 for c in shaded)
