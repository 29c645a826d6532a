"""Segment Editor effect "VoxTell prompt": fills the selected segment with the mask of a text prompt.

Apply is VoxTellLogic.fillSelectedSegment (tested headless with Slicer's segment editor
logic): the mask goes through the editor's own modification, so its editable area, editable
intensity range and overwrite settings apply, and the change is one Segment Editor undo step
(Ctrl+Z). Model and device are those chosen in the VoxTell Segmentation module (read from
the user settings it writes); the effect has its own logic, and the loaded model is shared with
the module.
"""

import os
import threading

import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

from slicer.i18n import tr as _


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "VoxTell"  # the effect's key in Slicer (not shown)
        scriptedEffect.title = _("VoxTell prompt")
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self._cancel = None
        self._logic = None
        self._progress = None

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        iconPath = os.path.join(os.path.dirname(__file__), "SegmentEditorEffect.png")
        return qt.QIcon(iconPath) if os.path.exists(iconPath) else qt.QIcon()

    def helpText(self):
        return _(
            "<html>Fill the selected segment from a free-text prompt with VoxTell, e.g. <i>liver</i> or "
            "<i>lesion in the right upper lobe</i>.<p>The editable area, intensity range and overwrite "
            "settings under <b>Masking</b> apply; Undo (Ctrl+Z) reverts it. An optional ROI limits the result "
            "to a box. Model and device are set in the VoxTell Segmentation module.</html>"
        )

    def logic(self):
        if self._logic is None:
            from VoxTellSlicerLib import VoxTellLogic
            from VoxTellSlicerLib.worker import runInWorker

            self._logic = VoxTellLogic()
            self._logic.runCompute = lambda compute: runInWorker(compute, poll=self.poll)
        return self._logic

    def setupOptionsFrame(self):
        self.promptLineEdit = qt.QLineEdit()
        self.promptLineEdit.placeholderText = _("e.g. liver  (Enter to apply)")
        self.promptLineEdit.toolTip = _("Free-text description of the structure to segment.")
        self.scriptedEffect.addLabeledOptionsWidget(_("Prompt:"), self.promptLineEdit)

        self.roiSelector = slicer.qMRMLNodeComboBox()
        self.roiSelector.nodeTypes = ["vtkMRMLMarkupsROINode"]
        self.roiSelector.noneEnabled = True
        self.roiSelector.addEnabled = True
        self.roiSelector.removeEnabled = False
        self.roiSelector.renameEnabled = True
        self.roiSelector.noneDisplay = _("Whole image")
        self.roiSelector.setMRMLScene(slicer.mrmlScene)
        self.roiSelector.toolTip = _("Optional markups ROI (or create one here): only voxels inside it are segmented.")
        self.scriptedEffect.addLabeledOptionsWidget(_("ROI:"), self.roiSelector)

        self.applyButton = qt.QPushButton(_("Apply"))
        self.applyButton.toolTip = _("Fill the selected segment with the prompt's mask.")
        self.cancelButton = qt.QPushButton(_("Cancel"))
        self.cancelButton.enabled = False
        buttons = qt.QHBoxLayout()
        buttons.addWidget(self.applyButton)
        buttons.addWidget(self.cancelButton)
        self.scriptedEffect.addOptionsWidget(buttons)

        self.progressBar = qt.QProgressBar()
        self.progressBar.visible = False
        self.scriptedEffect.addOptionsWidget(self.progressBar)
        self.statusLabel = qt.QLabel()
        self.statusLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.statusLabel)

        self.roiSelector.connect("nodeAddedByUser(vtkMRMLNode*)", self.onRoiCreated)
        self.promptLineEdit.connect("returnPressed()", self.onApply)
        self.promptLineEdit.connect("textChanged(QString)", self.updateMRMLFromGUI)
        self.applyButton.connect("clicked()", self.onApply)
        self.cancelButton.connect("clicked()", self.onCancel)

    def createCursor(self, widget):
        return slicer.util.mainWindow().cursor

    def setMRMLDefaults(self):
        self.scriptedEffect.setParameterDefault("Prompt", "")

    def updateGUIFromMRML(self):
        # Every keystroke comes back here through the parameter; setting the same text again
        # would move the cursor to the end and scramble what the user is typing.
        prompt = self.scriptedEffect.parameter("Prompt")
        if self.promptLineEdit.text != prompt:
            wasBlocked = self.promptLineEdit.blockSignals(True)
            self.promptLineEdit.text = prompt
            self.promptLineEdit.blockSignals(wasBlocked)

    def updateMRMLFromGUI(self, *unused):
        self.scriptedEffect.setParameter("Prompt", self.promptLineEdit.text)

    def onCancel(self):
        if self._cancel is not None:
            self._cancel.set()
            self._progress.pin(_("Cancelling..."))

    def onRoiCreated(self, roiNode):
        """A new ROI is fitted to the source volume (empty, every run would refuse it)."""
        from VoxTellSlicerLib.geometry import fitRoiToVolume

        editorNode = self.scriptedEffect.parameterSetNode()
        volume = editorNode.GetSourceVolumeNode() if editorNode is not None else None
        if volume is not None:
            fitRoiToVolume(roiNode, volume)

    def poll(self):
        """Runs on the GUI thread while the worker computes: shows progress, keeps Cancel clickable."""
        from VoxTellSlicerLib.worker import showProgress

        showProgress(self._progress, self.progressBar, self.statusLabel)
        slicer.app.processEvents(qt.QEventLoop.AllEvents, 50)

    @staticmethod
    def confirm(question):
        return slicer.util.confirmYesNoDisplay(question, windowTitle="VoxTell")

    def onApply(self):
        if self._cancel is not None:
            return
        prompt = self.promptLineEdit.text.strip()
        if not prompt:
            slicer.util.errorDisplay(_("Type a prompt first, e.g. 'liver'."))
            return

        from VoxTellCore.errors import Cancelled, VoxTellError
        from VoxTellSlicerLib.dependencies import DependencyError
        from VoxTellSlicerLib.options import RunOptions
        from VoxTellSlicerLib.settings import UserSettings
        from VoxTellSlicerLib.worker import NothingWritten, ProgressState, setupDependenciesInWorker, showProgress

        try:
            options = RunOptions.fromSettings(UserSettings(), self.roiSelector.currentNode())
        except VoxTellError as error:
            slicer.util.errorDisplay(str(error))
            return
        if not self.scriptedEffect.confirmCurrentSegmentVisible():
            return  # the user declined to edit a hidden segment
        self._cancel = threading.Event()
        self._progress = ProgressState()
        self._progress.status(_("Starting {model}, device {device}...").format(model=options.modelLabel(),
                                                                          device=options.device))
        showProgress(self._progress, self.progressBar, self.statusLabel)  # the last run's bar is reset
        self.applyButton.enabled = False
        self.cancelButton.enabled = True
        self.progressBar.visible = True
        try:
            if not options.serverUrl:  # a server needs no PyTorch here
                setupDependenciesInWorker(self.poll, self._progress.status, self.confirm, self._cancel)
            self.logic().prepareTextEncoder([prompt], options, self.confirm, self._progress, self._cancel,
                                            self._progress.status)
            self.logic().fillSelectedSegment(self.scriptedEffect, prompt, options, progress=self._progress,
                                             cancel=self._cancel, log=self._progress.status)
            self.statusLabel.text = _("Done. Undo (Ctrl+Z) reverts it.")
        except NothingWritten as error:
            self.statusLabel.text = str(error)
        except Cancelled:
            self.statusLabel.text = _("Cancelled: the segment is unchanged.")
        except (VoxTellError, DependencyError) as error:
            self.statusLabel.text = ""
            slicer.util.errorDisplay(str(error))
        except Exception as error:
            import traceback

            slicer.util.errorDisplay(_("VoxTell failed: {error}").format(error=error), detailedText=traceback.format_exc())
        finally:
            self._cancel = None
            self.applyButton.enabled = True
            self.cancelButton.enabled = False
            self.progressBar.visible = False
