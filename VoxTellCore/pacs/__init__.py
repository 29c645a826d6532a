"""PACS as sources and sinks of the batch engine (``VoxTellCore.inference.batch``).

A source lists the series to segment on a DICOMweb server (QIDO-RS) and fetches each one
into a temporary folder just before it runs (WADO-RS); a sink stores each case's DICOM SEG
or RTSTRUCT on a DICOMweb server (STOW-RS) or a DIMSE peer (C-STORE) and tells
``--no-overwrite`` whether a VoxTell result for a series is already there. Credentials come
from an environment variable or a file, never from the command line (``auth.py``).
``options.py`` turns ``voxtell-core predict``'s PACS options into a batch request.
"""

from VoxTellCore.errors import InputError


class PacsError(InputError):
    """A PACS that cannot be used: unreachable, refusing the credentials, missing a study,
    or failing a transfer (the message names the server and the fix)."""
