"""DICOM Segmentation objects (for PACS) written with ``highdicom``.

One binary segment per prompt, labelled with the prompt and coded with the category, type
and laterality modifier that Slicer's General Anatomy list gives the prompt; prompts the
list lacks get the code Slicer gives a segment without terminology (SCT 85756007 "Tissue"
for both). Each frame references its source instance; the algorithm identification names
VoxTell, the model and the version. Pixels are bit-packed with empty frames left out.

The file is Explicit VR Little Endian, the transfer syntax every PACS, viewer and the
reference validator (dciodvfy) reads. ``--format dicom-seg-deflated`` writes Deflated
Explicit VR Little Endian instead (lossless zlib over the whole dataset, often 10-50x
smaller for sparse masks), which pydicom, highdicom and DCMTK/dcmqi read but dciodvfy and
many PACS do not. highdicom's other choice for binary segments, JPEG 2000, is not used:
DCMTK (Slicer's DICOM SEG reader, dcmqi) has no free JPEG 2000 decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import InputError
from VoxTellCore.io.formats.base import ModelInfo, SegmentInfo
from VoxTellCore.io.volume import Volume
from VoxTellCore.terminology import GENERIC, Code

MANUFACTURER = "VoxTell for 3D Slicer"
LONG_STRING = 64  # the length limit of DICOM LO values (segment label, model name)
ARTIFICIAL_INTELLIGENCE = Code("DCM", "123110", "Artificial Intelligence")  # CID 7162 algorithm family
SERIES_NUMBER = 9701  # an arbitrary number that keeps VoxTell's SEG series apart from the scanner's


class DicomSegWriter:
    suffix = ".dcm"
    label_map = False

    def __init__(self, name: str = "dicom-seg", deflate: bool = False) -> None:
        self.name = name
        self.deflate = deflate

    def check_input(self, volume: Volume) -> None:
        check_dicom_reference(volume, "DICOM SEG")

    def write(self, masks: np.ndarray, segments: Sequence[SegmentInfo], reference: Volume, path: Path,
              model: ModelInfo) -> None:
        import highdicom
        import pydicom
        from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

        masks = checked_masks(masks, segments, reference, "DICOM SEG")
        # Slice k of the volume is source file k (sorted by position when read); a DICOM frame's
        # rows and columns are the volume's J and I.
        sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in reference.dicom.files]
        algorithm = highdicom.AlgorithmIdentificationSequence(
            name="VoxTell",
            family=_coded(ARTIFICIAL_INTELLIGENCE),
            version=model.version,
            source=long_string(model.name),
            parameters={"model": model.name, "demo model": "yes" if model.is_demo else "no"},
        )
        descriptions = [_description(number, info, algorithm) for number, info in enumerate(segments, start=1)]
        demo = " (demo model, not for clinical images)" if model.is_demo else ""
        seg = highdicom.seg.Segmentation(
            source_images=sources,
            pixel_array=(masks > 0).astype(np.uint8).transpose(1, 2, 3, 0),
            segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=highdicom.UID(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=highdicom.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=long_string(model.name),
            software_versions=model.version,
            device_serial_number="none",
            series_description=long_string("VoxTell segmentation" + demo),
            content_description=long_string("VoxTell from text prompts" + demo),
            content_label="VOXTELL",
            content_qualification=highdicom.ContentQualificationValues.RESEARCH,
            omit_empty_frames=True,
        )
        seg.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: prompts may hold any character
        seg.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian if self.deflate else ExplicitVRLittleEndian

        def save(temporary: str) -> None:
            if int(pydicom.__version__.split(".")[0]) < 3:  # pydicom 2 (Python 3.9: Slicer 5.6/5.8)
                seg.save_as(temporary, write_like_original=False)
            else:
                seg.save_as(temporary, enforce_file_format=True)

        atomic_write(path, save, self.suffix)


def checked_masks(masks: np.ndarray, segments: Sequence[SegmentInfo], reference: Volume, what: str) -> np.ndarray:
    """``masks`` as an array, after checking that ``reference`` can be referenced and that there
    is one mask per segment on its grid."""
    check_dicom_reference(reference, what)
    masks = np.asarray(masks)
    if masks.shape[1:] != reference.array.shape or len(segments) != masks.shape[0]:
        raise ValueError(f"expected {len(segments)} masks on the reference's grid {reference.array.shape}, "
                         f"got {masks.shape}")
    return masks


def check_dicom_reference(volume: Volume, what: str) -> None:
    """``volume`` is a series of single-slice DICOM files with the UIDs a DICOM object made
    from it (``what``: DICOM SEG, RTSTRUCT) must reference; else InputError naming the fix."""
    source = volume.dicom
    if source is None:
        raise InputError(
            f"{what} output needs a DICOM series as input (a folder of DICOM files); {volume.source} is not "
            "one. Pass the DICOM series folder, or pick another --format (nifti, nrrd, mha, seg-nrrd)."
        )
    if len(source.files) != volume.array.shape[0]:
        raise InputError(
            f"{volume.source} is a multi-frame DICOM series ({len(source.files)} file(s) for "
            f"{volume.array.shape[0]} slices); {what} output supports series of single-slice files only. "
            "Pick another --format (nifti, nrrd, mha, seg-nrrd)."
        )
    missing = [name for name, value in (("Study Instance UID", source.study_uid),
                                         ("Series Instance UID", source.series_uid),
                                         ("Frame of Reference UID", source.frame_of_reference_uid)) if not value]
    if not all(source.sop_instance_uids) or not all(source.sop_class_uids):
        missing.append("SOP Class/Instance UID in every file")
    if missing:
        raise InputError(
            f"The DICOM series in {volume.source} has no {', '.join(missing)} (anonymised without UIDs?), "
            f"which a {what} must reference. Pick another --format (nifti, nrrd, mha, seg-nrrd), or restore "
            "the UIDs."
        )


def _coded(code: Code):
    from highdicom.sr import CodedConcept

    return CodedConcept(code.value, code.scheme, code.meaning)


def dicom_cielab(rgb: Sequence[float]) -> list:
    """An sRGB colour (0-1) as a DICOM Recommended Display CIELab Value: L*a*b* (D65) scaled to
    0-65535. Computed here, not by highdicom: 0.22, the last highdicom for Python 3.9 (Slicer
    5.6, 5.8), has no display colour option."""
    linear = np.array([c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in map(float, rgb)])
    xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]]) @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    return [round(lab[0] * 65535 / 100), round((lab[1] + 128) * 65535 / 255), round((lab[2] + 128) * 65535 / 255)]


def long_string(text: str) -> str:
    """A valid DICOM LO value: no backslash, at most 64 characters (counted in UTF-8 bytes, as
    pydicom checks them)."""
    return text.replace("\\", "/").encode("utf-8")[:LONG_STRING].decode("utf-8", errors="ignore")


def _description(number: int, info: SegmentInfo, algorithm):
    import highdicom
    from pydicom.dataset import Dataset

    terminology = info.terminology or GENERIC
    description = highdicom.seg.SegmentDescription(
        segment_number=number,
        segment_label=long_string(info.name),
        segmented_property_category=_coded(terminology.category),
        segmented_property_type=_coded(terminology.type),
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
    )
    description.RecommendedDisplayCIELabValue = dicom_cielab(info.color)
    if terminology.modifier is not None:
        item = Dataset()
        item.CodeValue = terminology.modifier.value
        item.CodingSchemeDesignator = terminology.modifier.scheme
        item.CodeMeaning = terminology.modifier.meaning
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [item]
    if len(info.prompt) > LONG_STRING or info.name != info.prompt:
        description.SegmentDescription = info.prompt[:1024]  # ST: the whole prompt when the label is cut
    return description


WRITERS = (DicomSegWriter(), DicomSegWriter("dicom-seg-deflated", deflate=True))
