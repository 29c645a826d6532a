"""DICOM RT Structure Sets (``--format rtstruct``) for radiotherapy systems, written with pydicom.

One ROI per prompt; on each slice, every boundary of the mask (outer borders and holes)
is a CLOSED_PLANAR contour through the pixel edges (marching squares at 0.5, scikit-image),
in patient millimetres (straight runs kept as their two ends), referencing that slice's source instance. Planning systems fill a
slice's contours by the even-odd rule, so holes stay holes. Patient and study attributes are
copied from the source series; the file is Explicit VR Little Endian.

rt-utils was measured as the alternative (``bench/rtstruct_writers.py``, ``bench/README.md``):
on TotalSegmentator's real CT its file fails dciodvfy (Frame of Reference UID and four type-2
attributes missing), its contours fill back less exactly (Dice 0.98 to the bone mask, ours
1.0), it is no faster, and it needs opencv-python, whose GUI build fails to import on
machines without libGL.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import List, Sequence

import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.io.formats.base import ModelInfo, SegmentInfo
from VoxTellCore.io.formats.dicom_seg import (MANUFACTURER, SERIES_NUMBER, check_dicom_reference, checked_masks,
                                               long_string)
from VoxTellCore.io.volume import LPS_TO_RAS, Volume

CONTOUR_DATA = 0x30060050
STUDY_COMPONENT_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"  # the SOP class RT objects reference a study by
PATIENT_AND_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                     "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")


class RTStructWriter:
    name = "rtstruct"
    suffix = ".dcm"
    label_map = False

    def check_input(self, volume: Volume) -> None:
        check_dicom_reference(volume, "RTSTRUCT")

    def write(self, masks: np.ndarray, segments: Sequence[SegmentInfo], reference: Volume, path: Path,
              model: ModelInfo) -> None:
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

        masks = checked_masks(masks, segments, reference, "RTSTRUCT")
        source = reference.dicom
        first = pydicom.dcmread(source.files[0], stop_before_pixels=True)
        images = [_image_reference(cls, uid) for cls, uid in zip(source.sop_class_uids, source.sop_instance_uids)]
        now = datetime.datetime.now()
        demo = " (demo model, not for clinical images)" if model.is_demo else ""

        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: prompts may hold any character
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = RTStructureSetStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        for keyword in PATIENT_AND_STUDY:
            setattr(ds, keyword, first.get(keyword, ""))
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), SERIES_NUMBER
        ds.SeriesDescription = long_string("VoxTell structures" + demo)
        ds.OperatorsName = ""
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = source.frame_of_reference_uid, ""
        ds.Manufacturer, ds.ManufacturerModelName = MANUFACTURER, long_string(model.name)
        ds.SoftwareVersions, ds.InstanceNumber = model.version, 1
        ds.StructureSetLabel = "VOXTELL"
        ds.StructureSetDate, ds.StructureSetTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")

        series = Dataset()
        series.SeriesInstanceUID, series.ContourImageSequence = source.series_uid, images
        study = Dataset()
        study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = STUDY_COMPONENT_MANAGEMENT, source.study_uid
        study.RTReferencedSeriesSequence = [series]
        frame = Dataset()
        frame.FrameOfReferenceUID, frame.RTReferencedStudySequence = source.frame_of_reference_uid, [study]
        ds.ReferencedFrameOfReferenceSequence = [frame]

        ijk_to_lps = LPS_TO_RAS @ reference.ijk_to_ras
        ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
        for number, (mask, info) in enumerate(zip(masks, segments), start=1):
            roi = Dataset()
            roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, source.frame_of_reference_uid
            roi.ROIName, roi.ROIGenerationAlgorithm = long_string(info.name), "AUTOMATIC"
            roi.ROIGenerationDescription = long_string(f"VoxTell {model.version}: {info.prompt}")
            ds.StructureSetROISequence.append(roi)
            contours = Dataset()
            contours.ReferencedROINumber = number
            contours.ROIDisplayColor = [int(round(255 * float(c))) for c in info.color]
            sequence = [_contour(points, images[k]) for k in np.flatnonzero(mask.reshape(len(mask), -1).any(1))
                        for points in slice_contours(mask[k], k, ijk_to_lps)]
            if sequence:  # an empty mask has no contour (an empty sequence is invalid)
                contours.ContourSequence = sequence
            ds.ROIContourSequence.append(contours)
            observation = Dataset()
            observation.ObservationNumber, observation.ReferencedROINumber = number, number
            observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
            ds.RTROIObservationsSequence.append(observation)

        atomic_write(path, lambda temporary: ds.save_as(temporary, enforce_file_format=True), self.suffix)


def slice_contours(mask_ji: np.ndarray, k: int, ijk_to_lps: np.ndarray) -> List[np.ndarray]:
    """The closed boundaries of one slice's mask as (n, 3) LPS points (last point not repeated)."""
    from skimage.measure import find_contours

    padded = np.pad(mask_ji > 0, 1).astype(np.float32)  # so that borders touching the image edge close
    contours = []
    for ji in find_contours(padded, 0.5):
        ji = corners(ji[:-1]) - 1.0  # find_contours repeats the first point of a closed contour
        ijk = np.column_stack([ji[:, 1], ji[:, 0], np.full(len(ji), float(k)), np.ones(len(ji))])
        contours.append((ijk @ ijk_to_lps.T)[:, :3])
    return contours


def corners(points: np.ndarray) -> np.ndarray:
    """A closed polygon without the points in line with their neighbours: the straight runs of
    a marching-squares outline shrink to their ends (so a 512-pixel body outline stays within
    the 64 kB a DS value may hold)."""
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    turning = np.abs(before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) > 1e-6
    return points[turning | (np.sum(before * after, axis=1) <= 0)]


def _image_reference(sop_class: str, sop_instance: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def _contour(points: np.ndarray, image):
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset

    contour = Dataset()
    contour.ContourImageSequence = [image]
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = len(points)
    # Written as encoded text: pydicom's DS values cost a Python object per number. 1/10000 mm
    # keeps every value within the 16 characters of a DS.
    text = "\\".join(f"{value:.4f}" for value in points.ravel()).encode("ascii")
    text += b" " * (len(text) % 2)
    contour[CONTOUR_DATA] = RawDataElement(CONTOUR_DATA, "DS", len(text), text, 0, False, True)
    return contour


WRITER = RTStructWriter()
