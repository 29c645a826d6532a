"""PACS round trips against a real Orthanc (DICOMweb plugin, auth on, random ports): pull a
series (WADO-RS), segment it, store the SEG (STOW-RS or C-STORE), find it again in Orthanc and
compare it voxel for voxel with the file-system run; and every way a PACS can fail gives a
clear error, the batch exit code (2 before the model loads, 1 for a failed case) and nothing
half-stored in the PACS."""

import http.server
import io
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from conftest_io_helpers import write_full_dicom_series
from dicom_checks import dciodvfy_errors
from orthanc_server import PASSWORD, USER, Orthanc

from VoxTellCore.cli import main
from VoxTellCore.commands import predict
from VoxTellCore.pacs.dicomweb import referenced_series
from VoxTellCore.ports import free_port

highdicom = pytest.importorskip("highdicom")

STUDY = "1.2.826.0.1.3680043.2.1125.5001"
CT_SERIES = "1.2.826.0.1.3680043.2.1125.5001.1"
PROMPTS = ["liver", "left kidney"]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    server = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


@pytest.fixture
def pacs(orthanc, tmp_path, monkeypatch):
    """Orthanc holding one study: an oblique CT series and a localizer; credentials in the environment."""
    orthanc.clear()
    array = np.random.default_rng(3).integers(-200, 400, size=(8, 24, 20)).astype(np.int16)
    angle = np.radians(20)
    files = write_full_dicom_series(tmp_path / "ct", array, CT_SERIES, study_uid=STUDY, description="oblique CT",
                                    row_direction=(np.cos(angle), np.sin(angle), 0.0), column_direction=(0, 0, -1))
    localizer = write_full_dicom_series(tmp_path / "scout", array[:1], CT_SERIES + ".9", study_uid=STUDY,
                                        image_type="ORIGINAL\\PRIMARY\\LOCALIZER", description="scout")
    orthanc.upload(files + localizer)
    monkeypatch.setenv("VOXTELL_PACS_AUTH", f"{USER}:{PASSWORD}")
    monkeypatch.delenv("VOXTELL_STORE_AUTH", raising=False)
    orthanc.ct_folder = tmp_path / "ct"
    return orthanc


class ThresholdPredictor:
    """A fast stand-in for the model: prompt i's mask is the image above 100 * (i + 1)."""

    description = "threshold predictor for tests"
    is_demo = False

    def embed(self, prompts):
        return np.array([[100.0 * (i + 1)] for i in range(len(prompts))])

    def predict_volume(self, volume, prompts, roi_ras=None, progress=None, cancel=None):
        return np.stack([volume.array > row[0] for row in prompts]).astype(np.uint8)


@pytest.fixture
def thresholds(monkeypatch):
    monkeypatch.setattr(predict, "make_predictor", lambda args: ThresholdPredictor())


def seg_series(orthanc) -> list:
    return [(uid, tags) for modality, uid, tags in orthanc.series_of_study(STUDY) if modality == "SEG"]


def stored_seg(orthanc) -> pydicom.Dataset:
    (uid, tags), = seg_series(orthanc)
    return pydicom.dcmread(io.BytesIO(orthanc.instance_file(tags)))


def frames_by_instance(seg) -> np.ndarray:
    seg = highdicom.seg.Segmentation.from_dataset(seg)
    sources = [item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence]
    return seg.get_pixels_by_source_instance(source_sop_instance_uids=sorted(sources),
                                             segment_numbers=list(range(1, seg.number_of_segments + 1)))


