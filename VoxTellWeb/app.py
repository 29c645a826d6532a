"""The page: trame-slicer's segmentation app (Slicer's slice and 3D views, window/level presets,
Segment Editor with paint, erase, threshold, islands, smoothing, undo/redo) plus a VoxTell panel
on the right: prompts with completion, Run with progress and Cancel, Revert last run, Save.

trame-slicer 2.0.0 keeps its logic objects private (``_logic``, ``_slicer_app``, ``_ui``): the app
reaches them by those names, so the version is pinned (``requirements/web.txt``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import List, Optional

from trame.app.file_upload import ClientFile
from trame.widgets import html
from trame.widgets.vuetify3 import (
    VAlert,
    VBtn,
    VCheckbox,
    VChip,
    VCombobox,
    VNavigationDrawer,
    VProgressLinear,
    VSelect,
    VTab,
    VTabs,
    VTextarea,
    VTextField,
)
from trame_slicer.app.segmentation_app import SegmentationApp

from VoxTellCore.errors import Cancelled, VoxTellError
from VoxTellCore.models import DEMO_DESCRIPTION
from VoxTellSlicerLib.options import DEMO_MODEL
from VoxTellSlicerLib.report import extractReportFindings
from VoxTellSlicerLib.worker import ProgressState
from VoxTellWeb.session import DOWNLOAD_FORMATS, Upload, WebSession
from VoxTellWeb.view_fit import FitWhileUntouched
from VoxTellWeb.vocabulary import prompt_suggestions

log = logging.getLogger(__name__)


class VoxTellWebApp(SegmentationApp):
    """One page, one ``WebSession``: every browser tab connected to this server shares it (the
    launcher gives each user a server of their own)."""

    def __init__(self, server=None, model: str = DEMO_MODEL, device: str = "auto", predictor_factory=None,
                 compute: str = "", dicomweb=None) -> None:
        """``predictor_factory`` as ``VoxTellLogic``'s (``VoxTellWeb.compute.server_factory`` for a
        server); ``compute`` says where runs compute, shown in the page (default: this machine);
        ``dicomweb``: a ``VoxTellCore.pacs.dicomweb.DicomWebServer`` to open series from and store to."""
        super().__init__(server)
        self.dicomweb = dicomweb
        self.session = WebSession(self._slicer_app.scene, self._slicer_app.terminologies_logic, model, device,
                                  predictor_factory)
        self._compute = compute or ("this machine with the " + DEMO_DESCRIPTION if model == DEMO_MODEL
                                    else f"this machine with the model {model}")
        self._cancel: Optional[threading.Event] = None
        self._runs = 0
        self._fit = FitWhileUntouched(self._slicer_app.view_manager)
        # The upload buttons go through the session (the core's readers and their checks).
        upload = self._ui.load_volume_items_buttons.on_load_volume
        upload.disconnect(self._logic._load_files_logic._load_volume_files)
        upload.connect(self._on_upload)
        state = self.server.state
        state.trame__title = "VoxTell"
        state.update({"voxtell_prompts": [], "voxtell_suggestions": prompt_suggestions(model),
                      "voxtell_error": "", "voxtell_status": "", "voxtell_running": False, "voxtell_progress": 0,
                      "voxtell_can_revert": False, "voxtell_has_volume": False, "voxtell_format": DOWNLOAD_FORMATS[0],
                      "voxtell_formats": list(DOWNLOAD_FORMATS), "voxtell_findings": [], "voxtell_selected": []})
        self._ui.layout.title.set_text("VoxTell")
        self._build_panel()

    # ------------------------------------------------------------------ page
    def _build_panel(self) -> None:
        layout = self._ui.layout
        with layout, VNavigationDrawer(location="right", permanent=True, width=320, classes="pa-3"):
            html.Div("VoxTell: segment from text", classes="text-h6 mb-1")
            html.Div(f"Computes on {self._compute}.", classes="text-caption mb-2 voxtell-compute")
            VAlert(v_if=("voxtell_error",), text=("voxtell_error",), type="error", density="compact",
                   closable=True, click_close="voxtell_error = ''", classes="mb-2 voxtell-error")
            with VTabs(v_model=("voxtell_tab", "prompts"), density="compact", classes="mb-2"):
                VTab("Prompts", value="prompts", classes="voxtell-tab-prompts")
                VTab("Report", value="report", classes="voxtell-tab-report")
            with html.Div(v_show="voxtell_tab === 'prompts'"):
                VCombobox(v_model=("voxtell_prompts",), items=("voxtell_suggestions",),
                          label="Prompts (Enter after each)", multiple=True, chips=True, closable_chips=True,
                          density="compact", hide_details=True, disabled=("voxtell_running",),
                          classes="mb-2 voxtell-prompts")
            with html.Div(v_show="voxtell_tab === 'report'"):
                VTextarea(v_model=("voxtell_report", ""), label="Paste a report", rows=4, density="compact",
                          hide_details=True, classes="mb-2 voxtell-report")
                VBtn("Extract findings", click=self.extract_findings, size="small", classes="mb-2 voxtell-extract")
                with html.Div(v_for="(row, i) in voxtell_findings", key="i", classes="d-flex align-center voxtell-finding"):
                    VCheckbox(v_model=("voxtell_selected", []), value=("i",), density="compact", hide_details=True,
                              classes="flex-grow-0")
                    html.Span("{{ row.text }}", classes="text-body-2 mr-1")
                    VChip("negated", v_if="row.negated", size="x-small", color="error", classes="mr-1")
                    VChip("uncertain", v_if="row.uncertain", size="x-small", color="warning")
            with html.Div(classes="d-flex ga-2 mb-2"):
                VBtn("Run", color="primary", click=self.run, disabled=("voxtell_running || !voxtell_has_volume",),
                     classes="voxtell-run")
                VBtn("Cancel", click=self.cancel, disabled=("!voxtell_running",), classes="voxtell-cancel")
                VBtn("Revert last run", click=self.revert, disabled=("voxtell_running || !voxtell_can_revert",),
                     classes="voxtell-revert")
            VProgressLinear(model_value=("voxtell_progress",), active=("voxtell_running",), height=6, classes="mb-2")
            html.Div("{{ voxtell_status }}", classes="text-body-2 mb-4 voxtell-status")
            with html.Div(classes="d-flex ga-2 align-center"):
                VSelect(v_model=("voxtell_format",), items=("voxtell_formats",), label="Save as", density="compact",
                        hide_details=True, classes="voxtell-format")
                VBtn("Save", disabled=("voxtell_running || !voxtell_has_volume",), classes="voxtell-save",
                     click=(f"trigger('{self.server.trigger_name(self.download)}', [voxtell_format])"
                            ".then((file) => file && utils.download(file[0], file[1], 'application/octet-stream'))"))
            if self.dicomweb is not None:
                self._build_dicomweb()
        layout.flush_content()

    def _build_dicomweb(self) -> None:
        html.Div(f"DICOMweb: {self.dicomweb.url}", classes="text-caption mt-4 mb-1")
        VTextField(v_model=("voxtell_study", ""), label="Study Instance UID", density="compact", hide_details=True,
                   classes="mb-1 voxtell-study")
        VBtn("List series", click=self.list_series, size="small", classes="mb-1 voxtell-list-series")
        VSelect(v_model=("voxtell_series", None), items=("voxtell_series_items", []), label="Series",
                density="compact", hide_details=True, classes="mb-1 voxtell-series")
        with html.Div(classes="d-flex ga-2"):
            VBtn("Open series", click=self.open_series, size="small", classes="voxtell-open-series",
                 disabled=("!voxtell_series || voxtell_running",))
            VBtn("Store DICOM SEG", click=self.store_seg, size="small", classes="voxtell-store-seg",
                 disabled=("voxtell_running || !voxtell_has_volume",))

    def _show(self, error: str = "", status: str = "") -> None:
        with self.server.state as state:
            state.voxtell_error = error
            state.voxtell_status = status

    # ------------------------------------------------------------------ actions
    async def _on_upload(self, files: List[dict]) -> None:
        self._open(lambda: self.session.open([Upload(client.name, client.content) for client in map(ClientFile, files)]))

    def list_series(self) -> None:
        try:
            found = self.dicomweb.list_series((self.server.state.voxtell_study or "").strip())
        except Exception as error:
            self._show(error=_message(error))
            return
        with self.server.state as state:
            state.voxtell_series_items = [{"title": f"{series.modality} {series.description} "
                                                    f"({series.instances or '?'} images)", "value": series.uid}
                                          for series in found]
            state.voxtell_series = found[0].uid if len(found) == 1 else None
        self._show(status=f"{len(found)} series in the study.")

    def open_series(self) -> None:
        state = self.server.state
        self._open(lambda: self.session.open_dicomweb(self.dicomweb, state.voxtell_study or "", state.voxtell_series))

    def store_seg(self) -> None:
        try:
            name = self.session.store_dicomweb(self.dicomweb, self._slicer_app.segmentation_editor.active_segmentation_node)
        except Exception as error:
            self._show(error=_message(error))
            return
        self._show(status=f"Stored {name} on {self.dicomweb.url}.")

    def _open(self, open_volume) -> None:
        """Open a volume (upload or DICOMweb series) and show it; a refusal is a message, the scene unchanged."""
        self._show(status="Reading the volume...")
        try:
            node = open_volume()
        except Exception as error:  # bad input must never take the page down
            self._show(error=_message(error))
            return
        self._slicer_app.display_manager.show_volume(node, do_reset_views=True)
        self._logic._load_files_logic.volume_loaded(node)  # the Segment Editor and W/L presets follow it
        self._fit.volume_opened()
        with self.server.state as state:
            state.voxtell_can_revert, state.voxtell_has_volume = False, True
        self._show(status=f"Opened {self.session.case}: {' x '.join(map(str, self.session.volume.array.shape[::-1]))} voxels.")

    def extract_findings(self) -> None:
        """The report's findings as rows to tick (positive ones ticked, negated ones not)."""
        rows = extractReportFindings(self.server.state.voxtell_report or "")
        with self.server.state as state:
            state.voxtell_findings = rows
            state.voxtell_selected = [index for index, row in enumerate(rows) if row["selected"]]
        self._show(status=f"{len(rows)} finding(s); Run grounds the ticked ones." if rows else "",
                   error="" if rows else "No finding found in the report: paste its findings or impression.")

    async def run(self) -> None:
        """Segment the prompts (Prompts tab) or ground the ticked findings (Report tab)."""
        state = self.server.state
        if state.voxtell_running:  # every tab on this process shares the run (and its Cancel)
            self._show(error="VoxTell is already running: wait for it to finish or press Cancel.",
                       status=state.voxtell_status)
            return
        try:
            if state.voxtell_tab == "report":
                rows = [state.voxtell_findings[index] for index in sorted(state.voxtell_selected or [])]
                requests = self.session.finding_requests(rows, self._slicer_app.segmentation_editor.active_segmentation_node)
            else:
                requests = self.session.requests(list(state.voxtell_prompts or []))
        except Exception as error:
            self._show(error=_message(error))
            return
        progress, self._cancel = ProgressState(), threading.Event()
        self._runs += 1
        run, start = self._runs, time.monotonic()
        with state:
            state.voxtell_running, state.voxtell_progress = True, 0
        self._show(status=f"Segmenting {', '.join(request.prompt for request in requests)} (run {run})...")
        work = asyncio.get_running_loop().run_in_executor(None, self.session.predict, requests, progress, self._cancel)
        while not work.done():
            await asyncio.wait([work], timeout=0.2)
            done, total, _ = progress.latest()
            with state:
                state.voxtell_progress = 100 * done / total if total else 0
        try:
            masks = work.result()
            editor = self._slicer_app.segmentation_editor
            self.session.apply(masks, requests, editor.active_segmentation_node)
            # The run's first segment: selected (the Segment Editor shows its tools then) and centred in the views.
            node = editor.active_segmentation_node
            first = self.session.logic.promptSegmentId(node.GetSegmentation(), requests[0].prompt)
            editor.set_active_segment_id(first)
            self.session.logic.jumpToSegment(node, first)
            names = ", ".join(request.style.name for request in requests)
            self._show(status=f"Segmented {names} (run {run}, {time.monotonic() - start:.1f} s).")
        except Cancelled as error:
            self._show(status=f"Run {run} cancelled: {error}")
        except Exception as error:
            self._show(error=_message(error), status=f"Run {run} failed.")
        finally:
            with state:
                state.voxtell_running, state.voxtell_progress = False, 0
                state.voxtell_can_revert = self.session.logic.canRevert()
            self._refresh_segment_list()

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def revert(self) -> None:
        try:
            self._show(status=self.session.revert())
        except Exception as error:
            self._show(error=_message(error))
        with self.server.state as state:
            state.voxtell_can_revert = self.session.logic.canRevert()
        self._refresh_segment_list()

    def download(self, format: str):
        """[file name, attachment] for the browser, or None (the error is shown)."""
        try:
            name, content = self.session.export(format, self._slicer_app.segmentation_editor.active_segmentation_node)
        except Exception as error:
            self._show(error=_message(error))
            return None
        self._show(status=f"Saved {name}.")
        return [name, self.server.protocol.addAttachment(content)]

    def _refresh_segment_list(self) -> None:
        with self.server.state:
            self._logic._segment_editor_logic._on_segment_editor_changed()


def _message(error: Exception) -> str:
    if isinstance(error, VoxTellError):
        return str(error)
    log.exception("VoxTell web: unexpected error")
    return f"Unexpected error ({type(error).__name__}: {error}). The page still works; the server log has the details."
