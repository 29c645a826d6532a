"""VoxTell: free-text promptable 3D segmentation in 3D Slicer.

Widget <-> parameter node <-> logic, as in Slicer's scripted-module template. All the
computation is in VoxTellSlicerLib.VoxTellLogic, which has no Qt and is tested headless;
this file holds the GUI only. Qt is imported inside the methods that need it.
"""

import logging
import os
import sys
import threading
from typing import Annotated, Optional

import slicer
import vtk
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
# Developer mode: VoxTellCore sits next to this folder in a source checkout (in the
# installed extension it is next to this file).
_CHECKOUT_ROOT = os.path.dirname(MODULE_DIR)
if os.path.isdir(os.path.join(_CHECKOUT_ROOT, "VoxTellCore")) and _CHECKOUT_ROOT not in sys.path:
    sys.path.append(_CHECKOUT_ROOT)

from VoxTellSlicerLib import VoxTellLogic, cleanPrompts, extractReportFindings  # noqa: E402

DEMO_DESCRIPTION = "demo model (synthetic training data, not for clinical images)"
MIN_GPU_MEMORY_GIB = 8.0
DEVICES = [("auto", "Auto (GPU if available)"), ("cuda", "GPU (CUDA)"), ("cpu", "CPU")]
MODEL_SOURCES = [
    ("official", "Official VoxTell v1.1 (downloaded once, about 1.8 GB)"),
    ("folder", "Local model folder"),
    ("demo", "Built-in demo model"),
]


#
# VoxTellSlicer
#


class VoxTellSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "VoxTell"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["VoxTell Slicer extension contributors"]
        self.parent.helpText = f"""
Segment structures in a 3D image by describing them in free text, one prompt per line
(e.g. <i>liver</i>, <i>left kidney</i>, <i>lesion in the right upper lobe</i>). Each prompt
becomes a segment named after it; structures known to Slicer's terminology get its colour.
Running a prompt again updates its segment; your own segments are never changed.
Ctrl+Enter in the prompt box runs. An optional ROI limits the result to a box.
<p>Model: the official VoxTell v1.1 (downloaded on first use), a local model folder, or the
built-in <b>{DEMO_DESCRIPTION}</b>: the demo model is only for trying the module.
<p><b>Report</b>: paste a radiology report, extract its findings, tick and edit them, and
ground each one as a segment coloured by finding category; click a finding to jump to it.
<p>A "VoxTell" effect in the Segment Editor fills the selected segment from a prompt,
honouring the editor's masking settings.
See <a href="https://github.com/voxtell/VoxTellSlicer/blob/main/docs/slicer.md">the documentation</a>.
"""
        self.parent.acknowledgementText = """
VoxTell: free-text promptable universal 3D medical image segmentation (Rokuss et al., 2025).
This module runs the released VoxTell model; please cite the VoxTell paper when you use it.
"""
        slicer.app.connect("startupCompleted()", self.registerSegmentEditorEffect)

    def registerSegmentEditorEffect(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        effect = effects.qSlicerSegmentEditorScriptedEffect(None)
        effectPath = os.path.join(MODULE_DIR, "SegmentEditorVoxTellLib", "SegmentEditorEffect.py")
        effect.setPythonSource(effectPath.replace("\\", "/"))
        effect.self().register()


#
# Parameter node
#


@parameterNodeWrapper
class VoxTellSlicerParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    roi: vtkMRMLMarkupsROINode
    prompts: str = ""
    report: str = ""
    device: Annotated[str, Choice([value for value, _ in DEVICES])] = "auto"
    modelSource: Annotated[str, Choice([value for value, _ in MODEL_SOURCES])] = "official"
    modelFolder: str = ""


#
# VoxTellSlicerWidget
#


class VoxTellSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._cancel = None
        self._progress = (0, 0)  # (done, total) written by the worker thread, shown by the GUI thread
        self.activeProgressBar = None  # the bar runInWorkerThread refreshes; None: the module's own

    def setup(self) -> None:
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/VoxTellSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = VoxTellSlicerLogic()
        self.logic.runCompute = self.runInWorkerThread

        for value, text in DEVICES:
            self.ui.deviceComboBox.addItem(text, value)
        for value, text in MODEL_SOURCES:
            self.ui.modelSourceComboBox.addItem(text, value)
        self.ui.progressBar.visible = False
        self.ui.cancelButton.enabled = False

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.promptsTextEdit.connect("textChanged()", self.onPromptsEdited)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.onDeviceChanged)
        self.ui.modelSourceComboBox.connect("currentIndexChanged(int)", self.onModelSourceChanged)
        self.ui.modelFolderPathLineEdit.connect("currentPathChanged(QString)", self.onModelFolderChanged)
        self.ui.runButton.connect("clicked(bool)", self.onRunButton)
        self.ui.reportTextEdit.connect("textChanged()", self.onReportEdited)
        self.ui.extractFindingsButton.connect("clicked(bool)", self.onExtractFindings)
        self.ui.groundFindingsButton.connect("clicked(bool)", self.onGroundFindings)
        self.ui.findingsTable.connect("itemChanged(QTableWidgetItem*)", self.onFindingEdited)
        self.ui.findingsTable.connect("cellClicked(int,int)", self.onFindingClicked)
        self.ui.findingsTable.horizontalHeader().setSectionResizeMode(0, qt.QHeaderView.Stretch)
        self.ui.findingsTable.horizontalHeader().setSectionResizeMode(1, qt.QHeaderView.ResizeToContents)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = qt.QShortcut(qt.QKeySequence(keys), self.ui.promptsTextEdit)
            shortcut.setContext(qt.Qt.WidgetWithChildrenShortcut)
            shortcut.connect("activated()", self.onRunButton)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.updateDeviceWarning()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # ------------------------------------------------------------------ parameter node
    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode: Optional[VoxTellSlicerParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Node selectors are bound through their SlicerParameterName property in the .ui.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
            self.updateGUIFromParameterNode()

    def updateGUIFromParameterNode(self, caller=None, event=None) -> None:
        node = self._parameterNode
        if node is None:
            return
        for textEdit, text in ((self.ui.promptsTextEdit, node.prompts), (self.ui.reportTextEdit, node.report)):
            if textEdit.toPlainText() != text:
                wasBlocked = textEdit.blockSignals(True)
                textEdit.setPlainText(text)
                textEdit.blockSignals(wasBlocked)
        for comboBox, value in ((self.ui.deviceComboBox, node.device), (self.ui.modelSourceComboBox, node.modelSource)):
            wasBlocked = comboBox.blockSignals(True)
            comboBox.currentIndex = max(comboBox.findData(value), 0)
            comboBox.blockSignals(wasBlocked)
        if self.ui.modelFolderPathLineEdit.currentPath != node.modelFolder:
            self.ui.modelFolderPathLineEdit.currentPath = node.modelFolder
        self.ui.modelFolderPathLineEdit.visible = node.modelSource == "folder"
        self.ui.modelFolderLabel.visible = node.modelSource == "folder"
        self.ui.modelInfoLabel.text = {
            "official": "VoxTell v1.1 from the Hugging Face Hub; cached after the first download.",
            "folder": "A folder with plans.json and fold_0/ (e.g. the official model copied for offline use).",
            "demo": f"Built-in {DEMO_DESCRIPTION}.",
        }[node.modelSource]
        if node.outputSegmentation is None and node.inputVolume is not None:
            self.ui.outputSegmentationSelector.baseName = f"{node.inputVolume.GetName()} VoxTell"
        self.updateRunButton()

    def updateRunButton(self) -> None:
        node = self._parameterNode
        running = self._cancel is not None
        problem = None
        if node is None or node.inputVolume is None:
            problem = "Select an input volume."
        elif node.modelSource == "folder" and not node.modelFolder:
            problem = "Choose the model folder."
        promptsProblem = problem or (None if node.prompts.strip() else "Type at least one prompt (one per line).")
        self.ui.runButton.enabled = promptsProblem is None and not running
        self.ui.runButton.toolTip = promptsProblem or "Segment every prompt (Ctrl+Enter in the prompt box)."
        findingsProblem = problem or (None if self.checkedFindings() else "Extract the findings and tick at least one.")
        self.ui.groundFindingsButton.enabled = findingsProblem is None and not running
        self.ui.groundFindingsButton.toolTip = findingsProblem or "Segment every ticked finding, coloured by category."
        self.ui.extractFindingsButton.enabled = bool(node and node.report.strip()) and not running
        self.ui.cancelButton.enabled = running

    def onPromptsEdited(self) -> None:
        if self._parameterNode:
            self._parameterNode.prompts = self.ui.promptsTextEdit.toPlainText()

    def onReportEdited(self) -> None:
        if self._parameterNode:
            self._parameterNode.report = self.ui.reportTextEdit.toPlainText()

    def onDeviceChanged(self, index: int) -> None:
        if self._parameterNode:
            self._parameterNode.device = self.ui.deviceComboBox.itemData(index)
        self.updateDeviceWarning()

    def onModelSourceChanged(self, index: int) -> None:
        if self._parameterNode:
            self._parameterNode.modelSource = self.ui.modelSourceComboBox.itemData(index)

    def onModelFolderChanged(self, path: str) -> None:
        if self._parameterNode:
            self._parameterNode.modelFolder = path

    def updateDeviceWarning(self) -> None:
        from VoxTellSlicerLib.dependencies import cudaDevice

        device = self._parameterNode.device if self._parameterNode else "auto"
        warning = ""
        if device != "cpu":
            try:
                gpu = cudaDevice()
            except Exception as error:  # a broken CUDA setup should not break the module
                gpu, warning = None, f"PyTorch cannot query the GPU ({error}); VoxTell will use the CPU."
            if gpu is None and device == "cuda" and not warning:
                warning = ("PyTorch sees no CUDA GPU: install a CUDA build of torch (see Help) or choose CPU.")
            elif gpu is not None and gpu[1] < MIN_GPU_MEMORY_GIB:
                warning = (f"{gpu[0]} has {gpu[1]:.1f} GB of memory; VoxTell needs about {MIN_GPU_MEMORY_GIB:.0f} GB. "
                           "If it runs out, VoxTell retries on the CPU (much slower). Choose CPU to skip the GPU.")
        self.ui.deviceWarningLabel.text = warning
        self.ui.deviceWarningLabel.visible = bool(warning)

    # ------------------------------------------------------------------ running
    def setStatus(self, text: str) -> None:
        self.ui.statusLabel.text = text
        slicer.app.processEvents()

    def onProgress(self, done: int, total: int) -> None:
        self.ui.progressBar.maximum = total
        self.ui.progressBar.value = done
        slicer.app.processEvents()  # keeps the GUI alive and lets Cancel through

    def recordProgress(self, done: int, total: int) -> None:
        """Progress callback for the worker thread: Qt widgets are only touched by the GUI thread."""
        self._progress = (done, total)

    def runInWorkerThread(self, compute):
        """Run ``compute()`` (model loading and inference, no MRML access) in a worker thread while
        the GUI keeps repainting and Cancel stays clickable; PyTorch releases the GIL while it works."""
        import qt

        outcome = {}

        def target():
            try:
                outcome["result"] = compute()
            except BaseException as error:  # re-raised in the GUI thread below
                outcome["error"] = error

        self._progress = (0, 0)
        worker = threading.Thread(target=target, name="VoxTell inference", daemon=True)
        worker.start()
        bar = self.activeProgressBar or self.ui.progressBar
        while worker.is_alive():
            done, total = self._progress
            if total:
                bar.maximum, bar.value = total, done
            slicer.app.processEvents(qt.QEventLoop.AllEvents, 50)
            worker.join(0.05)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def onDownloadProgress(self, done: int, total: int) -> None:
        self.ui.statusLabel.text = f"Downloading VoxTell v1.1: {done / 2**20:.0f} MB" + (
            f" of {total / 2**20:.0f} MB" if total else "")
        self.onProgress(min(done, total), total)

    def onCancelButton(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.setStatus("Cancelling...")

    def ensureDependencies(self) -> bool:
        from VoxTellSlicerLib.dependencies import DependencyError, setupDependencies

        try:
            with slicer.util.WaitCursor():
                installed = setupDependencies(log=self.setStatus)
        except DependencyError as error:
            slicer.util.errorDisplay(str(error), windowTitle="VoxTell setup")
            self.setStatus(f"Setup failed at: {error.step}")
            return False
        if installed:
            self.setStatus(f"Installed {', '.join(installed)}.")
        return True

    def runOptions(self, progress=None, cancel=None) -> Optional[dict]:
        """Model, device and embedding bank for a run (installs dependencies and downloads the
        official model first when needed); None when setup failed. Shared with the editor effect."""
        if not self.ensureDependencies():
            return None
        node = self._parameterNode or self.logic.getParameterNode()
        options = {"device": node.device, "modelPath": None, "embeddingBank": None}
        if node.modelSource == "demo":
            options["modelPath"] = "demo"
        elif node.modelSource == "folder":
            options["modelPath"] = node.modelFolder
        else:
            from VoxTellSlicerLib.officialModel import downloadOfficialModel

            self.ui.progressBar.visible = True
            modelDir, bank = downloadOfficialModel(progress=progress or self.onDownloadProgress, cancel=cancel)
            options["modelPath"], options["embeddingBank"] = str(modelDir), str(bank) if bank else None
        return options

    def setRunning(self, running: bool) -> None:
        self._cancel = threading.Event() if running else None
        sections = (self.ui.inputsCollapsibleButton, self.ui.reportCollapsibleButton, self.ui.advancedCollapsibleButton)
        for widget in sections:
            widget.enabled = not running
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        self.updateRunButton()

    def runWithProgress(self, startText: str, work) -> None:
        """Run ``work(options)`` (returns the status text) with the shared progress bar, Cancel
        button and error reporting; a cancelled or failed run leaves the segmentation as it was."""
        from VoxTellCore.errors import Cancelled, VoxTellError

        self.setRunning(True)
        try:
            options = self.runOptions(cancel=self._cancel)
            if options is None:
                return
            self.setStatus(startText)
            self.setStatus(work(options))
        except Cancelled:
            self.setStatus("Cancelled: the segmentation is unchanged.")
        except VoxTellError as error:
            self.setStatus("Failed.")
            slicer.util.errorDisplay(str(error), windowTitle="VoxTell")
        except Exception as error:
            import traceback

            logging.exception("VoxTell failed")
            self.setStatus("Failed.")
            slicer.util.errorDisplay(f"VoxTell failed: {error}", windowTitle="VoxTell", detailedText=traceback.format_exc())
        finally:
            self.setRunning(False)

    def showSegmentation(self, segmentation) -> None:
        self._parameterNode.outputSegmentation = segmentation
        segmentation.GetDisplayNode().SetVisibility(True)

    def onRunButton(self) -> None:
        node = self._parameterNode
        if self._cancel is not None or not self.ui.runButton.enabled:
            return

        def work(options) -> str:
            segmentation = self.logic.segment(
                node.inputVolume, node.prompts, segmentationNode=node.outputSegmentation, roiNode=node.roi,
                progress=self.recordProgress, cancel=self._cancel, **options,
            )
            self.showSegmentation(segmentation)
            return f"Done: {len(cleanPrompts(node.prompts))} prompt(s). Edit > Undo reverts this run."

        self.runWithProgress("Segmenting...", work)

    # ------------------------------------------------------------------ report
    FINDING_COLUMN, CATEGORY_COLUMN = 0, 1

    def onExtractFindings(self) -> None:
        import qt

        rows = extractReportFindings(self.ui.reportTextEdit.toPlainText())
        table = self.ui.findingsTable
        wasBlocked = table.blockSignals(True)
        table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            finding = qt.QTableWidgetItem(row["text"])
            finding.setFlags(
                qt.Qt.ItemIsEnabled | qt.Qt.ItemIsSelectable | qt.Qt.ItemIsEditable | qt.Qt.ItemIsUserCheckable)
            finding.setCheckState(qt.Qt.Checked if row["selected"] else qt.Qt.Unchecked)
            finding.setData(qt.Qt.UserRole, row["text"])  # the text the category was found for
            negated = "Negated or normal statement. " if row["negated"] else ""
            finding.setToolTip(f"{negated}From: {row['sourceSentence']}")
            category = qt.QTableWidgetItem(row["category"])
            category.setFlags(qt.Qt.ItemIsEnabled | qt.Qt.ItemIsSelectable)
            table.setItem(index, self.FINDING_COLUMN, finding)
            table.setItem(index, self.CATEGORY_COLUMN, category)
        table.blockSignals(wasBlocked)
        positive = sum(row["selected"] for row in rows)
        self.setStatus(f"{positive} finding(s) ticked, {len(rows) - positive} negated or normal statement(s) unticked."
                       if rows else "No finding found in the report (it reads the Findings and Impression sections).")
        self.updateRunButton()

    def onFindingEdited(self, item) -> None:
        """An edited finding is re-categorised from its new text; ticking a row updates the buttons."""
        import qt

        from VoxTellCore.findings import categorize

        if item.column() == self.FINDING_COLUMN and item.text() != item.data(qt.Qt.UserRole):
            item.setData(qt.Qt.UserRole, item.text())
            self.ui.findingsTable.item(item.row(), self.CATEGORY_COLUMN).setText(categorize(item.text())[0])
        self.updateRunButton()

    def findingRows(self) -> list[dict]:
        import qt

        table = self.ui.findingsTable
        return [
            {"text": table.item(row, self.FINDING_COLUMN).text(),
             "category": table.item(row, self.CATEGORY_COLUMN).text(),
             "selected": table.item(row, self.FINDING_COLUMN).checkState() == qt.Qt.Checked}
            for row in range(table.rowCount)
        ]

    def checkedFindings(self) -> list[dict]:
        return [row for row in self.findingRows() if row["selected"] and row["text"].strip()]

    def onGroundFindings(self) -> None:
        node = self._parameterNode
        findings = self.checkedFindings()
        if self._cancel is not None or not self.ui.groundFindingsButton.enabled:
            return

        def work(options) -> str:
            segmentation = self.logic.groundReport(
                node.inputVolume, findings, segmentationNode=node.outputSegmentation, roiNode=node.roi,
                progress=self.recordProgress, cancel=self._cancel, **options,
            )
            self.showSegmentation(segmentation)
            return (f"Done: {len(findings)} finding(s) grounded. Click a finding to show it; "
                    "Edit > Undo reverts this run.")

        self.runWithProgress("Grounding findings...", work)

    def onFindingClicked(self, row: int, column: int) -> None:
        """Centre the slice views on the clicked finding's segment."""
        segmentation = self._parameterNode.outputSegmentation if self._parameterNode else None
        text = self.ui.findingsTable.item(row, self.FINDING_COLUMN).text()
        segmentId = self.logic.promptSegmentId(segmentation.GetSegmentation(), text) if segmentation else None
        if segmentId is None:
            self.setStatus("This finding has no segment yet: tick it and press Ground findings.")
        elif self.logic.jumpToSegment(segmentation, segmentId) is None:
            self.setStatus("The model found nothing for this finding: its segment is empty.")
        else:
            self.setStatus(f"Showing {segmentation.GetSegmentation().GetSegment(segmentId).GetName()}.")


#
# VoxTellSlicerLogic
#


class VoxTellSlicerLogic(ScriptedLoadableModuleLogic, VoxTellLogic):
    """VoxTellLogic with the module's parameter node (all computation is in VoxTellLogic)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        VoxTellLogic.__init__(self)

    def getParameterNode(self):
        return VoxTellSlicerParameterNode(ScriptedLoadableModuleLogic.getParameterNode(self))


#
# VoxTellSlicerTest
#


class VoxTellSlicerTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Developer mode > Reload and Test): the demo model on a synthetic image."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_demo_model_segments_on_volume_grid()
        self.test_rerun_updates_segment_and_cancel_keeps_state()

    def _volume(self):
        import numpy as np

        k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in (40, 48, 56)], indexing="ij")
        image = -800.0 + 850.0 * ((k / 0.7) ** 2 + (j / 0.8) ** 2 + (i / 0.9) ** 2 < 1)
        ijkToRas = np.array([[-0.9, 0, 0, 20.0], [0, -0.9, 0, 30.0], [0, 0, 2.0, -40.0], [0, 0, 0, 1]])
        return slicer.util.addVolumeFromArray(image.astype(np.float32), ijkToRas, "VoxTell test volume")

    def test_demo_model_segments_on_volume_grid(self):
        import numpy as np

        self.delayDisplay("Segmenting a synthetic image with the demo model")
        volume = self._volume()
        logic = VoxTellSlicerLogic()
        masks = logic.predictMasks(volume, ["liver"], modelPath="demo", device="cpu")
        segmentation = logic.segment(volume, "liver", modelPath="demo", device="cpu")
        segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("liver")
        self.assertTrue(segmentId)
        actual = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
        self.assertTrue(np.array_equal(actual, masks[0]))
        self.delayDisplay("Test passed")

    def test_rerun_updates_segment_and_cancel_keeps_state(self):
        from VoxTellCore.errors import Cancelled

        volume = self._volume()
        logic = VoxTellSlicerLogic()
        segmentation = logic.segment(volume, "liver", modelPath="demo", device="cpu")
        logic.segment(volume, "Liver", segmentationNode=segmentation, modelPath="demo", device="cpu")
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
        with self.assertRaises(Cancelled):
            logic.segment(volume, "spleen", segmentationNode=segmentation, modelPath="demo", device="cpu",
                          cancel=lambda: True)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
        self.delayDisplay("Test passed")
