"""VoxTellLogic: free-text prompts -> segments of a Slicer segmentation node.

Everything is computed before the segmentation is touched, so a cancelled or failed
run leaves it exactly as it was. Segments made by VoxTell carry a tag with their prompt:
running the prompt again replaces that segment's voxels, and segments without the tag
(the user's own) are never modified. Report findings are prompts too (``groundReport``):
their segments get a short name, the full finding text in a tag and a category colour.

The scene's undo is left alone (switching it on makes every later ``SaveStateForUndo`` in
Slicer copy the segmentations): each run keeps a backup of the segments it changed, and
``revertLastRun`` restores them. The Segment Editor effect goes through
``fillSelectedSegment``, which uses the editor's own masking and undo.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from VoxTellCore.errors import Cancelled, InputError
from VoxTellCore.findings import Finding
from VoxTellCore.progress import CancelCheck, Progress, is_cancelled, raise_if_cancelled
from VoxTellCore.terminology import PROMPT_TAG, prompt_key
from VoxTellSlicerLib.geometry import ijkToRasArray, roiBoundsRas, segmentationLabelmap, volumeArray
from VoxTellSlicerLib.options import DEMO_MODEL, OFFICIAL_MODEL, RunOptions
from VoxTellSlicerLib.report import (
    FINDING_CATEGORY_TAG,
    FINDING_TEXT_TAG,
    categoryColor,
    reportFindings,
    shortName,
    uniqueName,
)
from VoxTellSlicerLib.slicerCompat import setSegmentTerminology
from VoxTellSlicerLib.terminology import (
    PromptTerminology,
    SegmentStyle,
    findSynonymsFile,
    loadSynonyms,
    normalizePrompt,
)
from VoxTellSlicerLib.worker import NothingWritten, exclusiveRun

log = logging.getLogger(__name__)

PredictorFactory = Callable[[str, str, Optional[str]], object]
#: ``log(text)``: a status line for the user; may be called from the worker thread.
Log = Callable[[str], object]

MODULE_DIR = Path(__file__).resolve().parent.parent


def defaultPredictorFactory(model: str, device: str, embeddingBank: Optional[str]):
    from VoxTellCore.inference.predictor import VoxTellPredictor

    return VoxTellPredictor(model=model, device=device, embedding_bank=embeddingBank)


promptKey = prompt_key


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


class PredictorCache:
    """The last predictor built, reused while model, device and bank stay the same."""

    def __init__(self, factory: PredictorFactory) -> None:
        self.factory = factory
        self._predictor = None
        self._key: Optional[tuple] = None

    def get(self, key: tuple):
        if key != self._key:
            self.release()
            self._predictor = self.factory(*key)
            self._key = key
        return self._predictor

    def release(self) -> None:
        self._predictor = None
        self._key = None
        torch = sys.modules.get("torch")  # never imported here: remote mode runs without it
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


#: One loaded model for the whole process: the module's logic and the effect's share it
#: (``exclusiveRun`` keeps them from using it at the same time).
SHARED_PREDICTORS = PredictorCache(defaultPredictorFactory)


@contextmanager
def cancelOnSceneClose(scene) -> Iterator[threading.Event]:
    """An event that is set when ``scene`` starts closing (File > Close scene, module reload)."""
    closed = threading.Event()
    tag = scene.AddObserver(scene.StartCloseEvent, lambda caller, event: closed.set()) if scene is not None else None
    try:
        yield closed
    finally:
        if tag is not None:
            scene.RemoveObserver(tag)


@dataclass
class RunBackup:
    """What one run changed in one segmentation, to undo it: the segments it added, and a
    copy (metadata and voxels) of each segment it replaced, taken just before. Nothing else
    is copied, so its memory is bounded by the run's own segments."""

    segmentationNode: Any
    createdNode: bool
    added: List[str] = field(default_factory=list)
    replaced: Dict[str, Tuple[Any, Any]] = field(default_factory=dict)
    #: The segment IDs and a digest of each written segment's voxels right after the run.
    stateAfterRun: Optional[Tuple[Tuple[str, ...], Dict[str, str]]] = None

    def recordStateAfterRun(self) -> None:
        self.stateAfterRun = self._state()

    def _state(self) -> Tuple[Tuple[str, ...], Dict[str, str]]:
        import hashlib

        import slicer
        from vtk.util.numpy_support import vtk_to_numpy

        segmentation = self.segmentationNode.GetSegmentation()
        ids = tuple(segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments()))
        digests = {}
        for segmentId in [*self.added, *self.replaced]:
            if segmentId in ids:
                voxels = slicer.vtkOrientedImageData()
                self.segmentationNode.GetBinaryLabelmapRepresentation(segmentId, voxels)
                scalars = voxels.GetPointData().GetScalars()
                digest = hashlib.sha1(str(voxels.GetExtent()).encode())
                if scalars is not None:
                    digest.update(np.ascontiguousarray(vtk_to_numpy(scalars) != 0).tobytes())
                digests[segmentId] = digest.hexdigest()
        return ids, digests

    def changedSinceRun(self) -> bool:
        """True when segments were added, removed or edited in this segmentation after the run:
        reverting would then discard the user's work."""
        return self.stateAfterRun is not None and self._state() != self.stateAfterRun

    def rememberReplaced(self, segmentId: str) -> None:
        import slicer

        if segmentId in self.replaced or segmentId in self.added:
            return
        metadata = slicer.vtkSegment()
        metadata.DeepCopyMetadata(self.segmentationNode.GetSegmentation().GetSegment(segmentId))
        voxels = slicer.vtkOrientedImageData()
        self.segmentationNode.GetBinaryLabelmapRepresentation(segmentId, voxels)
        self.replaced[segmentId] = (metadata, voxels)

    def restore(self) -> None:
        """Put the segmentation back as it was before the run (user segments are not touched)."""
        import slicer

        node = self.segmentationNode
        scene = node.GetScene()
        if scene is None:
            raise InputError("The segmentation of the last run was deleted: there is nothing to revert.")
        if self.createdNode:
            helpers = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())] + [node.GetStorageNode()]
            for helper in [node] + helpers:
                if helper is not None:
                    scene.RemoveNode(helper)
            return
        segmentation = node.GetSegmentation()
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        wasModified = node.StartModify()
        try:
            for segmentId in self.added:
                if segmentation.GetSegment(segmentId) is not None:
                    segmentation.RemoveSegment(segmentId)
            for segmentId, (metadata, voxels) in self.replaced.items():
                segment = segmentation.GetSegment(segmentId)
                if segment is None:  # deleted by the user since the run
                    continue
                labelValue = segment.GetLabelValue()
                segment.DeepCopyMetadata(metadata)
                segment.SetLabelValue(labelValue)
                current = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
                extent = _unionExtent(voxels.GetExtent(), current.GetExtent() if current is not None else None)
                if not logic.SetBinaryLabelmapToSegment(voxels, node, segmentId, logic.MODE_REPLACE, extent):
                    raise RuntimeError(f"Could not restore segment {segment.GetName()}.")
        finally:
            node.EndModify(wasModified)


