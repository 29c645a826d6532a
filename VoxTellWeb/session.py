"""One browser user's VoxTell session: the uploaded volume in a Slicer scene, runs through the
Slicer module's logic, Revert, and exports. No trame here (the app wires it to the page), so
it runs on any slicer-core with a scene.

The upload is read by the core's readers (``VoxTellCore.io.read_volume``): the same checks and
messages as ``voxtell-core predict``, and the same ``Volume``, so a download equals the command
line's output for the same file and prompts. The volume node shows exactly that ``Volume``.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from VoxTellCore.errors import InputError
from VoxTellCore.io import Volume, read_volume, writer_for
from VoxTellCore.io.formats.base import SegmentInfo
from VoxTellCore.io.naming import case_name, case_output_name
from VoxTellCore.progress import CancelCheck, Progress
from VoxTellCore.terminology import PROMPT_TAG, Terminology
from VoxTellSlicerLib.geometry import vtkMatrixFromArray
from VoxTellSlicerLib.logic import SegmentRequest, VoxTellLogic, cleanPrompts
from VoxTellSlicerLib.options import DEMO_MODEL, RunOptions

#: Formats offered for download (the core's writers); dicom-seg needs a DICOM upload.
DOWNLOAD_FORMATS = ("seg-nrrd", "nifti", "dicom-seg")


@dataclass(frozen=True)
class Upload:
    """One file sent by the browser: its name as the user's disk had it, and its bytes."""

    name: str
    content: bytes


def _safe_name(name: str, index: int) -> str:
    """The file's own name without folders or odd characters (never a path outside the upload folder)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name.replace("\\", "/")).name).lstrip(".")
    return base or f"file_{index}"


def read_uploads(uploads: Sequence[Upload], folder: Path) -> Tuple[Volume, str]:
    """(volume, case name) from the browser's files, kept in ``folder`` (a DICOM volume refers to
    its files until it is saved): one image file, a zip of a DICOM series, or the files of a DICOM
    series folder. Raises InputError; its message names the upload, not the server's folder."""
    if not uploads:
        raise InputError("No file received: choose a NIfTI, NRRD or MHA file, or a zip of a DICOM series.")
    names = [_safe_name(upload.name, index) for index, upload in enumerate(uploads)]
    if len(set(names)) < len(names):  # a folder upload: DICOM files of several subfolders
        names = [f"{index:05d}_{name}" for index, name in enumerate(names)]
    for name, upload in zip(names, uploads):
        (folder / name).write_bytes(upload.content)
    if len(uploads) == 1 and names[0].lower().endswith(".zip"):
        target, case = _unzip(folder / names[0]), names[0][:-4]
    elif len(uploads) == 1:
        target, case = folder / names[0], case_name(names[0])
    else:
        target, case = folder, "dicom_series"
    try:
        return read_volume(target), case
    except InputError as error:
        raise InputError(str(error).replace(str(folder) + "/", "").replace(str(folder), "the upload")) from None


def _unzip(archive: Path) -> Path:
    """The zip's files flat in a new folder beside it (names made safe: nothing lands outside)."""
    folder = archive.with_suffix("")
    folder.mkdir()
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [member for member in opened.infolist() if not member.is_dir()]
            for index, member in enumerate(members):
                (folder / f"{index:05d}_{_safe_name(member.filename, index)}").write_bytes(opened.read(member))
    except zipfile.BadZipFile:
        raise InputError(f"{archive.name} is not a readable zip file: zip the folder of one DICOM series.") from None
    if not members:
        raise InputError(f"{archive.name} is empty: zip the folder of one DICOM series.")
    return folder


def add_volume_node(scene, volume: Volume, name: str):
    """A scalar volume node in ``scene`` showing ``volume``'s voxels and geometry exactly."""
    import slicer

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetIJKToRASMatrix(vtkMatrixFromArray(np.asarray(volume.ijk_to_ras, dtype=np.float64)))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    node.CreateDefaultDisplayNodes()
    return node


def segment_masks(segmentation_node, volume_node) -> Tuple[np.ndarray, List[SegmentInfo]]:
    """Every segment as a mask on the volume's grid (N, K, J, I) with its current name, colour,
    terminology and prompt (empty for segments the user made)."""
    import slicer
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    reference = slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(volume_node)
    dims = reference.GetDimensions()
    segmentation = segmentation_node.GetSegmentation()
    masks, infos = [], []
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        labelmap = slicer.vtkOrientedImageData()
        segmentation_node.GetBinaryLabelmapRepresentation(segment_id, labelmap)
        mask = np.zeros(dims[::-1], np.uint8)
        extent = labelmap.GetExtent()
        if extent[1] >= extent[0] and labelmap.GetPointData().GetScalars() is not None:
            resampled = slicer.vtkOrientedImageData()
            slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
                labelmap, reference, resampled, False)
            mask = (vtk_to_numpy(resampled.GetPointData().GetScalars()).reshape(dims[::-1]) != 0).astype(np.uint8)
        masks.append(mask)
        prompt = vtk.reference("")
        if not segment.GetTag(PROMPT_TAG, prompt):
            prompt = ""
        terminology = Terminology.parse(segment.GetTerminology() or "")
        infos.append(SegmentInfo(str(prompt), segment.GetName(), tuple(float(c) for c in segment.GetColor()), terminology))
    return (np.stack(masks) if masks else np.zeros((0, *dims[::-1]), np.uint8)), infos


