"""DICOM series in -> DICOM SEG out (highdicom), checked against the NIfTI masks of the same run,
and the choice of a series in a folder that holds several."""

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest_io_helpers import make_affine, random_image, write_full_dicom_series

from VoxTellCore.errors import InputError
from VoxTellCore.io import ModelInfo, Volume, read_volume, segment_infos, writer_for
from VoxTellCore.io.volume import LPS_TO_RAS

highdicom = pytest.importorskip("highdicom")

SERIES = "1.2.826.0.1.3680043.2.1125.7001"
PROMPTS = ["liver", "left kidney", "right kidney", "xyzzy structure"]
MODEL = ModelInfo(name="demo model (synthetic training data, not for clinical images)", version="0.1.0",
                  is_demo=True)


def oblique_series(folder: Path) -> tuple[np.ndarray, list[Path]]:
    """A 6-slice CT whose rows and columns are tilted 25 degrees (an oblique acquisition)."""
    array = np.random.default_rng(7).integers(-200, 400, size=(6, 9, 11)).astype(np.int16)
    angle = np.radians(25)
    row = (np.cos(angle), np.sin(angle), 0.0)
    column = (0.0, 0.0, -1.0)  # a coronal-like tilt: rows run towards the feet
    files = write_full_dicom_series(folder, array, SERIES, row_direction=row, column_direction=column,
                                    description="oblique phantom")
    return array, files


def threshold_masks(volume: Volume) -> np.ndarray:
    """One distinct mask per prompt, with overlaps and one empty prompt."""
    data = volume.array
    masks = np.stack([data > 100, data > 250, (data < -100), np.zeros_like(data, bool)]).astype(np.uint8)
    masks[2, 0] = 1  # a whole slice
    return masks


def test_dicom_seg_matches_the_nifti_masks_through_the_source_instances(tmp_path):
    _, files = oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    masks = threshold_masks(volume)
    segments = segment_infos(PROMPTS)

    writer = writer_for("dicom-seg", tmp_path / "ct")
    writer.check_input(volume)
    writer.write(masks, segments, volume, tmp_path / "out" / "ct.dcm", MODEL)
    nifti = writer_for(None, tmp_path / "ct")
    assert nifti.name == "nifti"
    for index, prompt in enumerate(PROMPTS):
        nifti.write(masks[index : index + 1], segments[index : index + 1], volume, tmp_path / f"{index}.nii.gz", MODEL)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ct.dcm"]  # no temporary file left

    seg = highdicom.seg.segread(tmp_path / "out" / "ct.dcm")
    assert seg.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert seg.SegmentationType == "BINARY"
    assert [seg.get_segment_description(n).SegmentLabel for n in range(1, 5)] == PROMPTS

    # Source references: the series, and every instance of it.
    sources = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in files}
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == SERIES
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == set(sources)
    assert seg.StudyInstanceUID == volume.dicom.study_uid
    assert seg.FrameOfReferenceUID == volume.dicom.frame_of_reference_uid

    # Each source instance's frame equals the NIfTI mask at that instance's slice, found from
    # its ImagePositionPatient through the NIfTI's own affine (independent of our slice order).
    niftis = [read_volume(tmp_path / f"{index}.nii.gz") for index in range(len(PROMPTS))]
    ras_to_ijk = np.linalg.inv(niftis[0].ijk_to_ras)
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=list(sources),
                                               segment_numbers=[1, 2, 3, 4])
    for frame, (uid, source) in zip(pixels, sources.items()):
        lps = np.append(np.asarray(source.ImagePositionPatient, float), 1.0)
        i, j, k = (ras_to_ijk @ LPS_TO_RAS @ lps)[:3]
        assert np.allclose([i, j], 0, atol=1e-3)
        k = int(round(k))
        for index, nifti_mask in enumerate(niftis):
            assert np.array_equal(frame[..., index], nifti_mask.array[k].astype(np.uint8)), (uid, index)
    assert pixels[..., :3].any() and not pixels[..., 3].any()


def test_dicom_seg_codes_and_algorithm_identification(tmp_path):
    oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    writer_for("dicom-seg", tmp_path / "ct").write(threshold_masks(volume), segment_infos(PROMPTS), volume,
                                                    tmp_path / "seg.dcm", MODEL)
    seg = highdicom.seg.segread(tmp_path / "seg.dcm")

    def codes(number):
        description = seg.get_segment_description(number)
        property_type = description.SegmentedPropertyTypeCodeSequence[0]
        modifiers = property_type.get("SegmentedPropertyTypeModifierCodeSequence", [])
        return (description.SegmentedPropertyCategoryCodeSequence[0].CodeValue, property_type.CodeValue,
                [m.CodeValue for m in modifiers])

    assert codes(1) == ("123037004", "10200004", [])  # Anatomical Structure / Liver
    assert codes(2) == ("123037004", "64033007", ["7771000"])  # Kidney, Left
    assert codes(3) == ("123037004", "64033007", ["24028007"])  # Kidney, Right
    assert codes(4) == ("85756007", "85756007", [])  # not in Slicer's list: Tissue / Tissue
    algorithm = seg.get_segment_description(1).SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "VoxTell" and algorithm.AlgorithmVersion == "0.1.0"
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    assert "demo model" in algorithm.AlgorithmSource
    assert "not for clinical images" in seg.SeriesDescription
    assert seg.get_segment_description(1).SegmentAlgorithmType == "AUTOMATIC"
    # The right kidney's display colour differs from the left's (Slicer's list colours both alike).
    colors = [tuple(seg.get_segment_description(n).RecommendedDisplayCIELabValue) for n in (2, 3)]
    assert colors[0] != colors[1]


