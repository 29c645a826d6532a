"""Segment Editor effect "VoxTell": fills the selected segment with the mask of a text prompt.

The prediction is VoxTellLogic.predictLabelmap (tested headless); applying it goes through
the editor, so its editable area, editable intensity range and overwrite settings apply
and the change is one editor undo step. Model and device are those chosen in the VoxTell
module, whose logic (and cached model) this effect shares.
"""

import os
import threading

import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "VoxTell"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self._cancel = None

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        iconPath = os.path.join(os.path.dirname(__file__), "SegmentEditorEffect.png")
        return qt.QIcon(iconPath) if os.path.exists(iconPath) else qt.QIcon()

    def helpText(self):
        return (
            "<html>Fill the selected segment from a free-text prompt with VoxTell, e.g. <i>liver</i> or "
            "<i>lesion in the right upper lobe</i>.<p>The editable area, intensity range and overwrite "
            "settings under <b>Masking</b> apply. An optional ROI limits the result to a box. Model and device "
            "are set in the VoxTell module.</html>"
        )

    def setupOptionsFrame(self):
        self.promptLineEdit = qt.QLineEdit()
        self.promptLineEdit.placeholderText = "e.g. liver  (Enter to apply)"
        self.promptLineEdit.toolTip = "Free-text description of the structure to segment."
        self.scriptedEffect.addLabeledOptionsWidget("Prompt:", self.promptLineEdit)

        self.roiSelector = slicer.qMRMLNodeComboBox()
        self.roiSelector.nodeTypes = ["vtkMRMLMarkupsROINode"]
        self.roiSelector.noneEnabled = True
        self.roiSelector.addEnabled = False
        self.roiSelector.removeEnabled = False
        self.roiSelector.noneDisplay = "Whole image"
        self.roiSelector.setMRMLScene(slicer.mrmlScene)
        self.roiSelector.toolTip = "Optional markups ROI: only voxels inside it are segmented."
        self.scriptedEffect.addLabeledOptionsWidget("ROI:", self.roiSelector)

        self.applyButton = qt.QPushButton("Apply")
        self.applyButton.toolTip = "Fill the selected segment with the prompt's mask."
        self.cancelButton = qt.QPushButton("Cancel")
        self.cancelButton.enabled = False
        buttons = qt.QHBoxLayout()
        buttons.addWidget(self.applyButton)
        buttons.addWidget(self.cancelButton)
        self.scriptedEffect.addOptionsWidget(buttons)

        self.progressBar = qt.QProgressBar()
        self.progressBar.visible = False
        self.scriptedEffect.addOptionsWidget(self.progressBar)

        self.promptLineEdit.connect("returnPressed()", self.onApply)
        self.promptLineEdit.connect("textChanged(QString)", self.updateMRMLFromGUI)
        self.applyButton.connect("clicked()", self.onApply)
        self.cancelButton.connect("clicked()", self.onCancel)

    def createCursor(self, widget):
        return slicer.util.mainWindow().cursor

    def setMRMLDefaults(self):
        self.scriptedEffect.setParameterDefault("Prompt", "")

    def updateGUIFromMRML(self):
        wasBlocked = self.promptLineEdit.blockSignals(True)
        self.promptLineEdit.text = self.scriptedEffect.parameter("Prompt")
        self.promptLineEdit.blockSignals(wasBlocked)

    def updateMRMLFromGUI(self, *unused):
        self.scriptedEffect.setParameter("Prompt", self.promptLineEdit.text)

    def onCancel(self):
        if self._cancel is not None:
            self._cancel.set()

    def onProgress(self, done, total):
        self.progressBar.maximum = total
        self.progressBar.value = done
        slicer.app.processEvents()

    def onApply(self):
        if self._cancel is not None:
            return
        prompt = self.promptLineEdit.text.strip()
        if not prompt:
            slicer.util.errorDisplay("Type a prompt first, e.g. 'liver'.")
            return
        parameterSetNode = self.scriptedEffect.parameterSetNode()
        getSourceVolume = getattr(parameterSetNode, "GetSourceVolumeNode", None) or parameterSetNode.GetMasterVolumeNode
        sourceVolume = getSourceVolume()
        if sourceVolume is None:
            slicer.util.errorDisplay("Select a source volume in the Segment Editor first.")
            return

        from VoxTellCore.errors import Cancelled, VoxTellError

        moduleWidget = slicer.util.getModuleWidget("VoxTellSlicer")
        self._cancel = threading.Event()
        self.applyButton.enabled = False
        self.cancelButton.enabled = True
        self.progressBar.visible = True
        moduleWidget.activeProgressBar = self.progressBar
        try:
            options = moduleWidget.runOptions(progress=self.onProgress, cancel=self._cancel)
            if options is None:
                return
            # Inference runs in the module's worker thread: its progress goes through recordProgress,
            # and the module refreshes this effect's progress bar from the GUI thread.
            labelmap = moduleWidget.logic.predictLabelmap(
                sourceVolume, prompt, self.roiSelector.currentNode(),
                progress=moduleWidget.recordProgress, cancel=self._cancel, **options,
            )
            modifier = slicer.vtkOrientedImageData()
            slicer.vtkOrientedImageDataResample.ResampleOrientedImageToReferenceOrientedImage(
                labelmap, self.scriptedEffect.defaultModifierLabelmap(), modifier, False
            )
            self.scriptedEffect.saveStateForUndo()
            self.scriptedEffect.modifySelectedSegmentByLabelmap(
                modifier, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet
            )
        except Cancelled:
            slicer.util.showStatusMessage("VoxTell cancelled; the segment is unchanged.", 3000)
        except VoxTellError as error:
            slicer.util.errorDisplay(str(error))
        except Exception as error:
            import traceback

            slicer.util.errorDisplay(f"VoxTell failed: {error}", detailedText=traceback.format_exc())
        finally:
            moduleWidget.activeProgressBar = None
            self._cancel = None
            self.applyButton.enabled = True
            self.cancelButton.enabled = False
            self.progressBar.visible = False