def test_pull_segment_and_store_a_seg_equal_to_the_file_system_run(pacs, tmp_path, capsys):
    common = ["-p", *PROMPTS, "-m", "demo", "--device", "cpu"]
    assert main(["predict", "-i", str(pacs.ct_folder), "-o", str(tmp_path / "fs"), "--format", "dicom-seg", *common]) == 0
    capsys.readouterr()
    assert main(["predict", "--dicomweb", pacs.dicomweb, "--study", STUDY, "--store", *common]) == 0
    assert f"Stored {CT_SERIES}.dcm in {pacs.dicomweb}." in capsys.readouterr().err

    seg = stored_seg(pacs)
    assert referenced_series(seg.to_json_dict()) == [CT_SERIES]  # the CT, not the localizer
    assert seg.Manufacturer == "VoxTell for 3D Slicer"
    file_system = pydicom.dcmread(tmp_path / "fs" / "ct.dcm")
    assert np.array_equal(frames_by_instance(seg), frames_by_instance(file_system))
    assert frames_by_instance(seg).any()
    (tmp_path / "stored.dcm").write_bytes(pacs.instance_file(seg_series(pacs)[0][1]))
    assert dciodvfy_errors(tmp_path / "stored.dcm") == []


def test_store_over_c_store_from_a_local_folder(pacs, tmp_path, thresholds):
    assert main(["predict", "-i", str(pacs.ct_folder), "-o", str(tmp_path / "fs"), "-p", *PROMPTS,
                 "--format", "dicom-seg"]) == 0
    assert main(["predict", "-i", str(pacs.ct_folder), "-p", *PROMPTS, "--store-to", pacs.dimse]) == 0
    seg = stored_seg(pacs)
    assert referenced_series(seg.to_json_dict()) == [CT_SERIES]
    assert np.array_equal(frames_by_instance(seg), frames_by_instance(pydicom.dcmread(tmp_path / "fs" / "ct.dcm")))


def test_no_overwrite_skips_a_series_whose_voxtell_seg_is_in_the_pacs(pacs, tmp_path, thresholds, capsys):
    studies = tmp_path / "studies.txt"
    studies.write_text(f"# one study\n{STUDY}\n")
    run = ["predict", "--dicomweb", pacs.dicomweb, "--studies", str(studies), "-p", *PROMPTS, "--store",
           "--no-overwrite"]
    assert main(run) == 0 and len(seg_series(pacs)) == 1
    capsys.readouterr()
    assert main(run) == 0
    assert "Skipping 1 image(s) whose outputs the PACS holds" in capsys.readouterr().err
    assert len(seg_series(pacs)) == 1
    # A part without the study does nothing; the other part holds it.
    assert main(run + ["--parts", "2", "--part", "1"]) == 0 and len(seg_series(pacs)) == 1


def test_study_with_two_volumes_is_refused_with_the_list(pacs, tmp_path, thresholds, capsys):
    mr = write_full_dicom_series(tmp_path / "mr", np.zeros((3, 4, 5), np.int16), CT_SERIES + ".2", study_uid=STUDY,
                                 modality="MR", description="T1")
    pacs.upload(mr)
    assert main(["predict", "--dicomweb", pacs.dicomweb, "--study", STUDY, "-p", "liver", "--store"]) == 2
    error = capsys.readouterr().err
    assert f"Study {STUDY} on {pacs.dicomweb} holds 3 DICOM series (2 CT/MR/PET volume series)" in error
    assert f'{CT_SERIES}.2  MR  "T1"  3 file(s)' in error and "--series UID" in error
    assert seg_series(pacs) == []
    assert main(["predict", "--dicomweb", pacs.dicomweb, "--study", STUDY, "--series", CT_SERIES, "-p", "liver",
                 "--store"]) == 0
    assert len(seg_series(pacs)) == 1


@pytest.mark.parametrize("problem, message", [
    ("credentials", "refused the credentials (HTTP 401)"),
    ("unreachable", "could not open the connection"),
    ("missing study", "has no study 1.2.3.4"),
    ("credentials file", "Cannot read the credentials file"),
    ("dimse unreachable", "refused or did not answer the association"),
])
def test_unusable_pacs_is_exit_2_before_the_model_loads(pacs, tmp_path, monkeypatch, capsys, problem, message):
    def no_model(args):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(predict, "make_predictor", no_model)
    url, study, extra = pacs.dicomweb, STUDY, []
    if problem == "credentials":
        monkeypatch.setenv("VOXTELL_PACS_AUTH", f"{USER}:wrong")
    elif problem == "unreachable":
        url = f"http://127.0.0.1:{free_port()}/dicom-web"
    elif problem == "missing study":
        study = "1.2.3.4"
    elif problem == "credentials file":
        extra = ["--auth-file", str(tmp_path / "absent.txt")]
    else:
        extra = ["--store-to", f"dicom://NOBODY@127.0.0.1:{free_port()}"]
    code = main(["predict", "--dicomweb", url, "--study", study, "-p", "liver", "--store", "--pacs-retries", "0",
                 "--pacs-timeout", "5", *extra])
    assert code == 2
    assert message in capsys.readouterr().err.lower() if message.islower() else message in capsys.readouterr().err
    monkeypatch.setenv("VOXTELL_PACS_AUTH", f"{USER}:{PASSWORD}")
    assert seg_series(pacs) == []


