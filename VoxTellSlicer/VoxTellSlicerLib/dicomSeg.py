"""Save the VoxTell segments of a segmentation as a DICOM SEG into Slicer's DICOM database, from
where Slicer's own DICOM send reaches a PACS.

The SEG is written by VoxTellCore's writer, the one ``voxtell-core predict --format dicom-seg``
uses (highdicom: 0.28 on Python 3.10+, 0.22 with pydicom 2.4 on Slicer 5.6 and 5.8's Python
3.9), so it is the same object on every Slicer: labels, colours, SNOMED CT codes and the
algorithm identification of the command line, Explicit VR Little Endian. Slicer 5.6 and 5.8
have no DICOM SEG exporter of their own (QuantitativeReporting's DICOMSegmentationPlugin,
through dcmqi, is an extension there; it joined Slicer's core after 5.10).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.terminology import PROMPT_TAG, segment_info

INSTANCE_UIDS = "DICOM.instanceUIDs"  # the attribute Slicer's DICOM plugins give a loaded volume


def voxtellSegmentIds(segmentationNode) -> List[str]:
    """The segments VoxTell made (they carry the prompt tag); the user's own are left out."""
    segmentation = segmentationNode.GetSegmentation()
    return [i for i in segmentation.GetSegmentIDs() if segmentation.GetSegment(i).HasTag(PROMPT_TAG)]


def sourceFiles(volumeNode, fileForInstance: Optional[Callable[[str], str]] = None) -> List[str]:
    """The DICOM files the volume was loaded from (Slicer's DICOM database knows them)."""
    uids = (volumeNode.GetAttribute(INSTANCE_UIDS) or "").split()
    if not uids:
        raise InputError(f"{volumeNode.GetName()} was not loaded from DICOM, so a DICOM SEG has no images to "
                         "reference: load the series through the DICOM module, or save the segmentation as .seg.nrrd.")
    if fileForInstance is None:
        import slicer

        fileForInstance = slicer.dicomDatabase.fileForInstance
    files = [fileForInstance(uid) for uid in uids]
    missing = [uid for uid, path in zip(uids, files) if not path or not Path(path).is_file()]
    if missing:
        raise InputError(f"{len(missing)} DICOM file(s) of {volumeNode.GetName()} are no longer in the DICOM "
                         f"database (e.g. instance {missing[0]}): import the series again.")
    return files


def saveAsDicomSeg(segmentationNode, volumeNode, outputFolder: str | Path,
                   segmentIds: Optional[Sequence[str]] = None,
                   fileForInstance: Optional[Callable[[str], str]] = None,
                   addToDatabase: bool = True) -> Path:
    """Write the VoxTell segments (or ``segmentIds``) on ``volumeNode``'s grid as
    ``<outputFolder>/<volume name>_VoxTell.dcm`` and, by default, add it to Slicer's DICOM database."""
    from VoxTellCore import __version__
    from VoxTellCore.io import ModelInfo, read_volume, writer_for
    from VoxTellSlicerLib.geometry import ijkToRasArray

    ids = list(segmentIds) if segmentIds is not None else voxtellSegmentIds(segmentationNode)
    if not ids:
        raise InputError("The segmentation has no VoxTell segment to save: run a prompt first.")
    files = sourceFiles(volumeNode, fileForInstance)
    masks = np.stack([_mask(segmentationNode, segmentId, volumeNode) for segmentId in ids])
    segmentation = segmentationNode.GetSegmentation()
    infos = [dataclasses.replace(segment_info(segmentation.GetSegment(i).GetName()),
                                 color=tuple(segmentation.GetSegment(i).GetColor())) for i in ids]
    model = ModelInfo(name="VoxTell (3D Slicer module)", version=__version__)
    path = Path(outputFolder) / f"{_safeName(volumeNode.GetName())}_VoxTell.dcm"
    with tempfile.TemporaryDirectory(prefix="voxtell-seg-") as series:  # the series alone, as the writer reads it
        for number, source in enumerate(files):
            shutil.copy(source, Path(series) / f"{number:05d}.dcm")
        reference = read_volume(series)
        if reference.array.shape != masks.shape[1:] or not np.allclose(reference.ijk_to_ras, ijkToRasArray(volumeNode),
                                                                       atol=1e-3):
            raise InputError(f"{volumeNode.GetName()} no longer lies on the grid of its DICOM files (resampled, "
                             "cropped or transformed?): segment the volume as loaded from DICOM.")
        writer_for("dicom-seg").write(masks, infos, reference, path, model)
    if addToDatabase:  # as Slicer's own DICOM SEG exporter adds its file (ctkDICOMDatabase::insert, stored there)
        import slicer

        slicer.dicomDatabase.insert(str(path))
    return path


def _mask(segmentationNode, segmentId: str, volumeNode) -> np.ndarray:
    import slicer

    return (slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, volumeNode) > 0).astype(np.uint8)


def _safeName(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "volume"
