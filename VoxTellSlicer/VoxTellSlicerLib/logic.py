"""VoxTellLogic: free-text prompts -> segments of a Slicer segmentation node.

Everything is computed before the segmentation is touched, so a cancelled or failed
run leaves it exactly as it was. Segments made by VoxTell carry a tag with their prompt:
running the prompt again replaces that segment's voxels, and segments without the tag
(the user's own) are never modified. Report findings are prompts too (``groundReport``):
their segments get a short name, the full finding text in a tag and a category colour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Optional
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.findings import Finding
from VoxTellCore.progress import CancelCheck, Progress, is_cancelled
from VoxTellSlicerLib.geometry import ijkToRasArray, orientedImageFromMask, roiBoundsRas, volumeArray
from VoxTellSlicerLib.report import (
    FINDING_CATEGORY_TAG,
    FINDING_TEXT_TAG,
    categoryColor,
    reportFindings,
    shortName,
    uniqueName,
)
from VoxTellSlicerLib.terminology import (
    PromptTerminology,
    SegmentStyle,
    findSynonymsFile,
    loadSynonyms,
    normalizePrompt,
)

log = logging.getLogger(__name__)

PredictorFactory = Callable[[str, str, Optional[str]], object]

MODULE_DIR = Path(__file__).resolve().parent.parent
PROMPT_TAG = "VoxTell.Prompt"
DEMO_MODEL = "demo"


def defaultPredictorFactory(model: str, device: str, embeddingBank: str | None):
    from VoxTellCore.inference.predictor import VoxTellPredictor

    return VoxTellPredictor(model=model, device=device, embedding_bank=embeddingBank)


def promptKey(prompt: str) -> str:
    """Prompts that differ only in case or spacing give the same mask and share a segment."""
    return normalizePrompt(prompt).lower()


def cleanPrompts(prompts: str | Sequence[str]) -> list[str]:
    """One prompt per line or list item; blanks and repeats (ignoring case) dropped, order kept."""
    lines = prompts.splitlines() if isinstance(prompts, str) else [line for item in prompts for line in str(item).splitlines()]
    cleaned: dict[str, str] = {}
    for line in lines:
        prompt = normalizePrompt(line)
        if prompt and promptKey(prompt) not in cleaned:
            cleaned[promptKey(prompt)] = prompt
    if not cleaned:
        raise InputError("No prompt given: type at least one structure to segment, e.g. 'liver' (one per line).")
    return list(cleaned.values())


@dataclass(frozen=True)
class SegmentRequest:
    """One segment to write: the prompt it comes from (which also finds it again on a
    rerun), how it looks when created, and extra segment tags."""

    prompt: str
    style: SegmentStyle
    tags: tuple[tuple[str, str], ...] = ()


class VoxTellLogic:
    """Runs VoxTell on volume nodes and writes the masks into segmentation nodes.

    ``predictor_factory(model, device, embeddingBank)`` builds the predictor (default:
    ``VoxTellPredictor``). The last predictor and the last volume's voxels are kept, so a
    second run on the same image starts without reloading anything.
    """

    def __init__(
        self,
        predictor_factory: PredictorFactory | None = None,
        terminologyLogic=None,
        synonymsPath: str | Path | None = None,
    ) -> None:
        self.predictorFactory = predictor_factory or defaultPredictorFactory
        self._terminologyLogic = terminologyLogic
        self._synonymsPath = Path(synonymsPath) if synonymsPath else findSynonymsFile(MODULE_DIR)
        self._terminology: PromptTerminology | None = None
        self._predictor = None
        self._predictorKey: tuple | None = None
        self._volumeKey: tuple | None = None
        self._volume = None
        #: Save the segmentation's state before each run so that Edit > Undo reverts the whole run.
        self.undoEnabled = True
        #: Runs the model loading and inference (no MRML access): called directly by default; the
        #: module's widget sets a runner that uses a worker thread so that the GUI stays responsive.
        self.runCompute: Callable[[Callable[[], Any]], Any] = lambda compute: compute()

    # ------------------------------------------------------------------ public API
    def segment(
        self,
        volumeNode,
        prompts: str | Sequence[str],
        segmentationNode=None,
        roiNode=None,
        modelPath: str | Path | None = None,
        device: str = "auto",
        embeddingBank: str | Path | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
    ):
        """Segment ``volumeNode`` with one segment per prompt; returns the segmentation node.

        A new segmentation node is created when ``segmentationNode`` is None. Raises
        ``Cancelled`` (segmentation untouched) when ``cancel`` fires, ``InputError`` or
        ``ModelError`` for problems the user can fix.
        """
        requests = [SegmentRequest(prompt, self.segmentStyle(prompt)) for prompt in cleanPrompts(prompts)]
        return self.segmentRequests(volumeNode, requests, segmentationNode, roiNode, modelPath, device, embeddingBank,
                                    progress, cancel)

    def groundReport(
        self,
        volumeNode,
        findings: Iterable[Finding | Mapping | str],
        segmentationNode=None,
        roiNode=None,
        modelPath: str | Path | None = None,
        device: str = "auto",
        embeddingBank: str | Path | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
    ):
        """Segment each report finding (``Finding``, ``{"text", "category"}`` row or text).

        Each finding gets its own segment, named with a short form of its text, tagged
        with the full text (``VoxTell.FindingText``) and category (``VoxTell.FindingCategory``)
        and coloured by category. Reruns, cancel, failures and undo behave as in ``segment``.
        """
        requests = self.findingRequests(findings, segmentationNode)
        return self.segmentRequests(volumeNode, requests, segmentationNode, roiNode, modelPath, device, embeddingBank,
                                    progress, cancel)

    def findingRequests(self, findings: Iterable[Finding | Mapping | str], segmentationNode=None) -> list[SegmentRequest]:
        """The segments for these findings, with names unique within the segmentation.

        A finding grounded before keeps its segment (and its name); repeats are dropped.
        """
        import slicer

        unique = {}
        for finding in reportFindings(findings):
            unique.setdefault(promptKey(finding.text), finding)
        if not unique:
            raise InputError("No finding to ground: press 'Extract findings' and tick at least one finding.")
        segmentation = segmentationNode.GetSegmentation() if segmentationNode is not None else slicer.vtkSegmentation()
        segments = {segmentation.GetNthSegmentID(i): segmentation.GetNthSegment(i)
                    for i in range(segmentation.GetNumberOfSegments())}
        existing = {key: self.promptSegmentId(segmentation, key) for key in unique}
        taken = {segment.GetName() for segmentId, segment in segments.items() if segmentId not in existing.values()}
        requests = []
        for key, finding in unique.items():
            segmentId = existing[key]
            name = segments[segmentId].GetName() if segmentId else uniqueName(shortName(finding.text), taken)
            taken.add(name)
            tags = ((FINDING_TEXT_TAG, finding.text), (FINDING_CATEGORY_TAG, finding.category))
            requests.append(SegmentRequest(finding.text, SegmentStyle(name, categoryColor(finding.category)), tags))
        return requests

    def segmentRequests(
        self,
        volumeNode,
        requests: Sequence[SegmentRequest],
        segmentationNode=None,
        roiNode=None,
        modelPath: str | Path | None = None,
        device: str = "auto",
        embeddingBank: str | Path | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
    ):
        """Predict every request's prompt, then write all segments at once (see ``applyMasks``)."""
        masks = self.predictMasks(volumeNode, [request.prompt for request in requests], roiNode, modelPath, device,
                                  embeddingBank, progress, cancel)
        if is_cancelled(cancel):
            raise Cancelled("Inference cancelled.")
        return self.applyMasks(volumeNode, masks, requests, segmentationNode)

    def predictMasks(
        self,
        volumeNode,
        prompts: Sequence[str],
        roiNode=None,
        modelPath: str | Path | None = None,
        device: str = "auto",
        embeddingBank: str | Path | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck = None,
    ) -> np.ndarray:
        """uint8 masks (N, K, J, I) on the volume node's own voxel grid."""
        if volumeNode is None:
            raise InputError("No input volume: select the image to segment.")
        volume = self.volumeFromNode(volumeNode)
        roi = roiBoundsRas(roiNode, volumeNode)
        def compute():
            predictor = self.predictor(modelPath, device, embeddingBank)
            return predictor.predict_volume(volume, list(prompts), roi_ras=roi, progress=progress, cancel=cancel)

        masks = np.asarray(self.runCompute(compute), dtype=np.uint8)
        expected = (len(prompts), *volume.array.shape)
        if masks.shape != expected:
            raise RuntimeError(f"The predictor returned masks of shape {masks.shape}, expected {expected}.")
        return masks

    def predictLabelmap(self, volumeNode, prompt: str, roiNode=None, **options):
        """One prompt's mask as a binary vtkOrientedImageData on the volume's grid (for the editor effect)."""
        masks = self.predictMasks(volumeNode, cleanPrompts([prompt])[:1], roiNode, **options)
        if is_cancelled(options.get("cancel")):
            raise Cancelled("Inference cancelled.")
        return orientedImageFromMask(masks[0], ijkToRasArray(volumeNode))

    def fillSegment(self, editorLogic, prompt: str, roiNode=None, **options) -> None:
        """Set the Segment Editor's selected segment to the prompt's mask.

        The editor's editable area, editable intensity range and overwrite mode apply, as
        for any effect; the change is one editor undo step.
        """
        import slicer

        segmentationNode = editorLogic.GetSegmentationNode()
        segmentId = editorLogic.GetCurrentSegmentID()
        volumeNode = editorLogic.GetSourceVolumeNode()
        if segmentationNode is None or not segmentId or volumeNode is None:
            raise InputError("Select a segmentation, a source volume and a segment in the Segment Editor first.")
        labelmap = self.predictLabelmap(volumeNode, prompt, roiNode, **options)
        editorLogic.SaveStateForUndo()
        editorLogic.ModifySegmentByLabelmap(
            segmentationNode, segmentId, labelmap, slicer.vtkSlicerSegmentEditorLogic.ModificationModeSet, False, False
        )

    def segmentStyle(self, prompt: str) -> SegmentStyle:
        """Name, colour and terminology entry that a prompt's segment gets."""
        if self._terminology is None:
            self._terminology = PromptTerminology(self.terminologyLogic(), loadSynonyms(self._synonymsPath))
        return self._terminology.style(prompt)

    def terminologyLogic(self):
        if self._terminologyLogic is None:
            import slicer

            modules = getattr(slicer, "modules", None)
            terminologies = getattr(modules, "terminologies", None)
            self._terminologyLogic = terminologies.logic() if terminologies is not None else None
        return self._terminologyLogic

    # ------------------------------------------------------------------ caches
    def predictor(self, modelPath: str | Path | None = None, device: str = "auto", embeddingBank: str | Path | None = None):
        """The predictor for this model/device/bank, reused while they stay the same."""
        model = str(modelPath) if modelPath else DEMO_MODEL
        key = (model, str(device), str(embeddingBank) if embeddingBank else None)
        if key != self._predictorKey:
            self.releasePredictor()
            self._predictor = self.predictorFactory(*key)
            self._predictorKey = key
        return self._predictor

    def releasePredictor(self) -> None:
        """Drop the cached model (frees its GPU memory)."""
        self._predictor = None
        self._predictorKey = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def volumeFromNode(self, volumeNode):
        """The node's voxels as a VoxTellCore ``Volume``; reused while the node's image is unchanged."""
        from VoxTellCore.io import Volume

        ijkToRas = ijkToRasArray(volumeNode)
        imageData = volumeNode.GetImageData()
        key = (volumeNode.GetID(), imageData.GetMTime() if imageData else None, ijkToRas.tobytes())
        if key != self._volumeKey:
            self._volume = Volume(volumeArray(volumeNode).astype(np.float32, copy=False), ijkToRas)
            self._volumeKey = key
        return self._volume

    # ------------------------------------------------------------------ writing segments
    def applyMasks(self, volumeNode, masks: np.ndarray, requests: Sequence[SegmentRequest], segmentationNode=None):
        """Write each mask into the segment of its request's prompt (created when missing), as one undo step."""
        import slicer

        if segmentationNode is None:
            segmentationNode = self._newSegmentationNode(volumeNode)
        elif segmentationNode.GetDisplayNode() is None:
            segmentationNode.CreateDefaultDisplayNodes()
        segmentation = segmentationNode.GetSegmentation()
        labelmapName = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
        # Slicer < 5.4 calls the source representation "master".
        sourceRepresentation = getattr(segmentation, "GetSourceRepresentationName", None) or segmentation.GetMasterRepresentationName
        if segmentation.GetNumberOfSegments() and sourceRepresentation() != labelmapName:
            raise InputError(
                f"{segmentationNode.GetName()} stores its segments as {sourceRepresentation()}: "
                "pick a new output segmentation instead."
            )
        if not segmentationNode.GetNodeReference(slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()):
            segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        self._saveStateForUndo(segmentationNode)

        ijkToRas = ijkToRasArray(volumeNode)
        labelmaps = [orientedImageFromMask(mask, ijkToRas) for mask in masks]
        backup = slicer.vtkSegmentation()
        backup.DeepCopy(segmentation)
        wasModified = segmentationNode.StartModify()
        try:
            for request, labelmap in zip(requests, labelmaps):
                self._writeSegment(segmentationNode, request, labelmap)
        except Exception:
            segmentation.DeepCopy(backup)
            raise
        finally:
            segmentationNode.EndModify(wasModified)
        return segmentationNode

    @staticmethod
    def promptSegmentId(segmentation, prompt: str) -> str | None:
        """ID of the segment VoxTell made for this prompt, or None."""
        import vtk

        key = promptKey(prompt)
        for index in range(segmentation.GetNumberOfSegments()):
            segmentId = segmentation.GetNthSegmentID(index)
            tag = vtk.reference("")
            if segmentation.GetSegment(segmentId).GetTag(PROMPT_TAG, tag) and str(tag) == key:
                return segmentId
        return None

    def jumpToSegment(self, segmentationNode, segmentId: str) -> tuple[float, float, float] | None:
        """Centre every slice view on the segment; its centre (RAS), or None when it is empty."""
        import slicer

        center = segmentationNode.GetSegmentCenterRAS(segmentId)
        if center is None:
            return None
        slicer.vtkMRMLSliceNode.JumpAllSlices(segmentationNode.GetScene(), *center,
                                             slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return tuple(center)

    def _writeSegment(self, segmentationNode, request: SegmentRequest, labelmap) -> str:
        import slicer

        segmentation = segmentationNode.GetSegmentation()
        style = request.style
        segmentId = self.promptSegmentId(segmentation, request.prompt)
        if segmentId is None:
            segment = slicer.vtkSegment()
            segment.SetName(style.name)
            segment.SetNameAutoGenerated(False)
            segment.SetColor(*style.color)
            segment.SetColorAutoGenerated(bool(style.terminology))
            if style.terminology:
                segment.SetTerminology(style.terminology)
            segment.SetTag(PROMPT_TAG, promptKey(request.prompt))
            for name, value in request.tags:
                segment.SetTag(name, value)
            segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), labelmap)
            segmentId = segmentation.GenerateUniqueSegmentID(style.name)
            segmentation.AddSegment(segment, segmentId)
            return segmentId
        for name, value in request.tags:
            segmentation.GetSegment(segmentId).SetTag(name, value)
        # Its own layer, so that replacing its voxels cannot touch a segment sharing the labelmap.
        segmentation.SeparateSegmentLabelmap(segmentId)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if not logic.SetBinaryLabelmapToSegment(labelmap, segmentationNode, segmentId, logic.MODE_REPLACE, labelmap.GetExtent()):
            raise RuntimeError(f"Could not update segment {style.name}.")
        return segmentId

    def _newSegmentationNode(self, volumeNode):
        import slicer

        scene = volumeNode.GetScene() or slicer.mrmlScene
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(f"{volumeNode.GetName()} VoxTell"))
        node.CreateDefaultDisplayNodes()
        node.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
        node.SetAndObserveTransformNodeID(volumeNode.GetTransformNodeID())
        return node

    def _saveStateForUndo(self, segmentationNode) -> None:
        scene = segmentationNode.GetScene()
        if not self.undoEnabled or scene is None:
            return
        segmentationNode.SetUndoEnabled(True)
        if not scene.GetUndoFlag():
            scene.SetUndoOn()
        scene.SaveStateForUndo()
