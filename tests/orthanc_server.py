"""A real Orthanc PACS for the tests (Debian packages orthanc and orthanc-dicomweb, installed by
``scripts/setup.sh --test``): temporary config and storage, 127.0.0.1 only, random HTTP and
DICOM ports, HTTP basic auth on (remote HTTP access refused; Orthanc 1.10 has no bind-address
option, so its DICOM port listens on every interface for the test's few seconds), stopped by
``stop()``."""

import json
import subprocess
import time
from pathlib import Path

import requests

from VoxTellCore.ports import free_port

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD, AET = "voxtell", "s3cret-pass", "ORTHANCTEST"



class Orthanc:
    def __init__(self, folder: Path) -> None:
        missing = [str(path) for path in (ORTHANC, DICOMWEB_PLUGIN) if not path.exists()]
        if missing:
            raise RuntimeError(f"Orthanc is not installed ({', '.join(missing)} missing): run "
                               "`bash scripts/setup.sh --test` as root, or apt-get install orthanc orthanc-dicomweb.")
        self.folder = folder
        self.http_port, self.dicom_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.dicomweb = f"{self.url}/dicom-web"
        self.dimse = f"dicom://{AET}@127.0.0.1:{self.dicom_port}"
        self.auth = (USER, PASSWORD)
        self.process = None

    def start(self) -> "Orthanc":
        config = {
            "Name": "voxtell-test", "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"), "HttpPort": self.http_port, "DicomPort": self.dicom_port,
            "DicomAet": AET, "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD}, "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full",
                         "SeriesMetadata": "Full"},
            "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True, "UnknownSopClassAccepted": False,
            "StableAge": 1, "ConcurrentJobs": 1, "HttpThreadsCount": 4,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "orthanc.json").write_text(json.dumps(config, indent=1))
        self.log = open(self.folder / "orthanc.log", "wb")
        self.process = subprocess.Popen([str(ORTHANC), str(self.folder / "orthanc.json")], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        for _ in range(200):  # up to 20 s
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start:\n{(self.folder / 'orthanc.log').read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/system", auth=self.auth, timeout=1).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("Orthanc did not answer within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.log.close()

    def upload(self, files) -> None:
        for path in files:
            answer = requests.post(f"{self.url}/instances", data=Path(path).read_bytes(), auth=self.auth, timeout=30)
            answer.raise_for_status()

    def series_of_study(self, study_uid: str) -> list:
        """[(modality, series uid, main tags)] of a study, through Orthanc's own REST API."""
        found = requests.post(f"{self.url}/tools/find", auth=self.auth, timeout=30,
                              json={"Level": "Series", "Query": {"StudyInstanceUID": study_uid}, "Expand": True})
        found.raise_for_status()
        return [(s["MainDicomTags"].get("Modality"), s["MainDicomTags"]["SeriesInstanceUID"], s) for s in found.json()]

    def instance_file(self, series: dict) -> bytes:
        answer = requests.get(f"{self.url}/instances/{series['Instances'][0]}/file", auth=self.auth, timeout=30)
        answer.raise_for_status()
        return answer.content

    def clear(self) -> None:
        for patient in requests.get(f"{self.url}/patients", auth=self.auth, timeout=30).json():
            requests.delete(f"{self.url}/patients/{patient}", auth=self.auth, timeout=30).raise_for_status()
