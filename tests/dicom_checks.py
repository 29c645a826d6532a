"""The field's own checks of the DICOM objects we write: David Clunie's IOD validator
(``dciodvfy``, dicom3tools), dcmqi's ``segimage2itkimage`` (Slicer's DICOM SEG reader), and
the real CT series that ships with TotalSegmentator's source distribution."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from VoxTellCore.io.volume import LPS_TO_RAS, Volume

BIN = Path(sys.executable).parent
TOTALSEGMENTATOR = "totalsegmentator==2.18.0"
TOTALSEGMENTATOR_CT = "totalsegmentator-2.18.0/tests/reference_files/example_ct_dicom"
CACHE = Path(os.environ.get("VOXTELL_TEST_CACHE", Path.home() / ".cache" / "voxtell-tests"))


def dciodvfy_errors(path: Path) -> list:
    """Every "Error" line dciodvfy prints for ``path`` (it exits 0 either way), plus a line when it
    names no IOD, so that an unreadable file (no IOD line) fails too."""
    run = subprocess.run([str(BIN / "dciodvfy"), "-new", str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    errors = [line for line in lines if "Error" in line]
    if not {"Segmentation", "RTStructureSet"} & {line.strip() for line in lines}:
        errors.insert(0, f"dciodvfy did not recognise the IOD: {lines[:3]}")
    return errors


def dcmqi_masks(seg_path: Path, reference: Volume, tmp_path: Path) -> np.ndarray:
    """The SEG read by dcmqi, each segment put on ``reference``'s grid: (N, K, J, I) uint8 in
    segment-number order. dcmqi writes one image per segment on the grid spanned by the frames."""
    folder = tmp_path / f"dcmqi_{seg_path.stem}"
    folder.mkdir()
    subprocess.run([str(BIN / "segimage2itkimage"), "--inputDICOM", str(seg_path), "--outputDirectory",
                    str(folder), "--outputType", "nrrd"], check=True, capture_output=True, timeout=300)
    meta = json.loads((folder / "meta.json").read_text())
    numbers = [segment[0]["labelID"] for segment in meta["segmentAttributes"]]
    ras_to_ijk = np.linalg.inv(reference.ijk_to_ras)
    masks = np.zeros((len(numbers), *reference.array.shape), np.uint8)
    for row, number in enumerate(sorted(numbers)):
        image = sitk.ReadImage(str(folder / f"{number}.nrrd"))
        direction = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
        ours = LPS_TO_RAS[:3, :3] @ direction
        assert np.allclose(ours, reference.ijk_to_ras[:3, :3], atol=1e-3), "dcmqi's grid is not the volume's"
        origin = ras_to_ijk @ LPS_TO_RAS @ np.append(image.GetOrigin(), 1.0)
        i0, j0, k0 = np.round(origin[:3]).astype(int)
        assert np.allclose(origin[:3], (i0, j0, k0), atol=1e-3)
        array = sitk.GetArrayFromImage(image)
        masks[row, k0:k0 + array.shape[0], j0:j0 + array.shape[1], i0:i0 + array.shape[2]] = array > 0
    return masks


def totalsegmentator_ct(destination: Path) -> Path:
    """TotalSegmentator's 20-slice test CT (512 x 512, JPEG 2000, anonymised: study, series and
    instance UIDs blank), copied to ``destination`` with the missing UIDs filled in."""
    import pydicom
    from pydicom.uid import CTImageStorage, generate_uid

    archive = CACHE / "totalsegmentator-2.18.0.tar.gz"
    if not archive.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d",
                        str(CACHE), TOTALSEGMENTATOR], check=True, capture_output=True, timeout=600)
    destination.mkdir(parents=True)
    study, series = generate_uid(entropy_srcs=["ts-study"]), generate_uid(entropy_srcs=["ts-series"])
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.startswith(TOTALSEGMENTATOR_CT)),
                         key=lambda m: m.name)
        for member in members:
            dataset = pydicom.dcmread(tar.extractfile(member))
            name = Path(member.name).name
            dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = CTImageStorage
            dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[name])
            dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
            dataset.PatientID, dataset.PatientName = "TS0001", "TotalSegmentator^Example"
            dataset.save_as(destination / f"{name}.dcm", enforce_file_format=True)
    return destination


def rasterised_rtstruct(path: Path, reference: Volume) -> np.ndarray:
    """Each ROI's contours filled back on ``reference``'s grid by the even-odd rule (as planning
    systems fill them): (N, K, J, I) uint8 in ROI order. A contour's slice is its referenced image."""
    import pydicom
    from skimage.draw import polygon

    rtstruct = pydicom.dcmread(path)
    slice_of = {uid: k for k, uid in enumerate(reference.dicom.sop_instance_uids)}
    lps_to_ijk = np.linalg.inv(LPS_TO_RAS @ reference.ijk_to_ras)
    masks = np.zeros((len(rtstruct.ROIContourSequence), *reference.array.shape), np.uint8)
    for row, roi in enumerate(rtstruct.ROIContourSequence):
        for contour in roi.get("ContourSequence", []):
            k = slice_of[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            raw = contour.get_item(0x30060050).value  # the encoded text: parsing it as DS values is slow
            points = np.asarray(raw.decode("ascii").split("\\"), float).reshape(-1, 3)
            ijk = (np.column_stack([points, np.ones(len(points))]) @ lps_to_ijk.T)[:, :3]
            assert np.allclose(ijk[:, 2], k, atol=1e-3), "a contour lies off its referenced slice"
            rows, columns = polygon(ijk[:, 1], ijk[:, 0], reference.array.shape[1:])
            masks[row, k, rows, columns] ^= 1
    return masks
