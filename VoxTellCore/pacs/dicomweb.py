"""A DICOMweb server (``dicomweb-client``): list a study's series (QIDO-RS), fetch a series
into a folder (WADO-RS), store files (STOW-RS), and find VoxTell's results for a series.

Every request has a timeout; refused connections are retried by the HTTP adapter and busy
answers (429, 503, 504) by dicomweb-client, each with exponential back-off. Failures become
``PacsError`` naming the server and the fix.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

from VoxTellCore.io.formats.dicom import SeriesInfo
from VoxTellCore.pacs import PacsError
from VoxTellCore.pacs.auth import SOURCE_ENV

MODALITY, DESCRIPTION, IMAGE_TYPE, INSTANCES = "00080060", "0008103E", "00080008", "00201209"
MANUFACTURER, REFERENCED_SERIES, SERIES_UID = "00080070", "00081115", "0020000E"
RT_REFERENCED_FRAMES, RT_REFERENCED_STUDIES, RT_REFERENCED_SERIES = "30060010", "30060012", "30060014"


class DicomWebServer:
    def __init__(self, url: str, headers: Dict[str, str], timeout: float = 60.0, retries: int = 3,
                 auth_hint: str = SOURCE_ENV) -> None:
        import requests
        from dicomweb_client import DICOMwebClient
        from requests.adapters import HTTPAdapter
        from urllib3.util import Retry

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.auth_hint = auth_hint
        session = requests.Session()
        session.headers.update(headers)
        adapter = HTTPAdapter(max_retries=Retry(total=retries, connect=retries, read=0, status=0, backoff_factor=0.5))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        try:
            self.client = DICOMwebClient(self.url, session=session, timeout=timeout)
        except ValueError as error:
            raise PacsError(f"{url} is not a DICOMweb URL ({error}): give one like http://host:8042/dicom-web.") from error
        self.client.set_http_retry_params(max_attempts=retries + 1, wait_exponential_multiplier=500)

    @contextmanager
    def talking(self, what: str) -> Iterator[None]:
        """Turn the HTTP client's errors while doing ``what`` into a PacsError that says what to fix."""
        import requests

        try:
            yield
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            if status in (401, 403):
                raise PacsError(f"The DICOMweb server {self.url} refused the credentials (HTTP {status}) while "
                                f"{what}: set ${self.auth_hint} to user:password or 'Bearer TOKEN', or pass a "
                                "file holding them (--auth-file / --store-auth-file).") from error
            raise PacsError(f"The DICOMweb server {self.url} answered HTTP {status} while {what}.") from error
        except requests.Timeout as error:
            raise PacsError(f"The DICOMweb server {self.url} did not answer within {self.timeout:g} s while {what} "
                            "(--pacs-timeout sets the limit).") from error
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            raise PacsError(f"Lost or could not open the connection to the DICOMweb server {self.url} while {what} "
                            f"({type(error).__name__}): check the URL and that the server runs.") from error

    def check(self) -> None:
        """The server answers and accepts the credentials."""
        with self.talking("checking the connection"):
            self.client.search_for_studies(limit=1)

    def list_series(self, study: str) -> List[SeriesInfo]:
        """The series of ``study`` (PacsError when the server has no such study)."""
        with self.talking(f"listing the series of study {study}"):
            found = self.client.search_for_series(study_instance_uid=study,
                                                  fields=[MODALITY, DESCRIPTION, INSTANCES])
        if not found:
            raise PacsError(f"The DICOMweb server {self.url} has no study {study} (or it holds no series): "
                            "check the Study Instance UID.")
        series = []
        for item in found:
            uid = _value(item, SERIES_UID)
            modality = _value(item, MODALITY)
            series.append(SeriesInfo(uid=uid, modality=modality, description=_value(item, DESCRIPTION),
                                     files=(), is_localizer=modality in ("CT", "MR", "PT") and self._is_localizer(study, uid),
                                     instances=int(_value(item, INSTANCES) or 0) or None))
        return series

    def _is_localizer(self, study: str, series: str) -> bool:
        with self.talking(f"reading the image type of series {series}"):
            first = self.client.search_for_instances(study_instance_uid=study, series_instance_uid=series,
                                                     fields=[IMAGE_TYPE], limit=1)
        values = first[0].get(IMAGE_TYPE, {}).get("Value", []) if first else []
        return "LOCALIZER" in (str(value).upper() for value in values)

    def fetch_series(self, study: str, series: str, folder: Path) -> int:
        """Every instance of the series into ``folder`` (one file each); returns their number."""
        count = 0
        with self.talking(f"fetching series {series}"):
            try:
                for dataset in self.client.iter_series(study, series):
                    dataset.save_as(folder / f"{count:05d}.dcm", enforce_file_format=True)
                    count += 1
            except (ValueError, TypeError, EOFError) as error:  # a multipart answer cut short
                raise PacsError(f"The DICOMweb server {self.url} sent an incomplete or unreadable answer while "
                                f"fetching series {series} ({type(error).__name__}: {error}).") from error
        if not count:
            raise PacsError(f"The DICOMweb server {self.url} sent no instance of series {series}.")
        return count

    def store(self, paths: Sequence[Path]) -> None:
        """STOW-RS the files in one request: the server stores all or reports which failed."""
        import pydicom

        datasets = [pydicom.dcmread(path) for path in paths]
        with self.talking(f"storing {', '.join(path.name for path in paths)}"):
            answer = self.client.store_instances(datasets)
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reasons = ", ".join(f"{item.get('ReferencedSOPInstanceUID', '?')}: 0x{int(item.get('FailureReason', 0)):04X}"
                                for item in failed)
            raise PacsError(f"The DICOMweb server {self.url} refused to store {reasons}.")

    def holds_result(self, study: str, series: str, modality: str, manufacturer: str) -> bool:
        """Whether a ``modality`` object made by ``manufacturer`` references ``series``."""
        with self.talking(f"looking for {modality} objects in study {study}"):
            candidates = self.client.search_for_series(study_instance_uid=study, search_filters={MODALITY: modality})
            for candidate in candidates:
                for metadata in self.client.retrieve_series_metadata(study, _value(candidate, SERIES_UID)):
                    if _value(metadata, MANUFACTURER) == manufacturer and series in referenced_series(metadata):
                        return True
        return False


def referenced_series(metadata: dict) -> List[str]:
    """The series a SEG (Referenced Series Sequence) or an RTSTRUCT (through its referenced frame
    of reference and study) refers to, from DICOM JSON."""
    uids = [_value(item, SERIES_UID) for item in _items(metadata, REFERENCED_SERIES)]
    for frame in _items(metadata, RT_REFERENCED_FRAMES):
        for study in _items(frame, RT_REFERENCED_STUDIES):
            uids += [_value(item, SERIES_UID) for item in _items(study, RT_REFERENCED_SERIES)]
    return uids


def _items(element: dict, tag: str) -> List[dict]:
    return element.get(tag, {}).get("Value", [])


def _value(element: dict, tag: str) -> str:
    values = element.get(tag, {}).get("Value", [])
    return str(values[0]) if values else ""
