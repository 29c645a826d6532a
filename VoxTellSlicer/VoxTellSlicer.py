"""VoxTell: free-text promptable 3D segmentation in 3D Slicer.

Widget <-> parameter node <-> logic, as in Slicer's scripted-module template. All the
computation is in VoxTellSlicerLib.VoxTellLogic, which has no Qt and is tested headless;
this file holds the GUI only. Qt is imported inside the methods that need it. Model work,
downloads and installs run in a worker thread (VoxTellSlicerLib.worker), never on the GUI thread.
"""

import logging
import os
import sys
import threading
from typing import Annotated, Optional

import slicer
import vtk
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
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

from VoxTellCore.models import DEMO_DESCRIPTION  # noqa: E402
from VoxTellSlicerLib import VoxTellLogic, cleanPrompts, extractReportFindings  # noqa: E402
from VoxTellSlicerLib.devices import UNPROBED_CHOICES  # noqa: E402
from VoxTellSlicerLib.options import RunOptions  # noqa: E402
from VoxTellSlicerLib.settings import (  # noqa: E402
    COMPUTE_ON,
    DEVICE,
    MODEL_FOLDER,
    MODEL_SOURCE,
    PRECISION,
    SERVER_KEY,
    SERVER_URL,
    UserSettings,
)
from VoxTellSlicerLib.worker import (  # noqa: E402
    BackgroundCall,
    NothingWritten,
    ProgressState,
    RunInProgress,
    runInWorker,
    setupDependenciesInWorker,
    showProgress,
)



def modelSources() -> list:
    """(value, label) of the model box (a function: Slicer's translation is loaded by then)."""
    return [
        ("official", _("Official VoxTell v1.1 (downloaded once)")),
        ("folder", _("Local model folder")),
        ("demo", _("Built-in demo model")),
    ]


def textEncoderNote() -> str:
    return _("Prompts outside the model's embedding bank need the Qwen3-Embedding-4B text encoder: about 8 GB, "
             "downloaded on first use, and about 16 GB of RAM when it runs on the CPU.")


#
# VoxTellSlicer
#


class VoxTellSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        # Not just "VoxTell": another extension's module has that title in the module list.
        self.parent.title = _("VoxTell Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["VoxTell Slicer extension contributors"]
        self.parent.helpText = _("""
Segment structures in a 3D image by describing them in free text, one prompt per line
(e.g. <i>liver</i>, <i>left kidney</i>, <i>lesion in the right upper lobe</i>). Each prompt
becomes a segment named after it; structures known to Slicer's terminology get its colour.
Running a prompt again updates its segment; your own segments are never changed.
Ctrl+Enter in the prompt box runs; Cancel stops a run and leaves the segmentation as it was.
<b>Revert last run</b> removes the segments the last run added and gives the segments it
updated their previous voxels, name, colour and tags back. An optional ROI limits the result to a box.
<p>Model: the official VoxTell v1.1 (downloaded once, in the background, with progress), a local
model folder, or the built-in <b>{demo}</b>: the demo model is only for trying the module.
{encoder}
<p>Device: Auto (a warning says when it falls back to the CPU: minutes per image), a GPU by
index, Apple MPS, or the CPU.
<p><b>Report</b>: paste a radiology report, extract its findings (hedged ones are marked
uncertain), tick and edit them, and ground each one as a segment coloured by finding
category; click a finding to jump to it.
<p>The "VoxTell prompt" effect in the Segment Editor fills the selected segment from a prompt,
honouring the editor's masking settings; the editor's Undo (Ctrl+Z) reverts it.
Only one VoxTell run goes at a time (module or effect).
See <a href="https://github.com/voxtell/VoxTellSlicer/blob/main/docs/slicer.md">the documentation</a>
(tutorial, troubleshooting).
""").format(demo=DEMO_DESCRIPTION, encoder=textEncoderNote())
        self.parent.acknowledgementText = _("""
VoxTell: free-text promptable universal 3D medical image segmentation (Rokuss et al., 2025).
This module runs the released VoxTell model; please cite the VoxTell paper when you use it.
""")
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
    """The scene's state of the module, saved in scene files: never patient text (the pasted
    report stays in its text box). Model, folder, device and precision are filled from the
    user's settings (VoxTellSlicerLib.settings, same names), which outlive the scene."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode
    roi: vtkMRMLMarkupsROINode
    prompts: str = ""
    device: str = "auto"  # "auto", "cpu", "cuda:N", "mps" (devices.deviceChoices)
    precision: str = "auto"  # "auto" (the release's arithmetic) or "bf16"
    modelSource: Annotated[str, Choice(list(MODEL_SOURCE.choices))] = "official"
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
        self._progressState = ProgressState()
        self._cleanedUp = False  # module reload or close: the GUI of this widget is gone
        self._devicesProbed = False  # PyTorch was asked which devices exist
        self._deviceProbeTimer = None

    def setup(self) -> None:
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/VoxTellSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = VoxTellSlicerLogic()
        self.logic.runCompute = lambda compute: runInWorker(compute, poll=self.poll)

        self.populateDevices(UNPROBED_CHOICES, bf16=False)
        self.setupComputeOn()
        if not self.computesOnServer():  # remote mode never imports torch
            qt.QTimer.singleShot(0, self.probeDevices)  # after the panel shows: torch and CUDA take seconds
        for value, label in modelSources():
            self.ui.modelSourceComboBox.addItem(label, value)
        self.ui.progressBar.visible = False
        self.ui.cancelButton.enabled = False

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.promptsTextEdit.connect("textChanged()", self.onPromptsEdited)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.onDeviceChanged)
        self.ui.bf16CheckBox.connect("toggled(bool)", self.onBf16Toggled)
        self.ui.modelSourceComboBox.connect("currentIndexChanged(int)", self.onModelSourceChanged)
        self.ui.modelFolderPathLineEdit.connect("currentPathChanged(QString)", self.onModelFolderChanged)
        self.ui.runButton.connect("clicked(bool)", self.onRunButton)
        self.ui.revertButton.connect("clicked(bool)", self.onRevertButton)
        self.ui.saveDicomSegButton.connect("clicked(bool)", self.onSaveDicomSeg)
        self.ui.reportTextEdit.connect("textChanged()", self.onReportEdited)
        self.ui.extractFindingsButton.connect("clicked(bool)", self.onExtractFindings)
        self.ui.groundFindingsButton.connect("clicked(bool)", self.onGroundFindings)
        self.ui.findingsTable.connect("itemChanged(QTableWidgetItem*)", self.onFindingEdited)
        self.ui.findingsTable.connect("cellClicked(int,int)", self.onFindingClicked)
        header = self.ui.findingsTable.horizontalHeader()
        header.setSectionResizeMode(self.FINDING_COLUMN, qt.QHeaderView.Stretch)
        header.setSectionResizeMode(self.CATEGORY_COLUMN, qt.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(self.UNCERTAIN_COLUMN, qt.QHeaderView.ResizeToContents)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.roiSelector.connect("nodeAddedByUser(vtkMRMLNode*)", self.onRoiCreated)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = qt.QShortcut(qt.QKeySequence(keys), self.ui.promptsTextEdit)
            shortcut.setContext(qt.Qt.WidgetWithChildrenShortcut)
            shortcut.connect("activated()", self.onRunButton)

        self.initializeParameterNode()

    def setupComputeOn(self) -> None:
        """"Compute on: this computer / a VoxTell server", its URL and key (Slicer's user settings
        only, never the scene) and Test connection."""
        import ctk
        import qt

        settings = self.logic.settings
        section = ctk.ctkCollapsibleButton()
        section.text = _("Compute on")
        form = qt.QFormLayout(section)
        self.computeOnComboBox = qt.QComboBox()
        self.computeOnComboBox.addItem(_("This computer"), "local")
        self.computeOnComboBox.addItem(_("A VoxTell server"), "server")
        self.computeOnComboBox.currentIndex = 1 if self.computesOnServer() else 0
        self.serverUrlLineEdit = qt.QLineEdit(settings.get(SERVER_URL))
        self.serverUrlLineEdit.placeholderText = "http://gpu-box:1527"
        self.serverKeyLineEdit = qt.QLineEdit(settings.get(SERVER_KEY))
        self.serverKeyLineEdit.echoMode = qt.QLineEdit.Password
        self.serverKeyLineEdit.placeholderText = _("the key the server's administrator gave you (if any)")
        self.testConnectionButton = qt.QPushButton(_("Test connection"))
        self.serverStatusLabel = qt.QLabel("")
        self.serverStatusLabel.wordWrap = True
        form.addRow(_("Compute on:"), self.computeOnComboBox)
        form.addRow(_("Server URL:"), self.serverUrlLineEdit)
        form.addRow(_("Key:"), self.serverKeyLineEdit)
        form.addRow(self.testConnectionButton, self.serverStatusLabel)
        self.layout.insertWidget(1, section)
        self.computeOnComboBox.connect("currentIndexChanged(int)", self.onComputeOnChanged)
        self.serverUrlLineEdit.connect("editingFinished()", lambda: settings.set(SERVER_URL, self.serverUrlLineEdit.text.strip()))
        self.serverKeyLineEdit.connect("editingFinished()", lambda: settings.set(SERVER_KEY, self.serverKeyLineEdit.text))
        self.testConnectionButton.connect("clicked(bool)", self.onTestConnection)
        self.showComputeOn()

    def computesOnServer(self) -> bool:
        return self.logic.settings.get(COMPUTE_ON) == "server"

    def showComputeOn(self) -> None:
        remote = self.computesOnServer()
        for widget in (self.serverUrlLineEdit, self.serverKeyLineEdit, self.testConnectionButton, self.serverStatusLabel):
            widget.visible = remote
        self.ui.deviceComboBox.enabled = not remote  # the server's model and device apply
        self.ui.modelSourceComboBox.enabled = not remote

    def onComputeOnChanged(self, index: int) -> None:
        self.logic.settings.set(COMPUTE_ON, self.computeOnComboBox.itemData(index))
        self.showComputeOn()
        if not self.computesOnServer() and not self._devicesProbed:
            self.probeDevices()
        self.updateDeviceWarning()

    def onTestConnection(self) -> None:
        from VoxTellCore.errors import VoxTellError

        settings = self.logic.settings
        settings.set(SERVER_URL, self.serverUrlLineEdit.text.strip())
        settings.set(SERVER_KEY, self.serverKeyLineEdit.text)
        self.serverStatusLabel.text = _("Connecting...")
        slicer.app.processEvents()
        try:
            self.serverStatusLabel.text = self.logic.testConnection(settings.get(SERVER_URL), settings.get(SERVER_KEY) or None)
        except VoxTellError as error:
            self.serverStatusLabel.text = str(error)

    def cleanup(self) -> None:
        """Module reload or application exit: a running run is cancelled and finishes without this GUI."""
        self._cleanedUp = True
        self.cancelRun()
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
        self.cancelRun()  # the logic also notices the close and writes nothing
        self.logic.forgetLastRun()
        self.setParameterNode(None)
        self.ui.reportTextEdit.clear()  # the closed scene's patient
        self.ui.findingsTable.setRowCount(0)

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
        textEdit = self.ui.promptsTextEdit
        if textEdit.toPlainText() != node.prompts:  # setting the same text would move the cursor
            wasBlocked = textEdit.blockSignals(True)
            textEdit.setPlainText(node.prompts)
            textEdit.blockSignals(wasBlocked)
        for comboBox, value in ((self.ui.deviceComboBox, node.device), (self.ui.modelSourceComboBox, node.modelSource)):
            wasBlocked = comboBox.blockSignals(True)
            comboBox.currentIndex = max(comboBox.findData(value), 0)
            comboBox.blockSignals(wasBlocked)
        wasBlocked = self.ui.bf16CheckBox.blockSignals(True)
        self.ui.bf16CheckBox.checked = node.precision == "bf16"
        self.ui.bf16CheckBox.blockSignals(wasBlocked)
        if self.ui.modelFolderPathLineEdit.currentPath != node.modelFolder:
            self.ui.modelFolderPathLineEdit.currentPath = node.modelFolder
        self.ui.modelFolderPathLineEdit.visible = node.modelSource == "folder"
        self.ui.modelFolderLabel.visible = node.modelSource == "folder"
        self.ui.modelInfoLabel.text = {
            "official": _("VoxTell v1.1 from the Hugging Face Hub; downloaded once in the background (Cancel "
                          "stops it), then used from the cache without asking the network. ") + textEncoderNote(),
            "folder": _("A folder with plans.json and fold_0/ (e.g. the official model copied for offline use)."),
            "demo": _("Built-in {description}.").format(description=DEMO_DESCRIPTION),
        }[node.modelSource]
        if node.outputSegmentation is None and node.inputVolume is not None:
            self.ui.outputSegmentationSelector.baseName = f"{node.inputVolume.GetName()} VoxTell"
        self.updateDeviceWarning()  # its estimate depends on the image and the prompts
        self.updateRunButton()

    def updateRunButton(self) -> None:
        node = self._parameterNode
        running = self._cancel is not None
        problem = None
        if node is None or node.inputVolume is None:
            problem = _("Select an input volume.")
        elif node.modelSource == "folder" and not node.modelFolder:
            problem = _("Choose the model folder.")
        promptsProblem = problem or (None if node.prompts.strip() else _("Type at least one prompt (one per line)."))
        self.ui.runButton.enabled = promptsProblem is None and not running
        self.ui.runButton.toolTip = promptsProblem or _("Segment every prompt (Ctrl+Enter in the prompt box).")
        findingsProblem = problem or (None if self.checkedFindings() else _("Extract the findings and tick at least one."))
        self.ui.groundFindingsButton.enabled = findingsProblem is None and not running
        self.ui.groundFindingsButton.toolTip = findingsProblem or _("Segment every ticked finding, coloured by category.")
        self.ui.extractFindingsButton.enabled = bool(self.ui.reportTextEdit.toPlainText().strip()) and not running
        self.ui.cancelButton.enabled = running
        self.ui.revertButton.enabled = not running and self.logic.canRevert()
        self.ui.saveDicomSegButton.enabled = not running

    def onPromptsEdited(self) -> None:
        if self._parameterNode:
            self._parameterNode.prompts = self.ui.promptsTextEdit.toPlainText()

    def onReportEdited(self) -> None:
        """The report stays in its text box: nothing of it goes into the scene."""
        self.updateRunButton()

    def rememberSetting(self, setting, value: str) -> None:
        """A user's choice: kept in the user settings and shown through the parameter node."""
        self.logic.settings.set(setting, value)
        if self._parameterNode:
            setattr(self._parameterNode, setting.name, self.logic.settings.get(setting))

    def onDeviceChanged(self, index: int) -> None:
        self.rememberSetting(DEVICE, self.ui.deviceComboBox.itemData(index))
        self.updateDeviceWarning()

    def onBf16Toggled(self, checked: bool) -> None:
        self.rememberSetting(PRECISION, "bf16" if checked else "auto")

    def onModelSourceChanged(self, index: int) -> None:
        self.rememberSetting(MODEL_SOURCE, self.ui.modelSourceComboBox.itemData(index))

    def onModelFolderChanged(self, path: str) -> None:
        self.rememberSetting(MODEL_FOLDER, path)

    def onRoiCreated(self, roiNode) -> None:
        """'Create new Markups ROI' gives an empty box: fit it to the input volume to shrink from there."""
        from VoxTellSlicerLib.geometry import fitRoiToVolume

        volume = self._parameterNode.inputVolume if self._parameterNode else None
        if volume is not None:
            fitRoiToVolume(roiNode, volume)
            self.setStatus(_("The new ROI covers the whole image: drag its handles around the structure."))
        else:
            self.setStatus(_("Select an input volume to fit the new ROI to, or place the ROI in a view."))

    def populateDevices(self, choices: list, bf16: bool) -> None:
        """Auto, each CUDA GPU by index (name and memory), Apple MPS, CPU; and bf16 arithmetic
        where the CPU computes it natively (elsewhere it is emulated: slower)."""
        self.ui.bf16CheckBox.visible = bf16
        wasBlocked = self.ui.deviceComboBox.blockSignals(True)
        self.ui.deviceComboBox.clear()
        for value, label in choices:
            self.ui.deviceComboBox.addItem(label, value)
        self.ui.deviceComboBox.blockSignals(wasBlocked)
        self.updateGUIFromParameterNode()  # selects the user's device again

    def probeDevices(self) -> None:
        """Ask PyTorch what this computer has, in a background thread (never on the GUI thread:
        importing torch and starting CUDA take seconds), then fill the device box."""
        import qt

        from VoxTellSlicerLib.devices import probeDevices

        if self._deviceProbeTimer is not None:
            return
        probe = BackgroundCall(probeDevices, name="VoxTell device probe")

        def collect() -> None:
            if not probe.done() or self._cleanedUp:
                return
            self._deviceProbeTimer.stop()
            self._deviceProbeTimer = None
            try:
                choices, bf16 = probe.result()
            except Exception:  # a broken torch: the choices that need none stay
                logging.exception("VoxTell: asking PyTorch for the devices failed")
                return
            self._devicesProbed = True
            self.populateDevices(choices, bf16)
            self.updateDeviceWarning()

        self._deviceProbeTimer = qt.QTimer()
        self._deviceProbeTimer.setInterval(100)
        self._deviceProbeTimer.connect("timeout()", collect)
        self._deviceProbeTimer.start()

    def updateDeviceWarning(self) -> None:
        """Say beside Run when a run will not use the GPU the user expects (e.g. Auto falls back to
        the CPU), and how long it takes there for this image and these prompts."""
        from VoxTellCore.errors import InputError
        from VoxTellSlicerLib.devices import cpuEstimate, resolveDevice

        if not self._devicesProbed or self.computesOnServer():
            self.ui.deviceWarningLabel.visible = False
            return  # resolving asks PyTorch: after the background probe; a server has its own device
        node = self._parameterNode
        try:
            device, warning = resolveDevice(node.device if node else "auto")
        except InputError as error:  # e.g. a GPU this computer lacks (a setting from another computer)
            device, warning = None, str(error)
        except Exception as error:  # a broken CUDA setup should not break the module
            device, warning = "cpu", _("PyTorch cannot query the device ({error}); VoxTell will use the CPU.").format(
                error=error)
        imageData = node.inputVolume.GetImageData() if node and node.inputVolume else None
        if device == "cpu" and imageData is not None and node.modelSource != "demo":
            prompts = [line for line in node.prompts.splitlines() if line.strip()]
            windows, minutes = cpuEstimate(imageData.GetDimensions(), len(prompts))
            warning = (warning or _("Runs on the CPU.")) + " " + _(
                "This image: {windows} window(s), about {minutes:.0f} min for these prompts on 2 CPU cores "
                "(measured with the released model).").format(windows=windows, minutes=max(minutes, 1))
        self.ui.deviceWarningLabel.text = warning or ""
        self.ui.deviceWarningLabel.visible = bool(warning)

    # ------------------------------------------------------------------ running
    def setStatus(self, text: str) -> None:
        if not self._cleanedUp:
            self.ui.statusLabel.text = text

    def poll(self) -> None:
        """Runs on the GUI thread while a worker computes: shows its progress and processes
        events, so the GUI repaints and Cancel stays clickable."""
        import qt

        if not self._cleanedUp:
            showProgress(self._progressState, self.ui.progressBar, self.ui.statusLabel)
        slicer.app.processEvents(qt.QEventLoop.AllEvents, 50)

    def cancelRun(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def onCancelButton(self) -> None:
        if self._cancel is not None:
            self.cancelRun()
            self._progressState.pin(_("Cancelling..."))  # the worker's next line must not replace it
            self.setStatus(_("Cancelling..."))

    def setRunning(self, running: bool) -> None:
        self._cancel = threading.Event() if running else None
        if self._cleanedUp:
            return
        sections = (self.ui.inputsCollapsibleButton, self.ui.reportCollapsibleButton, self.ui.advancedCollapsibleButton)
        for widget in sections:
            widget.enabled = not running
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        self.updateRunButton()

    def runWithProgress(self, startText: str, prompts: list, work) -> None:
        """Set up the dependencies and (after asking) the text encoder the prompts need, then
        ``work(options, progress)`` (returns the status text), with the progress bar, Cancel and
        error reporting; a cancelled or failed run leaves the segmentation as it was."""
        from VoxTellCore.errors import Cancelled, VoxTellError
        from VoxTellSlicerLib.dependencies import DependencyError

        if self._cancel is not None:
            return
        self.setRunning(True)
        self._progressState = ProgressState()
        try:
            options = self.logic.runOptions()
            if not options.serverUrl:  # a server needs no PyTorch here
                installed = setupDependenciesInWorker(self.poll, self._progressState.status, self.confirm, self._cancel)
                if installed:
                    self.probeDevices()  # a new torch may see GPUs
                    self._progressState.note(_("Installed {packages}.").format(packages=", ".join(installed)))
            self.logic.prepareTextEncoder(prompts, options, self.confirm, self._progressState, self._cancel,
                                          self._progressState.status)
            self._progressState.status(startText)
            self.setStatus(work(options, self._progressState))
        except NothingWritten as error:
            self.setStatus(str(error))
        except Cancelled:
            self.setStatus(_("Cancelled: the segmentation is unchanged."))
        except DependencyError as error:
            self.setStatus(_("Setup failed at: {step}").format(step=error.step))
            slicer.util.errorDisplay(str(error), windowTitle=_("VoxTell setup"))
        except VoxTellError as error:
            self.setStatus(_("Not run.") if isinstance(error, RunInProgress) else _("Failed."))
            slicer.util.errorDisplay(str(error), windowTitle="VoxTell")
        except Exception as error:
            import traceback

            logging.exception("VoxTell failed")
            self.setStatus(_("Failed."))
            slicer.util.errorDisplay(_("VoxTell failed: {error}").format(error=error), windowTitle="VoxTell",
                                     detailedText=traceback.format_exc())
        finally:
            self.setRunning(False)

    @staticmethod
    def confirm(question: str) -> bool:
        return slicer.util.confirmYesNoDisplay(question, windowTitle="VoxTell")

    def showSegmentation(self, segmentation) -> None:
        self._parameterNode.outputSegmentation = segmentation
        segmentation.GetDisplayNode().SetVisibility(True)

    def onRunButton(self) -> None:
        node = self._parameterNode
        if self._cancel is not None or not self.ui.runButton.enabled:
            return

        def work(options, progress) -> str:
            segmentation = self.logic.segment(node.inputVolume, node.prompts, node.outputSegmentation, options,
                                              progress=progress, cancel=self._cancel, log=progress.status)
            self.showSegmentation(segmentation)
            return _("Done: {count} prompt(s). 'Revert last run' undoes this run.").format(
                count=len(cleanPrompts(node.prompts)))

        self.runWithProgress(_("Segmenting..."), cleanPrompts(node.prompts), work)

    def onRevertButton(self) -> None:
        from VoxTellCore.errors import VoxTellError

        if self._cancel is not None:
            return
        try:
            self.setStatus(self.logic.revertLastRun())
        except VoxTellError as error:
            slicer.util.errorDisplay(str(error), windowTitle="VoxTell")
        self.updateRunButton()

    def onSaveDicomSeg(self) -> None:
        """The VoxTell segments as a DICOM SEG in Slicer's DICOM database (docs/pacs.md, "From Slicer")."""
        from VoxTellCore.errors import VoxTellError
        from VoxTellSlicerLib.dicomSeg import saveAsDicomSeg

        node = self._parameterNode
        if node is None or node.inputVolume is None or node.outputSegmentation is None:
            slicer.util.errorDisplay(_("Choose the input volume and the segmentation to save first."),
                                     windowTitle="VoxTell")
            return
        try:
            path = saveAsDicomSeg(node.outputSegmentation, node.inputVolume, slicer.app.temporaryPath)
        except VoxTellError as error:
            slicer.util.errorDisplay(str(error), windowTitle="VoxTell")
            return
        self.setStatus(_("Saved {name} in the DICOM database: send it to a PACS from the DICOM module.").format(
            name=path.name))

    # ------------------------------------------------------------------ report
    FINDING_COLUMN, CATEGORY_COLUMN, UNCERTAIN_COLUMN = 0, 1, 2

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
            negated = _("Negated or normal statement. ") if row["negated"] else ""
            uncertain = _("Uncertain (hedged in the report): check its segment. ") if row.get("uncertain") else ""
            finding.setToolTip(negated + uncertain + _("From: {sentence}").format(sentence=row["sourceSentence"]))
            category = qt.QTableWidgetItem(row["category"])
            category.setFlags(qt.Qt.ItemIsEnabled | qt.Qt.ItemIsSelectable)
            marker = qt.QTableWidgetItem("?" if row.get("uncertain") else "")
            marker.setFlags(qt.Qt.ItemIsEnabled | qt.Qt.ItemIsSelectable)
            marker.setToolTip(uncertain)
            table.setItem(index, self.FINDING_COLUMN, finding)
            table.setItem(index, self.CATEGORY_COLUMN, category)
            table.setItem(index, self.UNCERTAIN_COLUMN, marker)
        table.blockSignals(wasBlocked)
        positive = sum(row["selected"] for row in rows)
        uncertain = sum(bool(row.get("uncertain")) for row in rows)
        self.setStatus(
            _("{positive} finding(s) ticked ({uncertain} uncertain), {negated} negated or normal statement(s) "
              "unticked.").format(positive=positive, uncertain=uncertain, negated=len(rows) - positive)
            if rows else _("No finding found in the report (it reads the Findings and Impression sections)."))
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

        def work(options, progress) -> str:
            segmentation = self.logic.groundReport(node.inputVolume, findings, node.outputSegmentation, options,
                                                   progress=progress, cancel=self._cancel, log=progress.status)
            self.showSegmentation(segmentation)
            return _("Done: {count} finding(s) grounded. Click a finding to show it; "
                     "'Revert last run' undoes this run.").format(count=len(findings))

        self.runWithProgress(_("Grounding findings..."), [finding["text"] for finding in findings], work)

    def onFindingClicked(self, row: int, column: int) -> None:
        """Centre the slice views on the clicked finding's segment."""
        segmentation = self._parameterNode.outputSegmentation if self._parameterNode else None
        text = self.ui.findingsTable.item(row, self.FINDING_COLUMN).text()
        segmentId = self.logic.promptSegmentId(segmentation.GetSegmentation(), text) if segmentation else None
        if segmentId is None:
            self.setStatus(_("This finding has no segment yet: tick it and press Ground findings."))
        elif self.logic.jumpToSegment(segmentation, segmentId) is None:
            self.setStatus(_("The model found nothing for this finding: its segment is empty."))
        else:
            self.setStatus(_("Showing {name}.").format(name=segmentation.GetSegmentation().GetSegment(segmentId).GetName()))


#
# VoxTellSlicerLogic
#


class VoxTellSlicerLogic(ScriptedLoadableModuleLogic, VoxTellLogic):
    """VoxTellLogic with the module's parameter node and the user's settings (all computation
    is in VoxTellLogic)."""

    def __init__(self, settings: Optional[UserSettings] = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        VoxTellLogic.__init__(self)
        self.settings = settings or UserSettings()

    def getParameterNode(self):
        """The scene's parameter node, its model, folder, device and precision set from the user's settings."""
        node = ScriptedLoadableModuleLogic.getParameterNode(self)
        if "report" in node.GetParameterNames():  # the pasted report, as scenes of earlier versions stored it
            node.UnsetParameter("report")
        self.settings.fillParameterNode(node)
        return VoxTellSlicerParameterNode(node)

    def runOptions(self) -> RunOptions:
        """Model, device and precision from the user's settings (as the effect reads them), the module's ROI."""
        roi = ScriptedLoadableModuleLogic.getParameterNode(self).GetNodeReference("roi")
        return RunOptions.fromSettings(self.settings, roi)


#
# VoxTellSlicerTest
#


class VoxTellSlicerTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Developer mode > Reload and Test, and the extension's ctest).

    The first test runs the whole prompt -> segments -> revert path with a stand-in predictor
    (numpy only, which Slicer ships), so the extension build machines, which have no torch,
    exercise the module on every Slicer release. The demo-model tests need VoxTellCore's
    packages (PyTorch among them): without them they are skipped (ctest calls setUp before each
    test_* method) and runTest says so.
    """

    NEEDED_PACKAGES = ("torch", "numpy", "nibabel", "SimpleITK", "dynamic_network_architectures")

    @classmethod
    def missingPackages(cls) -> list:
        import importlib

        missing = []
        for name in cls.NEEDED_PACKAGES:
            try:
                importlib.import_module(name)
            except ImportError:
                missing.append(name)
        return missing

    def setUp(self):
        slicer.mrmlScene.Clear()

    def requireModelPackages(self):
        missing = self.missingPackages()
        if missing:
            self.skipTest(f"VoxTell's packages are not installed ({', '.join(missing)}).")

    def runTest(self):
        self.setUp()
        self.test_prompts_become_segments_with_a_stand_in_predictor()
        missing = self.missingPackages()
        if missing:
            self.delayDisplay(f"Demo-model tests skipped: VoxTell's packages are not installed ({', '.join(missing)}).")
            return
        for test in (self.test_demo_model_segments_on_volume_grid, self.test_rerun_updates_segment_and_cancel_keeps_state):
            self.setUp()
            test()

    def _volume(self):
        import numpy as np

        k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in (40, 48, 56)], indexing="ij")
        image = -800.0 + 850.0 * ((k / 0.7) ** 2 + (j / 0.8) ** 2 + (i / 0.9) ** 2 < 1)
        ijkToRas = np.array([[-0.9, 0, 0, 20.0], [0, -0.9, 0, 30.0], [0, 0, 2.0, -40.0], [0, 0, 0, 1]])
        return slicer.util.addVolumeFromArray(image.astype(np.float32), ijkToRas, "VoxTell test volume")

    def test_prompts_become_segments_with_a_stand_in_predictor(self):
        """Prompts -> masks (a stand-in for the model: one slab per prompt) -> named segments on the
        volume's grid -> a rerun updates its segment -> revert restores, without scene undo."""
        import types

        import numpy as np

        class SlabPredictor:
            device = types.SimpleNamespace(type="cpu")

            def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
                masks = np.zeros((len(prompts), *volume.array.shape), np.uint8)
                for index in range(len(prompts)):
                    masks[index, 5 + 10 * index:12 + 10 * index] = 1
                return masks

        volume = self._volume()
        logic = VoxTellLogic(predictor_factory=lambda *key: SlabPredictor())
        options = RunOptions(model="masks given")
        undoFlag = slicer.mrmlScene.GetUndoFlag()
        segmentation = logic.segment(volume, "liver", options=options)
        before = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, "liver", volume).copy()
        slab = np.zeros(before.shape, np.uint8)
        slab[5:12] = 1
        self.assertTrue(np.array_equal(before, slab))  # on the volume's own grid
        logic.segment(volume, "spleen\nliver", segmentationNode=segmentation, options=options)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 2)
        self.assertFalse(np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, "liver", volume), before))
        logic.revertLastRun()
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
        self.assertTrue(np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, "liver", volume), before))
        self.assertEqual(slicer.mrmlScene.GetUndoFlag(), undoFlag)
        self.delayDisplay("Test passed")

    def test_demo_model_segments_on_volume_grid(self):
        import numpy as np

        self.requireModelPackages()
        self.delayDisplay("Segmenting a synthetic image with the demo model")
        volume = self._volume()
        logic = VoxTellSlicerLogic()
        options = RunOptions(model="demo", device="cpu")
        masks = logic.predictMasks(volume, ["liver"], options)
        segmentation = logic.segment(volume, "liver", options=options)
        segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("liver")
        self.assertTrue(segmentId)
        actual = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
        self.assertTrue(np.array_equal(actual, masks[0]))
        self.delayDisplay("Test passed")

    def test_rerun_updates_segment_and_cancel_keeps_state(self):
        self.requireModelPackages()
        from VoxTellCore.errors import Cancelled

        volume = self._volume()
        logic = VoxTellSlicerLogic()
        options = RunOptions(model="demo", device="cpu")
        segmentation = logic.segment(volume, "liver", options=options)
        logic.segment(volume, "Liver", segmentationNode=segmentation, options=options)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
        with self.assertRaises(Cancelled):
            logic.segment(volume, "spleen", segmentationNode=segmentation, options=options, cancel=lambda: True)
        self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
        self.delayDisplay("Test passed")
