"""Images, geometries and DICOM series that the io, preprocessing and CLI tests make themselves."""

import json
import locale
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

VOCABULARY_DIR = Path(__file__).resolve().parents[1] / "Resources" / "vocabulary"


def vocabulary_prompts() -> list:
    """Every prompt of the shipped vocabularies: concept names, their rephrasings, synonym keys."""
    prompts = []
    for name in ("phantom_vocabulary.json", "voxtell_concepts.json"):
        for concept in json.loads((VOCABULARY_DIR / name).read_text(encoding="utf-8"))["concepts"]:
            prompts += [concept["name"], *concept.get("synonyms", [])]
    synonyms = json.loads((VOCABULARY_DIR / "slicer_synonyms.json").read_text(encoding="utf-8"))
    return list(dict.fromkeys(prompts + [key for key in synonyms if not key.startswith("_")]))


def make_affine(kind: str, seed: int = 0) -> np.ndarray:
    """IJK->RAS matrices of the kinds that trip up reorientation."""
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:3, 3] = rng.uniform(-150, 150, 3)
    spacing = np.array([0.7, 1.3, 2.5])
    if kind == "ras":
        axes = np.eye(3)
    elif kind == "lps":
        axes = np.diag([-1.0, -1.0, 1.0])
    elif kind == "permuted":  # i -> S, j -> L, k -> P: a sagittal-like acquisition
        axes = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    elif kind == "oblique":  # 20-30 degrees about two axes, on top of LPS
        angles = rng.uniform(20, 30, 2) * rng.choice([-1, 1], 2)
        rotation = Rotation.from_euler("xz", angles, degrees=True).as_matrix()
        axes = rotation @ np.diag([-1.0, -1.0, 1.0])
    elif kind == "random":
        rotation = Rotation.random(random_state=seed).as_matrix()
        axes = rotation[:, rng.permutation(3)] * rng.choice([-1, 1], 3)
        spacing = rng.uniform(0.4, 4.0, 3)
    else:
        raise ValueError(kind)
    affine[:3, :3] = axes * spacing
    return affine


def random_image(shape=(7, 5, 6), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100, 40, size=shape).astype(np.float32)


def write_dicom_series(folder: Path, array_kji: np.ndarray, series_uid: str, spacing=(0.8, 0.8, 2.0)) -> None:
    """A minimal CT-like DICOM series, one file per slice; the file names are in shuffled
    order, so only sorting by slice position gets the volume right."""
    folder.mkdir(parents=True, exist_ok=True)
    ctype = locale.setlocale(locale.LC_CTYPE)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    order = np.random.default_rng(0).permutation(array_kji.shape[0])
    for rank, index in enumerate(order):
        slice_image = sitk.GetImageFromArray(array_kji[index : index + 1].astype(np.int16))
        position = (-100.0, -120.0, 40.0 + spacing[2] * index)
        tags = {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0013": str(index + 1),
            "0020|0032": "\\".join(f"{p:.3f}" for p in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|0030": f"{spacing[1]:.3f}\\{spacing[0]:.3f}",
            "0018|0050": f"{spacing[2]:.3f}",
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        slice_image.SetSpacing((spacing[0], spacing[1], spacing[2]))
        slice_image.SetOrigin(position)
        writer.SetFileName(str(folder / f"slice_{series_uid[-3:]}_{rank:03d}.dcm"))
        writer.Execute(slice_image)
    # GDCM's DICOM writer leaves the process's LC_CTYPE at "C" (ASCII), which would change how later tests
    # decode text files; the product never writes DICOM through GDCM.
    locale.setlocale(locale.LC_CTYPE, ctype)


def write_full_dicom_series(folder: Path, array_kji: np.ndarray, series_uid: str, *, modality: str = "CT",
                            study_uid: str = "1.2.826.0.1.3680043.2.1125.1", description: str = "",
                            row_direction=(1.0, 0.0, 0.0), column_direction=(0.0, 1.0, 0.0),
                            spacing=(0.8, 0.9, 2.0), origin=(-100.0, -120.0, 40.0),
                            image_type: str = "ORIGINAL\\PRIMARY\\AXIAL") -> list[Path]:
    """A DICOM series with every attribute a DICOM SEG needs (patient, study, frame of
    reference), written with pydicom: slice k of ``array_kji`` lies at ``origin`` plus k
    ``spacing[2]`` along the slice normal (LPS), rows run along ``column_direction``. File
    names are in shuffled order and instance numbers reversed, so only positions sort it."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    row, column = np.asarray(row_direction, float), np.asarray(column_direction, float)
    normal = np.cross(row, column)
    sop_class = MRImageStorage if modality == "MR" else CTImageStorage
    frame_of_reference = generate_uid(entropy_srcs=[series_uid, "frame"])
    paths = []
    for rank, k in enumerate(np.random.default_rng(1).permutation(array_kji.shape[0])):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^Test", "P001", "19700101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_of_reference
        ds.StudyID, ds.AccessionNumber, ds.StudyDate, ds.StudyTime = "1", "A1", "20240101", "120000"
        ds.ReferringPhysicianName, ds.Manufacturer = "", "test"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = modality, 1, description
        ds.InstanceNumber = int(array_kji.shape[0] - k)
        ds.ImageType = image_type
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + k * spacing[2] * normal]
        ds.ImageOrientationPatient = [float(v) for v in (*row, *column)]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # row spacing (between rows), column spacing
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = array_kji.shape[1], array_kji.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(array_kji[k], dtype=np.int16).tobytes()
        path = folder / f"img_{series_uid[-4:]}_{rank:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
