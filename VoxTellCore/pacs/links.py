"""The batch engine's PACS source and sink.

``DicomWebSource.cases`` lists the series to segment (one per study, chosen as the folder
reader chooses) and gives each an empty folder of its own; ``fetch(case)`` fills that folder
while the case runs and empties it after. ``PacsSink.store(case, paths)`` sends the case's
files; ``holds_result(case)`` answers ``--no-overwrite``: a VoxTell object of the sink's
modality already references the case's series in the PACS.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from VoxTellCore.inference.cases import Case
from VoxTellCore.io.formats.dicom import choose_series, list_dicom_series
from VoxTellCore.io.formats.dicom_seg import MANUFACTURER
from VoxTellCore.pacs import PacsError
from VoxTellCore.pacs.dicomweb import DicomWebServer
from VoxTellCore.pacs.dimse import DimsePeer


@dataclass(frozen=True)
class SeriesReference:
    study: str
    series: str


class DicomWebSource:
    def __init__(self, server: DicomWebServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.references: Dict[str, SeriesReference] = {}

    def cases(self, studies: Sequence[Tuple[str, Optional[str]]], prompts: Sequence[str]) -> List[Case]:
        """One case per (study, series or None): the series is chosen now, so a missing study,
        a series that is not a volume or an ambiguous study stops the run before the model loads."""
        cases = []
        for study, series_uid in studies:
            listed = self.server.list_series(study)
            chosen = choose_series(f"Study {study} on {self.server.url}", listed, series_uid)
            folder = self.workdir / chosen.uid
            folder.mkdir(parents=True, exist_ok=True)
            self.references[str(folder)] = SeriesReference(study, chosen.uid)
            cases.append(Case(str(folder), tuple(prompts)))
        return cases

    @contextmanager
    def fetch(self, case: Case) -> Iterator[Case]:
        reference = self.references[case.image]
        folder = Path(case.image)
        try:
            self.server.fetch_series(reference.study, reference.series, folder)
            yield case
        finally:
            for path in folder.iterdir():
                path.unlink()


class PacsSink:
    def __init__(self, target: Union[DicomWebServer, DimsePeer], modality: str,
                 source: Optional[DicomWebSource] = None) -> None:
        self.target = target
        self.modality = modality  # SEG or RTSTRUCT
        self.source = source

    def check(self) -> None:
        self.target.check()

    def store(self, case: Case, paths: Sequence[Path]) -> None:
        self.target.store(paths)
        print(f"Stored {', '.join(path.name for path in paths)} in {self.target.url}.", file=sys.stderr)

    def holds_result(self, case: Case) -> bool:
        if not isinstance(self.target, DicomWebServer):
            raise PacsError(f"--no-overwrite asks the PACS whether a result exists, which needs DICOMweb; "
                            f"{self.target.url} is a DIMSE peer. Store to a DICOMweb URL, or drop --no-overwrite.")
        reference = self.reference(case)
        return self.target.holds_result(reference.study, reference.series, self.modality, MANUFACTURER)

    def reference(self, case: Case) -> SeriesReference:
        """The study and series of a case: from the source that listed it, else from its files."""
        if self.source is not None and case.image in self.source.references:
            return self.source.references[case.image]
        import pydicom

        chosen = choose_series(Path(case.image), list_dicom_series(case.image), case.series)
        header = pydicom.dcmread(chosen.files[0], stop_before_pixels=True)
        return SeriesReference(str(header.StudyInstanceUID), chosen.uid)