class WebSession:
    """A volume and its VoxTell runs in one scene. ``logic`` is the Slicer module's
    ``VoxTellLogic`` (segments, terminology, Revert); ``predictor_factory`` as there."""

    def __init__(self, scene, terminology_logic=None, model: str = DEMO_MODEL, device: str = "auto",
                 predictor_factory: Optional[Callable[..., Any]] = None) -> None:
        self.scene = scene
        self.logic = VoxTellLogic(predictor_factory, terminologyLogic=terminology_logic)
        self.options = RunOptions(model=model, device=device)
        self.volume: Optional[Volume] = None
        self.volume_node = None
        self.case = ""
        self._upload_folder: Optional[tempfile.TemporaryDirectory] = None

    def open(self, uploads: Sequence[Upload]):
        """Read the upload (nothing in the scene changes when it is refused), then show it as the
        scene's only volume; returns the new volume node."""
        return self._open(lambda folder: read_uploads(uploads, folder))

    def open_dicomweb(self, server, study: str, series: str):
        """A series of a DICOMweb server (``VoxTellCore.pacs.dicomweb.DicomWebServer``), fetched into the
        session's folder and read as a DICOM folder upload is."""
        def fetch(folder: Path) -> Tuple[Volume, str]:
            server.fetch_series(study.strip(), series, folder)
            return read_volume(folder), f"series_{series.rsplit('.', 1)[-1]}"

        return self._open(fetch)

    def store_dicomweb(self, server, segmentation_node) -> str:
        """The segmentation as DICOM SEG, stored on the DICOMweb server (STOW-RS); returns its file name."""
        name, content = self.export("dicom-seg", segmentation_node)
        with tempfile.TemporaryDirectory(prefix="voxtell-web-") as folder:
            path = Path(folder) / name
            path.write_bytes(content)
            server.store([path])
        return name

    def _open(self, read: Callable[[Path], Tuple[Volume, str]]):
        folder = tempfile.TemporaryDirectory(prefix="voxtell-web-")
        try:
            volume, case = read(Path(folder.name))
        except BaseException:
            folder.cleanup()
            raise
        self.close()
        self._upload_folder = folder
        self.scene.Clear()
        self.logic.forgetLastRun()
        self.volume, self.case = volume, case
        self.volume_node = add_volume_node(self.scene, volume, case)
        return self.volume_node

    def close(self) -> None:
        """Delete the uploaded files (the scene keeps its copy of the voxels)."""
        if self._upload_folder is not None:
            self._upload_folder.cleanup()
            self._upload_folder = None

    def requests(self, prompts: str | Sequence[str]) -> List[SegmentRequest]:
        """The segments a run will write (checks the prompts: InputError for none)."""
        if self.volume_node is None:
            raise InputError("No volume yet: open a CT, MR or PET volume first (NIfTI, NRRD, MHA or a zip of a DICOM series).")
        return [SegmentRequest(prompt, self.logic.segmentStyle(prompt)) for prompt in cleanPrompts(prompts)]

    def finding_requests(self, rows: Sequence[dict], segmentation_node) -> List[SegmentRequest]:
        """The segments for the chosen rows of ``VoxTellSlicerLib.report.extractReportFindings``: names,
        category colours and tags as the module's Report section gives them."""
        if self.volume_node is None:
            raise InputError("No volume yet: open the CT the report describes first.")
        return self.logic.findingRequests([{"text": row["text"], "category": row["category"]} for row in rows],
                                          segmentation_node)

    def predict(self, requests: Sequence[SegmentRequest], progress: Optional[Progress] = None,
                cancel: CancelCheck = None) -> np.ndarray:
        """The model work (no scene change): may run in a worker thread while the page stays live."""
        return self.logic.predictMasks(self.volume_node, [request.prompt for request in requests], self.options,
                                       progress, cancel)

    def apply(self, masks: np.ndarray, requests: Sequence[SegmentRequest], segmentation_node) -> None:
        """Write the run's segments (on the scene's thread); the run becomes revertible."""
        self.logic.applyMasks(self.volume_node, masks, requests, segmentation_node)

    def revert(self) -> str:
        return self.logic.revertLastRun()

    def export(self, format: str, segmentation_node) -> Tuple[str, bytes]:
        """(file name, bytes) of the segmentation in a core format, on the uploaded volume's grid."""
        if self.volume_node is None or segmentation_node is None:
            raise InputError("Nothing to save: open a volume and segment it first.")
        writer = writer_for(format)
        writer.check_input(self.volume)
        masks, infos = segment_masks(segmentation_node, self.volume_node)
        if not infos:
            raise InputError("Nothing to save: the segmentation has no segments. Run a prompt first.")
        from VoxTellCore.inference.batch import model_info

        name = case_output_name(self.case, writer.suffix)
        model, bank = self.logic.resolveModel(self.options)
        predictor = self.logic.predictor(model, self.options.device, bank)
        with tempfile.TemporaryDirectory(prefix="voxtell-web-") as folder:
            path = Path(folder) / name
            writer.write(masks, infos, self.volume, path, model_info(predictor))
            return name, path.read_bytes()