def _unionExtent(first, second) -> list:
    if second is None or second[1] < second[0]:
        return list(first)
    if first[1] < first[0]:
        return list(second)
    return [min(first[i], second[i]) if i % 2 == 0 else max(first[i], second[i]) for i in range(6)]


class VoxTellLogic:
    """Runs VoxTell on volume nodes and writes the masks into segmentation nodes.

    ``predictor_factory(model, device, embeddingBank)`` builds the predictor; by default the
    process-wide ``SHARED_PREDICTORS`` (one loaded model for the module and the effect). The
    last volume's voxels are kept, so a second run on the same image starts at once.
    ``runCompute(compute)`` runs the model work (no MRML): inline by default; the GUI sets a
    ``worker.runInWorker`` runner so that Slicer stays responsive.
    """

    def __init__(
        self,
        predictor_factory: Optional[PredictorFactory] = None,
        terminologyLogic=None,
        synonymsPath: Optional[str | Path] = None,
    ) -> None:
        self._predictors = SHARED_PREDICTORS if predictor_factory is None else PredictorCache(predictor_factory)
        self._terminologyLogic = terminologyLogic
        self._synonymsPath = Path(synonymsPath) if synonymsPath else findSynonymsFile(MODULE_DIR)
        self._terminology: Optional[PromptTerminology] = None
        self._volumeKey: Optional[tuple] = None
        self._remote: Optional[tuple] = None  # ((url, key), RemotePredictor)
        self._volume = None
        self.runCompute: Callable[[Callable[[], Any]], Any] = lambda compute: compute()
        #: The backup of the last run of ``segment``/``groundReport`` (see ``revertLastRun``).
        self.lastRun: Optional[RunBackup] = None

    # ------------------------------------------------------------------ public API
    def segment(
        self,
        volumeNode,
        prompts: str | Sequence[str],
        segmentationNode=None,
        options: Optional[RunOptions] = None,
        progress: Optional[Progress] = None,
        cancel: CancelCheck = None,
        log: Optional[Log] = None,
    ):
        """Segment ``volumeNode`` with one segment per prompt; returns the segmentation node.

        A new segmentation node is created when ``segmentationNode`` is None. Raises
        ``Cancelled`` (segmentation untouched) when ``cancel`` fires or the scene closes,
        ``InputError`` or ``ModelError`` for problems the user can fix, ``RunInProgress``
        while another run (module or effect) is going.
        """
        requests = [SegmentRequest(prompt, self.segmentStyle(prompt)) for prompt in cleanPrompts(prompts)]
        return self.segmentRequests(volumeNode, requests, segmentationNode, options, progress, cancel, log)

    def groundReport(
        self,
        volumeNode,
        findings: Iterable[Finding | Mapping | str],
        segmentationNode=None,
        options: Optional[RunOptions] = None,
        progress: Optional[Progress] = None,
        cancel: CancelCheck = None,
        log: Optional[Log] = None,
    ):
        """Segment each report finding (``Finding``, ``{"text", "category"}`` row or text).

        Each finding gets its own segment, named with a short form of its text, tagged
        with the full text (``VoxTell.FindingText``) and category (``VoxTell.FindingCategory``)
        and coloured by category. Reruns, cancel, failures and revert behave as in ``segment``.
        """
        requests = self.findingRequests(findings, segmentationNode)
        return self.segmentRequests(volumeNode, requests, segmentationNode, options, progress, cancel, log)

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
        options: Optional[RunOptions] = None,
        progress: Optional[Progress] = None,
        cancel: CancelCheck = None,
        log: Optional[Log] = None,
    ):
        """Predict every request's prompt, then write all segments at once (see ``applyMasks``)."""
        masks = self.predictMasks(volumeNode, [request.prompt for request in requests], options, progress, cancel, log)
        return self.applyMasks(volumeNode, masks, requests, segmentationNode)

    def predictMasks(
        self,
        volumeNode,
        prompts: Sequence[str],
        options: Optional[RunOptions] = None,
        progress: Optional[Progress] = None,
        cancel: CancelCheck = None,
        log: Optional[Log] = None,
    ) -> np.ndarray:
        """uint8 masks (N, K, J, I) on the volume node's own voxel grid.

        Holds the process-wide run (``exclusiveRun``); the model work goes through
        ``runCompute``. Closing the scene meanwhile cancels the run.
        """
        options = options or RunOptions()
        if volumeNode is None:
            raise InputError("No input volume: select the image to segment.")
        volume = self.volumeFromNode(volumeNode)
        roi = roiBoundsRas(options.roiNode, volumeNode)
        with exclusiveRun(), cancelOnSceneClose(volumeNode.GetScene()) as sceneClosed:
            def stop() -> bool:
                return sceneClosed.is_set() or is_cancelled(cancel)

            def compute():
                if options.serverUrl:  # no model, download or torch here: the server has them
                    predictor = self.remotePredictor(options.serverUrl, options.serverKey, log)
                    if log is not None:
                        log(f"Segmenting on {options.modelLabel()} ({predictor.description}, {predictor.device})...")
                    return predictor.predict_volume(volume, list(prompts), roi_ras=roi, progress=progress, cancel=stop)
                model, bank = self.resolveModel(options, progress, stop, log)
                predictor = self.predictor(model, options.device, bank)
                predictor.precision = options.precisionOn(predictor.device.type)  # kept features are keyed by it
                if log is not None:
                    log(f"Segmenting with {options.modelLabel()} on {predictor.device}...")
                return predictor.predict_volume(volume, list(prompts), roi_ras=roi, progress=progress, cancel=stop)

            try:
                masks = np.asarray(self.runCompute(compute), dtype=np.uint8)
            except Cancelled:
                if sceneClosed.is_set():
                    raise NothingWritten("The scene was closed during the run: nothing was written.") from None
                raise
            if sceneClosed.is_set() or volumeNode.GetScene() is None:
                raise NothingWritten("The scene was closed (or the volume deleted) during the run: nothing was written.")
        raise_if_cancelled(cancel)
        expected = (len(prompts), *volume.array.shape)
        if masks.shape != expected:
            raise RuntimeError(f"The predictor returned masks of shape {masks.shape}, expected {expected}.")
        return masks

    def prepareTextEncoder(
        self,
        prompts: Sequence[str],
        options: Optional[RunOptions],
        confirm: Callable[[str], bool],
        progress: Optional[Progress] = None,
        cancel: CancelCheck = None,
        log: Optional[Log] = None,
    ) -> None:
        """Before a run from the GUI: when a prompt is in no embedding bank and the text encoder
        (Qwen3-Embedding-4B, about 8 GB) is not on disk yet, ask ``confirm(question)`` (on the
        caller's thread; the question gives the size and the memory it needs) and download it
        with progress and Cancel through ``runCompute``. Raises ``Cancelled`` when declined,
        ``ModelError`` (before asking) when it cannot fit in memory."""
        from VoxTellSlicerLib import officialModel

        options = options or RunOptions()
        if options.serverUrl:
            return  # the server embeds the prompts

        def question() -> Optional[Tuple[str, str, str]]:
            model, bank = self.resolveModel(options, progress, cancel, log)
            predictor = self.predictor(model, options.device, bank)
            embedder = predictor.embedder
            if embedder.encoder is None or not embedder.prompts_needing_encoder(list(prompts)):
                return None
            encoder, device = embedder.encoder.name_or_path, str(predictor.device)
            text = officialModel.textEncoderDownload(encoder, device)
            return None if text is None else (encoder, device, text)

        with exclusiveRun():
            asked = self.runCompute(question)
        if asked is None:
            return
        encoder, device, text = asked
        if not confirm(text):
            raise NothingWritten("Not run: the text encoder was not downloaded (prompts from the embedding bank need none).")
        if log is not None:
            log(f"Downloading the text encoder {encoder}...")
        with exclusiveRun():
            self.runCompute(lambda: officialModel.downloadTextEncoder(encoder, device, progress, cancel))

    def fillSelectedSegment(
        self,
        editor,
        prompt: str,
        options: Optional[RunOptions] = None,
        progress: Optional[Progress] = None,
        cancel: CancelCheck = None,
        log: Optional[Log] = None,
    ) -> None:
        """Set the Segment Editor's selected segment to the prompt's mask (the effect's Apply).

        ``editor``: the scripted effect (``scriptedEffect``) or a ``slicerCompat.SegmentEditorLogicEditor``.
        The mask is moved into the segmentation's frame (transforms apply) and onto the editor's
        modifier geometry, then goes through the editor's own modification, so its editable
        area, editable intensity range and overwrite mode apply; the change is one editor undo step.
        """
        editorNode = editor.parameterSetNode()
        segmentationNode = editorNode.GetSegmentationNode() if editorNode is not None else None
        segmentId = editorNode.GetSelectedSegmentID() if editorNode is not None else None
        # Slicer < 5.4 calls the source volume "master".
        getSourceVolume = getattr(editorNode, "GetSourceVolumeNode", None) or getattr(editorNode, "GetMasterVolumeNode", None)
        volumeNode = getSourceVolume() if getSourceVolume is not None else None
        if segmentationNode is None or not segmentId or volumeNode is None:
            raise InputError("Select a segmentation, a source volume and a segment in the Segment Editor first.")
        mask = self.predictMasks(volumeNode, cleanPrompts([prompt])[:1], options, progress, cancel, log)[0]
        if (segmentationNode.GetScene() is None or editorNode.GetSegmentationNode() is not segmentationNode
                or editorNode.GetSelectedSegmentID() != segmentId):
            raise NothingWritten("The segmentation or the selected segment changed during the run: nothing was written.")
        import slicer

        modifier = slicer.vtkOrientedImageData()
        slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
            segmentationLabelmap(mask, volumeNode, segmentationNode), editor.defaultModifierLabelmap(), modifier, False)
        editor.saveStateForUndo()
        editor.modifySelectedSegmentByLabelmap(modifier, editor.ModificationModeSet)

    def revertLastRun(self) -> str:
        """Undo the last ``segment``/``groundReport`` run: its new segments are removed (its new
        segmentation node too) and the segments it replaced get their voxels, name, colour and
        tags back. Returns what was done; raises ``InputError`` when there is nothing to revert."""
        backup = self.lastRun
        if backup is None:
            raise InputError("There is no VoxTell run to revert.")
        if backup.segmentationNode.GetScene() is not None and backup.changedSinceRun():
            raise InputError(
                f"{backup.segmentationNode.GetName()} was edited after the last VoxTell run (segments added, "
                "removed or painted): reverting would discard those edits, so nothing was changed. Undo them "
                "in the Segment Editor (Ctrl+Z) or delete the run's segments by hand."
            )
        backup.restore()
        self.lastRun = None
        if backup.createdNode:
            return "Reverted the last run: its segmentation was removed."
        return (f"Reverted the last run: {len(backup.added)} segment(s) removed, "
                f"{len(backup.replaced)} restored.")

    def canRevert(self) -> bool:
        return self.lastRun is not None and self.lastRun.segmentationNode.GetScene() is not None

    def forgetLastRun(self) -> None:
        """Drop the backup (e.g. when the scene closes)."""
        self.lastRun = None

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

    # ------------------------------------------------------------------ model and caches
    def resolveModel(self, options: RunOptions, progress: Optional[Progress] = None, cancel: CancelCheck = None,
                     log: Optional[Log] = None) -> Tuple[str, Optional[str]]:
        """(model folder or "demo", embedding bank or None). The official model is taken from
        the local cache without asking the network, else downloaded (call this off the GUI thread)."""
        if options.model != OFFICIAL_MODEL:
            return options.model or DEMO_MODEL, options.embeddingBank
        from VoxTellSlicerLib import officialModel

        cached = officialModel.cachedOfficialModel()
        if cached is None:
            if log is not None:
                log("Downloading the official VoxTell v1.1 model (once)...")
            cached = officialModel.downloadOfficialModel(progress=progress, cancel=cancel)
        modelDir, bank = cached
        return str(modelDir), options.embeddingBank or (str(bank) if bank else None)

    def predictor(self, model: Optional[str | Path] = None, device: str = "auto",
                  embeddingBank: Optional[str | Path] = None):
        """The predictor for this model folder (or "demo"), device and bank, reused while they stay the same."""
        return self._predictors.get((str(model) if model else DEMO_MODEL, str(device),
                                     str(embeddingBank) if embeddingBank else None))

    def remotePredictor(self, url: str, apiKey: Optional[str], log: Optional[Log] = None):
        """The client of the VoxTell server at ``url`` (torch-free), reused while URL and key stay the same;
        ``log`` shows the queue position while a job waits."""
        try:
            from VoxTellCore.remote.client import RemotePredictor
        except ImportError as error:
            raise InputError(f"Computing on a VoxTell server needs the Python package {error.name} in Slicer: "
                             f"run slicer.util.pip_install('{error.name}') in the Python console.") from None

        if self._remote is None or self._remote[0] != (url, apiKey):
            self._remote = ((url, apiKey), RemotePredictor(url, apiKey))
        predictor = self._remote[1]
        predictor.notify = log
        return predictor

    def testConnection(self, url: str, apiKey: Optional[str]) -> str:
        """One line naming the server's model, devices and version; ``ServerError``/``InputError`` saying why not."""
        from VoxTellCore.remote.client import VoxTellClient

        info = VoxTellClient(url, apiKey, timeout=15).version()
        return (f"Connected: {info.get('server')} {info.get('version')}, model {info.get('model')}, "
                f"on {', '.join(info.get('devices') or ['?'])} (protocol {info.get('protocol')}).")

    def releasePredictor(self) -> None:
        """Drop the cached model (frees its GPU memory)."""
        self._predictors.release()

    def volumeFromNode(self, volumeNode):
        """The node's voxels as a VoxTellCore ``Volume``; reused while the node's image is unchanged."""
        from VoxTellCore.io.volume import Volume  # not VoxTellCore.io: its readers need packages Slicer lacks

        ijkToRas = ijkToRasArray(volumeNode)
        imageData = volumeNode.GetImageData()
        key = (volumeNode.GetID(), imageData.GetMTime() if imageData else None, ijkToRas.tobytes())
        if key != self._volumeKey:
            self._volume = Volume(volumeArray(volumeNode).astype(np.float32, copy=False), ijkToRas)
            self._volumeKey = key
        return self._volume

    # ------------------------------------------------------------------ writing segments
    def applyMasks(self, volumeNode, masks: np.ndarray, requests: Sequence[SegmentRequest], segmentationNode=None):
        """Write each mask into the segment of its request's prompt (created when missing).

        All or nothing: a failure restores what was written. The run's backup becomes
        ``lastRun`` (for ``revertLastRun``); the scene's undo is not used.
        """
        import slicer

        if segmentationNode is not None and segmentationNode.GetScene() is None:
            raise NothingWritten("The output segmentation was deleted during the run: nothing was written.")
        createdNode = segmentationNode is None
        if createdNode:
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

        labelmaps = [segmentationLabelmap(mask, volumeNode, segmentationNode) for mask in masks]
        backup = RunBackup(segmentationNode, createdNode)
        wasModified = segmentationNode.StartModify()
        try:
            for request, labelmap in zip(requests, labelmaps):
                self._writeSegment(segmentationNode, request, labelmap, backup)
        except Exception:
            segmentationNode.EndModify(wasModified)
            backup.restore()
            raise
        segmentationNode.EndModify(wasModified)
        backup.recordStateAfterRun()
        self.lastRun = backup
        return segmentationNode

    @staticmethod
    def promptSegmentId(segmentation, prompt: str) -> Optional[str]:
        """ID of the segment VoxTell made for this prompt, or None."""
        import vtk

        key = promptKey(prompt)
        for index in range(segmentation.GetNumberOfSegments()):
            segmentId = segmentation.GetNthSegmentID(index)
            tag = vtk.reference("")
            if segmentation.GetSegment(segmentId).GetTag(PROMPT_TAG, tag) and str(tag) == key:
                return segmentId
        return None

    def jumpToSegment(self, segmentationNode, segmentId: str) -> Optional[Tuple[float, float, float]]:
        """Centre every slice view on the segment; its centre (RAS), or None when it is empty."""
        import slicer

        center = segmentationNode.GetSegmentCenterRAS(segmentId)
        if center is None:
            return None
        slicer.vtkMRMLSliceNode.JumpAllSlices(segmentationNode.GetScene(), *center,
                                             slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return tuple(center)

    def _writeSegment(self, segmentationNode, request: SegmentRequest, labelmap, backup: RunBackup) -> str:
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
                setSegmentTerminology(segment, style.terminology)
            segment.SetTag(PROMPT_TAG, promptKey(request.prompt))
            for name, value in request.tags:
                segment.SetTag(name, value)
            segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), labelmap)
            segmentId = segmentation.GenerateUniqueSegmentID(style.name)
            segmentation.AddSegment(segment, segmentId)
            backup.added.append(segmentId)
            return segmentId
        backup.rememberReplaced(segmentId)
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
