"""A DIMSE peer (``pynetdicom``) for PACS without DICOMweb: ``dicom://AET@host:port``.
C-ECHO checks it answers; C-STORE sends files, each in its own transfer syntax."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from VoxTellCore.pacs import PacsError

DIMSE_URL = re.compile(r"^dicom://(?P<aet>[^@/]{1,16})@(?P<host>[^:/]+):(?P<port>\d{1,5})/?$")
SUCCESS, WARNINGS = 0x0000, (0x0001, 0xB000, 0xB006, 0xB007)


def is_dimse_url(url: str) -> bool:
    return url.lower().startswith("dicom://")


class DimsePeer:
    def __init__(self, url: str, calling_aet: str = "VOXTELL", timeout: float = 60.0) -> None:
        match = DIMSE_URL.match(url)
        if match is None:
            raise PacsError(f"{url} is not a DIMSE address: write dicom://AET@host:port, e.g. dicom://ORTHANC@pacs:4242.")
        self.url = url
        self.called_aet, self.host, self.port = match["aet"], match["host"], int(match["port"])
        self.calling_aet = calling_aet
        self.timeout = timeout

    def _associate(self, contexts: Sequence[tuple], what: str):
        from pynetdicom import AE

        ae = AE(ae_title=self.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        syntaxes: dict = {}
        for sop_class, transfer_syntax in contexts:
            syntaxes.setdefault(sop_class, []).append(transfer_syntax)
        for sop_class, transfer_syntaxes in syntaxes.items():
            ae.add_requested_context(sop_class, list(dict.fromkeys(transfer_syntaxes)))
        association = ae.associate(self.host, self.port, ae_title=self.called_aet)
        if not association.is_established:
            raise PacsError(f"The DICOM peer {self.url} refused or did not answer the association while {what}: "
                            f"check the host, port and its AE title ({self.called_aet}), and that it accepts "
                            f"the calling AE title {self.calling_aet} (--calling-aet).")
        return association

    def check(self) -> None:
        """The peer accepts an association and answers C-ECHO."""
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        from pynetdicom.sop_class import Verification

        association = self._associate([(Verification, ExplicitVRLittleEndian), (Verification, ImplicitVRLittleEndian)],
                                      "checking the connection")
        try:
            status = association.send_c_echo()
        finally:
            association.release()
        if not status or status.Status != SUCCESS:
            raise PacsError(f"The DICOM peer {self.url} did not answer C-ECHO.")

    def store(self, paths: Sequence[Path]) -> None:
        """C-STORE every file in one association; PacsError names the first one refused."""
        import pydicom

        datasets = [pydicom.dcmread(path) for path in paths]
        contexts = [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets]
        association = self._associate(contexts, "storing")
        try:
            for path, dataset in zip(paths, datasets):
                status = association.send_c_store(dataset)
                code = status.Status if status else None
                if code is None:
                    raise PacsError(f"The DICOM peer {self.url} closed the connection while storing {path.name}.")
                if code != SUCCESS and code not in WARNINGS:
                    raise PacsError(f"The DICOM peer {self.url} refused to store {path.name} (status 0x{code:04X}).")
        finally:
            if association.is_established:
                association.release()
