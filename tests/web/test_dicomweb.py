"""A series opened from a DICOMweb server (a real Orthanc with its DICOMweb plugin,
tests/orthanc_server.py) and the result stored back as DICOM SEG, through VoxTellCore.pacs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import TESTS
from test_session import ThresholdPredictor, dicom_helpers, run

import VoxTellWeb  # noqa: F401  (VoxTellSlicerLib on the path)
from VoxTellCore.errors import InputError
from VoxTellCore.pacs.auth import SOURCE_ENV, auth_headers
from VoxTellCore.pacs.dicomweb import DicomWebServer
from VoxTellWeb.session import WebSession

STUDY = "1.2.826.0.1.3680043.2.1125.90"
SERIES = "1.2.826.0.1.3680043.2.1125.91"


def orthanc_module():
    spec = importlib.util.spec_from_file_location("orthanc_server", TESTS / "orthanc_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    module = orthanc_module()
    server = module.Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    array = np.zeros((5, 8, 10), np.int16)
    array[1:4, 2:6, 2:7] = 200
    server.upload(dicom_helpers().write_full_dicom_series(tmp_path_factory.mktemp("ct"), array, SERIES,
                                                          study_uid=STUDY))
    secret = tmp_path_factory.mktemp("secret") / "pacs-auth.txt"
    secret.write_text(f"{module.USER}:{module.PASSWORD}")
    server.credentials = auth_headers(str(secret), SOURCE_ENV)  # as voxtell-web --dicomweb-auth-file reads it
    yield server
    server.stop()


@pytest.fixture
def session():
    from trame_slicer.core import SlicerApp

    app = SlicerApp()
    return WebSession(app.scene, app.terminologies_logic, model="demo", device="cpu",
                      predictor_factory=lambda *key: ThresholdPredictor())


def test_open_a_series_and_store_the_seg_back(orthanc, session):
    server = DicomWebServer(orthanc.dicomweb, orthanc.credentials)
    (listed,) = server.list_series(STUDY)
    session.open_dicomweb(server, STUDY, listed.uid)
    assert session.volume.array.shape == (5, 8, 10) and int(session.volume.array.max()) == 200
    name = session.store_dicomweb(server, run(session, ["liver"]))
    stored = [modality for modality, _, _ in orthanc.series_of_study(STUDY)]
    assert sorted(stored) == ["CT", "SEG"] and name.endswith(".dcm")


def test_a_wrong_password_is_a_message_and_the_volume_stays(orthanc, session, tmp_path):
    from test_session import volume_upload

    session.open([volume_upload(tmp_path)])
    server = DicomWebServer(orthanc.dicomweb, {"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
    with pytest.raises(InputError, match="refused the credentials"):
        session.open_dicomweb(server, STUDY, SERIES)
    assert session.case == "case" and session.volume_node.GetScene() is session.scene


def test_the_page_lists_opens_and_stores(orthanc, tmp_path):
    """The panel's DICOMweb buttons on an in-process app: list the study, open its series, Run, store."""
    import asyncio

    from trame.app import get_server

    from VoxTellWeb.app import VoxTellWebApp

    orthanc.clear()
    array = np.zeros((5, 8, 10), np.int16)
    array[1:4, 2:6, 2:7] = 200
    orthanc.upload(dicom_helpers().write_full_dicom_series(tmp_path / "ct", array, SERIES,
                                                           study_uid=STUDY))
    app = VoxTellWebApp(get_server("dicomweb-page", client_type="vue3"), device="cpu",
                        predictor_factory=lambda *key: ThresholdPredictor(),
                        dicomweb=DicomWebServer(orthanc.dicomweb, orthanc.credentials))
    state = app.server.state
    state.voxtell_study = f" {STUDY} "
    app.list_series()
    assert state.voxtell_series == SERIES and state.voxtell_error == ""
    app.open_series()
    assert state.voxtell_has_volume and state.voxtell_status.startswith(f"Opened series_{SERIES.rsplit('.', 1)[-1]}")
    state.voxtell_prompts = ["liver"]
    asyncio.run(app.run())
    app.store_seg()
    assert state.voxtell_error == "" and state.voxtell_status.startswith("Stored ")
    assert sorted(modality for modality, _, _ in orthanc.series_of_study(STUDY)) == ["CT", "SEG"]
    state.voxtell_study = "1.2.3.4"
    app.list_series()
    assert "has no study 1.2.3.4" in state.voxtell_error
