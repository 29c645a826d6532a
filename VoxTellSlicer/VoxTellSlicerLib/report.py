"""Report grounding in Slicer: report text -> finding rows, and how a finding's segment looks.

A finding's segment is named with a short form of its text (the full text is kept in a
segment tag) and coloured by its category (ReXGroundingCT's in the chest, the abdominal/pelvic set elsewhere), so findings of one kind share a
colour across cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from VoxTellCore.findings import OTHER, Finding, categorize, extract_findings
from VoxTellSlicerLib.terminology import normalizePrompt

FINDING_TEXT_TAG = "VoxTell.FindingText"
FINDING_CATEGORY_TAG = "VoxTell.FindingCategory"
NAME_LENGTH = 40

# One colour per category (RGB, 0..1): focal findings in strong colours, diffuse ones paler.
CATEGORY_COLORS: dict[str, tuple[float, float, float]] = {
    "Honeycombing": (0.55, 0.35, 0.75),
    "Pneumothorax": (0.35, 0.80, 0.95),
    "Pleural Effusion/Thickening": (0.15, 0.40, 0.90),
    "Emphysema": (0.95, 0.85, 0.40),
    "Bronchiectasis": (0.90, 0.55, 0.20),
    "Bronchial Wall Thickening": (0.70, 0.40, 0.15),
    "Septal Thickening": (0.65, 0.80, 0.30),
    "Micronodules": (0.95, 0.50, 0.65),
    "Pulmonary Nodules/Masses": (0.90, 0.10, 0.15),
    "Ground-Glass Opacities": (0.25, 0.80, 0.55),
    "Linear Opacities": (0.55, 0.95, 0.95),
    "Atelectasis/Consolidation": (0.85, 0.25, 0.85),
    "Other Diffuse Findings": (0.75, 0.65, 0.50),
    "Other Focal Findings": (0.95, 0.65, 0.40),
    OTHER: (0.45, 0.60, 0.75),
    # abdominal and pelvic categories
    "Postsurgical/Device": (0.80, 0.80, 0.80),
    "Lymph Node": (0.40, 0.85, 0.20),
    "Vascular": (0.70, 0.05, 0.05),
    "Calculus": (1.00, 0.95, 0.10),
    "Duct/Collecting System Dilatation": (0.10, 0.70, 0.70),
    "Fluid Collection/Ascites": (0.30, 0.55, 1.00),
    "Osseous": (0.95, 0.90, 0.75),
    "Bowel/Mesentery": (0.80, 0.50, 0.40),
    "Organ Enlargement/Atrophy": (0.60, 0.30, 0.50),
    "Focal Organ Lesion": (1.00, 0.30, 0.00),
    "Diffuse Organ Change": (0.85, 0.75, 0.95),
    "Other Abdominal/Pelvic Finding": (0.50, 0.50, 0.30),
}
UNKNOWN_CATEGORY_COLOR = (0.6, 0.6, 0.6)


@dataclass(frozen=True)
class ReportFinding:
    """A finding to ground: its (possibly edited) text and its category."""

    text: str
    category: str


def reportFinding(item: Finding | Mapping | str) -> ReportFinding:
    """A ``Finding``, a table row (``{"text": ..., "category": ...}``) or plain text.

    Without a category (plain text, or a row whose category is empty) the text's own
    category is used, so an edited finding is coloured by what it now says.
    """
    if isinstance(item, str):
        text, category = item, ""
    elif isinstance(item, Mapping):
        text, category = str(item.get("text", "")), str(item.get("category") or "")
    else:
        text, category = item.text, item.category
    text = normalizePrompt(text)
    return ReportFinding(text, category or categorize(text)[0])


def reportFindings(items: Iterable[Finding | Mapping | str]) -> list[ReportFinding]:
    """The findings with text, in order (blank rows dropped)."""
    findings = [reportFinding(item) for item in items]
    return [finding for finding in findings if finding.text]


def categoryColor(category: str) -> tuple[float, float, float]:
    return CATEGORY_COLORS.get(category, UNKNOWN_CATEGORY_COLOR)


def shortName(text: str, limit: int = NAME_LENGTH) -> str:
    """``text`` cut at the last word boundary within ``limit`` characters, with an ellipsis."""
    text = normalizePrompt(text)
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[: limit + 1] else text[:limit]
    return cut.rstrip(" ,;:-") + "…"


def uniqueName(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``, ... whichever is not in ``taken`` (ignoring case)."""
    lowered = {existing.lower() for existing in taken}
    candidate, number = name, 1
    while candidate.lower() in lowered:
        number += 1
        candidate = f"{name} ({number})"
    return candidate


def extractReportFindings(text: str, includePriorReferences: bool = False) -> list[dict]:
    """Rows for the findings table: positive findings first, then negated ones (unselected).

    Each row: ``text``, ``category``, ``negated``, ``uncertain`` (the report hedges it: "possible
    nodule", "pneumonia?"), ``selected`` and ``sourceSentence``.
    """
    findings = extract_findings(text, includePriorReferences)
    ordered = [f for f in findings if not f.negated] + [f for f in findings if f.negated]
    return [
        {"text": f.text, "category": f.category, "negated": f.negated, "uncertain": f.uncertain,
         "selected": not f.negated, "sourceSentence": f.source_sentence}
        for f in ordered
    ]
