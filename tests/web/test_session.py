"""WebSession on trame-slicer's Slicer scene, without a browser: uploads (zip of a DICOM series,
refused files), Revert with the module's rule, exports by the core's writers. A thresholding
stand-in for the model keeps these tests to a fraction of a second each."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


import VoxTellWeb  # noqa: E402,F401  (VoxTellSlicerLib on the path)
from VoxTellCore.errors import InputError  # noqa: E402
from VoxTellCore.terminology import PROMPT_TAG, Terminology, segment_info  # noqa: E402
from VoxTellWeb.session import Upload, WebSession, read_uploads  # noqa: E402


class ThresholdPredictor:
    """Voxels above a per-prompt value; what a VoxTellPredictor offers the logic and the exports."""

    description = "threshold stand-in"
    is_demo = False
    device = SimpleNamespace(type="cpu")
    precision = "auto"
    THRESHOLDS = {"liver": 100.0, "left kidney": 300.0}

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        return np.stack([volume.array > self.THRESHOLDS[prompt] for prompt in prompts]).astype(np.uint8)


@pytest.fixture
def session():
    from trame_slicer.core import SlicerApp

    app = SlicerApp()
    made = WebSession(app.scene, app.terminologies_logic, model="demo", device="cpu",
                      predictor_factory=lambda *key: ThresholdPredictor())
    made.app = app
    return made


def image_bytes(array: np.ndarray, name: str, tmp_path: Path) -> Upload:
    import SimpleITK as sitk

    path = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return Upload(name, path.read_bytes())


def volume_upload(tmp_path: Path) -> Upload:
    array = np.zeros((6, 8, 10), np.int16)
    array[2:4, 2:6, 3:8] = 200
    array[1, 1, 1] = 400
    return image_bytes(array, "case.nii.gz", tmp_path)


def run(session, prompts):
    segmentation = session.scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentation.CreateDefaultDisplayNodes()
    requests = session.requests(prompts)
    session.apply(session.predict(requests), requests, segmentation)
    return segmentation


def read_seg_nrrd(content: bytes, tmp_path: Path) -> dict:
    import slicerio

    path = tmp_path / "saved.seg.nrrd"
    path.write_bytes(content)
    return slicerio.read_segmentation(str(path))


def test_segments_look_as_the_module_and_the_command_line_make_them(session):
    """Slicer's terminology in the page's scene gives the core's name, colour (the right side a
    lighter shade of the left's) and codes; the serialised entry reads back as the core's codes."""
    for prompt in ("Liver", "left kidney", "right kidney", "hepatic organ", "a made-up structure"):
        style, expected = session.logic.segmentStyle(prompt), segment_info(prompt)
        assert style.name == expected.name and style.color == pytest.approx(expected.color)
        assert Terminology.parse(style.terminology) == expected.terminology
    assert session.logic.segmentStyle("left kidney").color != session.logic.segmentStyle("right kidney").color
    assert Terminology.parse("") is None


def test_export_keeps_names_colours_and_marks_only_voxtell_segments(session, tmp_path):
    session.open([volume_upload(tmp_path)])
    segmentation = run(session, ["liver"])
    mine = segmentation.GetSegmentation().AddEmptySegment("my lesion", "my lesion", [0.1, 0.2, 0.3])
    import slicer
    from VoxTellSlicerLib.geometry import segmentationLabelmap

    painted = np.zeros((6, 8, 10), np.uint8)  # the user's own segment: one voxel
    painted[5, 7, 9] = 1
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        segmentationLabelmap(painted, session.volume_node, segmentation), segmentation, mine)

    name, content = session.export("seg-nrrd", segmentation)
    saved = read_seg_nrrd(content, tmp_path)
    assert name == "case.seg.nrrd"
    liver, lesion = saved["segments"]
    assert (liver["name"], liver["tags"][PROMPT_TAG]) == ("liver", "liver")
    assert tuple(liver["color"]) == pytest.approx(segment_info("liver").color)
    assert liver["terminology"]["type"][1] == "10200004"  # SNOMED CT liver
    assert lesion["name"] == "my lesion" and PROMPT_TAG not in lesion.get("tags", {})
    assert tuple(lesion["color"]) == pytest.approx((0.1, 0.2, 0.3))
    assert np.count_nonzero(saved["voxels"]) == 2 * 4 * 5 + 1 + 1  # liver (200 and 400 voxels) + lesion


def test_nifti_download_is_the_label_map_on_the_upload_grid(session, tmp_path):
    import SimpleITK as sitk

    session.open([volume_upload(tmp_path)])
    segmentation = run(session, ["liver", "left kidney"])
    name, content = session.export("nifti", segmentation)
    (tmp_path / name).write_bytes(content)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / name)))
    assert name == "case.nii.gz"
    assert np.count_nonzero(labels == 1) == 2 * 4 * 5 and labels[1, 1, 1] == 2  # later prompts win overlaps


def dicom_helpers():
    """tests/conftest_io_helpers.py, loaded by path (tests/ is kept off sys.path here: see conftest)."""
    from conftest import TESTS

    spec = importlib.util.spec_from_file_location("conftest_io_helpers", TESTS / "conftest_io_helpers.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    return helpers


def test_dicom_zip_upload_and_dicom_seg_download(session, tmp_path):
    import pydicom

    write_full_dicom_series = dicom_helpers().write_full_dicom_series

    array = np.zeros((5, 8, 10), np.int16)
    array[1:4, 2:6, 2:7] = 200
    files = write_full_dicom_series(tmp_path / "ct", array, "1.2.826.0.1.3680043.2.1125.7")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in files:
            zipped.write(path, f"series/{path.name}")
    session.open([Upload("ct.zip", archive.getvalue())])
    assert session.volume.array.shape == (5, 8, 10)
    name, content = session.export("dicom-seg", run(session, ["liver"]))
    seg = pydicom.dcmread(io.BytesIO(content))
    assert name == "ct.dcm" and seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentLabel == "liver"


def test_dicom_folder_upload(session, tmp_path):
    """The folder button sends every file of the folder, names with their subfolders."""
    array = np.zeros((4, 6, 7), np.int16)
    files = dicom_helpers().write_full_dicom_series(tmp_path / "ct", array, "1.2.826.0.1.3680043.2.1125.8")
    session.open([Upload(f"ct/{'a' if index % 2 else 'b'}/{path.name}", path.read_bytes())
                  for index, path in enumerate(files)])
    assert session.volume.array.shape == (4, 6, 7) and session.case == "dicom_series"


def test_dicom_seg_of_a_nifti_upload_is_refused_with_the_fix(session, tmp_path):
    session.open([volume_upload(tmp_path)])
    with pytest.raises(InputError, match="DICOM"):
        session.export("dicom-seg", run(session, ["liver"]))


def test_refused_upload_leaves_the_scene_as_it_was(session, tmp_path):
    session.open([volume_upload(tmp_path)])
    segmentation = run(session, ["liver"])
    flat = image_bytes(np.ones((20, 30), np.uint8), "photo.png", tmp_path)
    with pytest.raises(InputError, match=r"^photo.png is a 2D image"):
        session.open([flat])
    assert session.volume_node.GetScene() is session.scene and session.case == "case"
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1


def test_zip_members_cannot_land_outside_the_upload(tmp_path):
    (tmp_path / "server").mkdir()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../escaped.dcm", b"not dicom")
    with pytest.raises(InputError):
        read_uploads([Upload("../evil.zip", archive.getvalue())], tmp_path / "server")
    files = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert files == ["server/evil.zip", "server/evil/00000_escaped.dcm"]


def test_a_broken_zip_is_refused_with_the_fix(tmp_path):
    with pytest.raises(InputError, match="ct.zip is not a readable zip file: zip the folder of one DICOM series"):
        read_uploads([Upload("ct.zip", b"PK not really")], tmp_path)


def test_revert_follows_the_module_rule(session, tmp_path):
    import slicer
    from VoxTellSlicerLib.geometry import segmentationLabelmap

    session.open([volume_upload(tmp_path)])
    segmentation = run(session, ["liver"])
    # Edited after the run (as the page's paint does): Revert refuses, nothing is lost.
    painted = np.zeros((6, 8, 10), np.uint8)
    painted[0, 0, 0] = 1
    segment_id = segmentation.GetSegmentation().GetNthSegmentID(0)
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        segmentationLabelmap(painted, session.volume_node, segmentation), segmentation, segment_id,
        slicer.vtkSlicerSegmentationsModuleLogic.MODE_MERGE_MAX)
    with pytest.raises(InputError, match="edited after the last VoxTell run"):
        session.revert()
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    # A fresh run, not edited: Revert removes its segment.
    session.logic.forgetLastRun()
    run_two = run(session, ["left kidney"])
    assert session.revert().startswith("Reverted the last run")
    assert run_two.GetSegmentation().GetNumberOfSegments() == 0


def test_no_volume_and_no_prompt_are_clear_errors(session, tmp_path):
    with pytest.raises(InputError, match="open a CT, MR or PET volume first"):
        session.requests(["liver"])
    session.open([volume_upload(tmp_path)])
    with pytest.raises(InputError, match="No prompt given"):
        session.requests(["  ", ""])