def test_dicom_seg_refuses_non_dicom_input(tmp_path):
    volume = Volume(random_image((4, 5, 6)), make_affine("lps"), source=str(tmp_path / "ct.nii.gz"))
    writer = writer_for("dicom-seg", tmp_path / "ct.nii.gz")
    with pytest.raises(InputError, match="DICOM SEG output needs a DICOM series as input.*--format"):
        writer.check_input(volume)
    with pytest.raises(InputError, match="needs a DICOM series"):
        writer.write(np.zeros((1, 4, 5, 6), np.uint8), segment_infos(["liver"]), volume, tmp_path / "x.dcm", MODEL)
    assert not (tmp_path / "x.dcm").exists()


def test_failed_dicom_seg_write_leaves_no_file(tmp_path, monkeypatch):
    oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")

    def fail(self, filename, **kwargs):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(pydicom.Dataset, "save_as", fail)
    with pytest.raises(OSError, match="disk full"):
        writer_for("dicom-seg", None).write(threshold_masks(volume), segment_infos(PROMPTS), volume,
                                           tmp_path / "out" / "seg.dcm", MODEL)
    assert list((tmp_path / "out").iterdir()) == []


def test_folder_with_a_ct_a_localizer_and_a_non_image_series_reads_the_ct(tmp_path):
    ct = np.random.default_rng(2).integers(0, 100, size=(4, 5, 6)).astype(np.int16)
    write_full_dicom_series(tmp_path / "study", ct, "1.2.826.0.1.3680043.2.1125.31", description="CT")
    write_full_dicom_series(tmp_path / "study", ct[:2] + 7, "1.2.826.0.1.3680043.2.1125.32",
                            image_type="ORIGINAL\\PRIMARY\\LOCALIZER", description="scout")
    write_full_dicom_series(tmp_path / "study", ct[:2] + 9, "1.2.826.0.1.3680043.2.1125.33", modality="OT")
    volume = read_volume(tmp_path / "study")
    assert volume.dicom.series_uid == "1.2.826.0.1.3680043.2.1125.31"
    assert np.array_equal(volume.array, ct)


def test_folder_with_ct_and_mr_is_refused_with_the_list(tmp_path):
    data = np.zeros((3, 4, 5), np.int16)
    write_full_dicom_series(tmp_path / "study", data, "1.2.826.0.1.3680043.2.1125.41", description="thorax")
    write_full_dicom_series(tmp_path / "study", data + 1, "1.2.826.0.1.3680043.2.1125.42", modality="MR",
                            description="T1")
    with pytest.raises(InputError) as error:
        read_volume(tmp_path / "study")
    message = str(error.value)
    assert '1.2.826.0.1.3680043.2.1125.41  CT  "thorax"  3 file(s)' in message
    assert '1.2.826.0.1.3680043.2.1125.42  MR  "T1"  3 file(s)' in message
    assert "2 CT/MR/PET volume series" in message and "--series UID" in message
    assert read_volume(tmp_path / "study", "1.2.826.0.1.3680043.2.1125.42").array.max() == 1


def test_dicom_volume_keeps_its_source_references_in_slice_order(tmp_path):
    _, files = oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    source = volume.dicom
    assert source.series_uid == SERIES and source.modality == "CT"
    headers = [pydicom.dcmread(f) for f in source.files]
    assert [h.SOPInstanceUID for h in headers] == list(source.sop_instance_uids)
    assert all(h.SOPClassUID == pydicom.uid.CTImageStorage for h in headers)
    assert set(source.files) == {str(f) for f in files}
    # Slice k's pixels are file k's pixels.
    for k, header in enumerate(headers):
        assert np.array_equal(volume.array[k], header.pixel_array.astype(np.float32))


def test_dicom_seg_refuses_a_series_without_uids(tmp_path):
    """Anonymisers may blank the UIDs (as in TotalSegmentator's example CT): nothing to reference."""
    _, files = oblique_series(tmp_path / "ct")
    for path in files:
        dataset = pydicom.dcmread(path)
        dataset.StudyInstanceUID = ""
        dataset.SOPInstanceUID = ""
        dataset.save_as(path)
    volume = read_volume(tmp_path / "ct")
    with pytest.raises(InputError, match="no Study Instance UID, SOP Class/Instance UID in every file"):
        writer_for("dicom-seg", tmp_path / "ct").check_input(volume)


def test_long_non_ascii_prompt_and_empty_masks(tmp_path):
    """DICOM labels hold 64 characters without backslash: the label is cut, the description keeps
    the whole prompt; all-empty masks still give a readable object."""
    oblique_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    prompt = "Läsion mit Kontrastmittelanreicherung im linken Unterlappen, etwa 3 mm groß \\ Verlauf"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # pydicom warns about invalid values
        writer_for("dicom-seg", None).write(np.zeros((1, *volume.array.shape), np.uint8), segment_infos([prompt]),
                                           volume, tmp_path / "seg.dcm", MODEL)
    description = highdicom.seg.segread(tmp_path / "seg.dcm").get_segment_description(1)
    assert prompt.startswith(description.SegmentLabel) and len(description.SegmentLabel.encode()) <= 64
    assert description.SegmentDescription == prompt
