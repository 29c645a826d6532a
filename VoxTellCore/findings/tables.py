"""Lesion tables of follow-up reports -> sentences the rules read.

Oncology follow-up reports list their target lesions (RECIST) as rows: a label, the lesion's place, then its
sizes over time ("T1  Liver, segment 7:   baseline 38 mm   prior 31 mm   now 24 mm"). A row names no finding
noun, so each becomes a list item that does: "- Target lesion in the liver segment 7, baseline 38 mm, prior
31 mm, now 24 mm." (the earlier sizes are then dropped as prior measurements).
"""

from __future__ import annotations

import re

from VoxTellCore.findings.cues import FINDING_NOUN

# A row's sizes wrapped onto the next line, which starts with the colon.
_WRAPPED = re.compile(r"\n[ \t]*(?=:[ \t]*\S)")
_ROW = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?:non-?)?target(?: lesion)?[ \t]*#?[ \t]*\d{1,2}|N?TL?[ \t]?\d{1,2})\b[ \t.:)-]+"
    r"(?P<place>[A-Za-z][^:\n]*?)[ \t]*:[ \t]*(?P<sizes>[^\n]*?\d[ \t]*(?:mm|cm)\b[^\n]*?)[ \t.]*$",
    re.IGNORECASE | re.MULTILINE)


def with_lesion_rows(text: str) -> str:
    """`text` with each target-lesion row written as a list item naming its lesion."""
    return _ROW.sub(_row_sentence, _WRAPPED.sub(" ", text))


def _row_sentence(row: re.Match) -> str:
    place = " ".join(row["place"].replace(",", " ").split())
    sizes = ", ".join(re.findall(r"[A-Za-z][\w ]*?\s+\d+(?:\.\d+)?\s*(?:mm|cm)\b|\d+(?:\.\d+)?\s*(?:mm|cm)\b",
                                 row["sizes"], re.IGNORECASE))
    lesion = f"{place[0].upper()}{place[1:]} (target lesion)" if FINDING_NOUN.search(place) \
        else f"Target lesion in the {place.lower()}"
    return f"{row['indent']}- {lesion}, {sizes}."
