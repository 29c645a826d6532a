"""Report text -> the sentences of its Findings and Impression sections."""

from __future__ import annotations

import re

GROUNDED_SECTIONS = ("findings", "finding", "impression", "impressions", "conclusion", "conclusions")
OTHER_SECTIONS = ("technique", "clinical information", "clinical history", "clinical indication", "history",
                  "indication", "indications", "comparison", "recommendation", "recommendations", "procedure",
                  "examination", "exam", "protocol", "reason for exam", "addendum")
_HEADER = re.compile(
    r"^\s*(?P<name>" + "|".join(re.escape(s) for s in GROUNDED_SECTIONS + OTHER_SECTIONS) + r")\s*"
    r"(?::\s*|$)", re.IGNORECASE | re.MULTILINE)

ABBREVIATIONS = ("e.g.", "i.e.", "approx.", "vs.", "cf.", "etc.", "dr.", "no.", "fig.", "sec.", "resp.")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Organ sub-headings at the start of a line ("Lungs:", "Heart and mediastinum:") start a new
# sentence and are not part of it.
_SUBHEADING = r"[A-Za-z][A-Za-z ,/&-]{0,40}:\s"
_LEADING_SUBHEADING = re.compile(r"^\s*" + _SUBHEADING)


def report_sections(text: str) -> str:
    """The text of the Findings and Impression sections, or the whole text if there are none."""
    headers = list(_HEADER.finditer(text))
    wanted = [m for m in headers if m["name"].lower() in GROUNDED_SECTIONS]
    if not wanted:
        return text
    parts = []
    for header in wanted:
        following = [m.start() for m in headers if m.start() > header.start()]
        end = min(following, default=len(text))
        parts.append(text[header.end():end])
    return "\n\n".join(parts)


def split_sentences(text: str) -> list[str]:
    """Sentences of a text block.

    Splits after . ! ? followed by white space (so "1.5 cm" stays whole) unless the
    word before is an abbreviation like "e.g.", and at blank lines and list items.
    Other line breaks (hard-wrapped text) are joined.
    """
    sentences = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d{1,2}[.)])\s)|\n(?=\s*" + _SUBHEADING + ")", text):
        block = " ".join(_LEADING_SUBHEADING.sub("", _BULLET.sub("", block)).split())
        start = 0
        for boundary in _SENTENCE_END.finditer(block):
            before = block[start:boundary.start()]
            if before.lower().endswith(ABBREVIATIONS) or re.search(r"\b[A-Za-z]\.$", before):
                continue
            sentences.append(before)
            start = boundary.end()
        sentences.append(block[start:])
    return [s.strip() for s in sentences if s.strip(" .;")]
