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

from VoxTellSlicerLib import VoxTellLogic, cleanPrompts  # noqa: E402

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

    def setup(self) -> None:
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/VoxTellSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = VoxTellSlicerLogic()

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
        if self.ui.promptsTextEdit.toPlainText() != node.prompts:
            wasBlocked = self.ui.promptsTextEdit.blockSignals(True)
            self.ui.promptsTextEdit.setPlainText(node.prompts)
            self.ui.promptsTextEdit.blockSignals(wasBlocked)
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
        elif not node.prompts.strip():
            problem = "Type at least one prompt (one per line)."
        elif node.modelSource == "folder" and not node.modelFolder:
            problem = "Choose the model folder."
        self.ui.runButton.enabled = problem is None and not running
        self.ui.runButton.toolTip = problem or "Segment every prompt (Ctrl+Enter in the prompt box)."
        self.ui.cancelButton.enabled = running

    def onPromptsEdited(self) -> None:
        if self._parameterNode:
            self._parameterNode.prompts = self.ui.promptsTextEdit.toPlainText()

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
        for widget in (self.ui.inputsCollapsibleButton, self.ui.advancedCollapsibleButton):
            widget.enabled = not running
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        self.updateRunButton()

    def onRunButton(self) -> None:
        from VoxTellCore.errors import Cancelled, VoxTellError

        node = self._parameterNode
        if self._cancel is not None or not self.ui.runButton.enabled:
            return
        self.setRunning(True)
        try:
            options = self.runOptions(cancel=self._cancel)
            if options is None:
                return
            self.setStatus("Segmenting...")
            segmentation = self.logic.segment(
                node.inputVolume, node.prompts, segmentationNode=node.outputSegmentation, roiNode=node.roi,
                progress=self.onProgress, cancel=self._cancel, **options,
            )
            node.outputSegmentation = segmentation
            segmentation.GetDisplayNode().SetVisibility(True)
            self.setStatus(f"Done: {len(cleanPrompts(node.prompts))} prompt(s). Edit > Undo reverts this run.")
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