class CuttingProxy(http.server.ThreadingHTTPServer):
    """Forwards to Orthanc, but dies mid-transfer: cuts the series download (WADO-RS) after
    half its bytes ("fetch"), or drops the connection on the first store (STOW-RS) without
    forwarding it ("store"); or answers the first download 503 Service Unavailable ("busy once")."""

    def __init__(self, orthanc, cut: str):
        self.orthanc, self.cut, self.refused = orthanc, cut, False
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/dicom-web"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Orthanc: a reused connection must not look like a cut

    def log_message(self, *args):
        pass

    def forward(self, method):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if method == "POST" and self.server.cut == "store":
            self.connection.shutdown(2)
            return
        is_series = "/series/" in self.path and not self.path.endswith("/metadata") and "instances?" not in self.path
        if self.server.cut == "busy once" and is_series and not self.server.refused:
            self.server.refused = True
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(method, self.server.orthanc.url + self.path, headers=headers, data=body, timeout=30)
        content = answer.content
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-encoding", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.server.cut == "fetch" and is_series and method == "GET":
            self.wfile.write(content[: len(content) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(content)

    def do_GET(self):
        self.forward("GET")

    def do_POST(self):
        self.forward("POST")


@pytest.mark.parametrize("cut", ["fetch", "store"])
def test_server_dying_mid_transfer_fails_the_case_and_stores_nothing(pacs, tmp_path, thresholds, capsys, cut):
    proxy = CuttingProxy(pacs, cut)
    try:
        code = main(["predict", "--dicomweb", proxy.url, "--study", STUDY, "-p", *PROMPTS, "--store",
                     "-o", str(tmp_path / "out"), "--pacs-retries", "0"])
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert code == 1
    error = capsys.readouterr().err
    assert "connection to the DICOMweb server" in error and ("fetching series" if cut == "fetch" else "storing") in error
    assert seg_series(pacs) == []
    assert list((tmp_path / "out").iterdir()) == []  # the failed case left no file


def test_rtstruct_is_stored_and_counts_as_done_for_no_overwrite(pacs, thresholds, capsys):
    run = ["predict", "--dicomweb", pacs.dicomweb, "--study", STUDY, "-p", *PROMPTS, "--store", "--format", "rtstruct",
           "--no-overwrite"]
    assert main(run) == 0
    (uid, tags), = [(uid, tags) for modality, uid, tags in pacs.series_of_study(STUDY) if modality == "RTSTRUCT"]
    rtstruct = pydicom.dcmread(io.BytesIO(pacs.instance_file(tags)))
    assert referenced_series(rtstruct.to_json_dict()) == [CT_SERIES]
    assert [roi.ROIName for roi in rtstruct.StructureSetROISequence] == PROMPTS
    capsys.readouterr()
    assert main(run) == 0 and "Skipping 1 image(s)" in capsys.readouterr().err
    # A SEG is another kind of result: the RTSTRUCT does not count for it.
    assert main(run[:-3] + ["--no-overwrite"]) == 0 and len(seg_series(pacs)) == 1


def test_a_busy_answer_is_retried(pacs, tmp_path, thresholds):
    proxy = CuttingProxy(pacs, "busy once")
    try:
        assert main(["predict", "--dicomweb", proxy.url, "--study", STUDY, "-p", *PROMPTS, "--store"]) == 0
        assert proxy.refused
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert len(seg_series(pacs)) == 1
