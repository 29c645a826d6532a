"""The Finding record and the Extractor seam that produces findings from report text."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

LUNG_PLEURA = "lung/pleura"
OTHER = "other"


@dataclass(frozen=True)
class Finding:
    """One observation from a radiology report.

    text: the finding as a short phrase, with its location and normalised measurements.
    category: one of the 14 ReXGroundingCT lung/pleura categories, one of the 12 abdominal/pelvic ones, or "other".
    focal: whether the category is a focal one (nodules, consolidation, ...) rather than diffuse.
    negated: a negative or normal statement ("No pleural effusion", "heart size is normal").
    source_sentence: the report sentence the finding came from.
    organ_system: "lung/pleura", "abdomen/pelvis" or "other".
    prior_reference: the finding is compared with a prior study ("stable", "new", "now measures 9 mm").
    uncertain: the report hedges it ("possible 3 mm nodule", "cannot exclude pneumonia", "pneumonia?").
    structure: the organ, vessel, bone or cavity the text names ("liver", "left kidney"), or None; its
        terminology entry is `VoxTellCore.terminology.segment_info(structure)`.
    """

    text: str
    category: str
    focal: bool
    negated: bool
    source_sentence: str
    organ_system: str
    prior_reference: bool = False
    uncertain: bool = False
    structure: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def reported(findings: list[Finding], negated: bool = False, prior: bool = False) -> list[Finding]:
    """The findings a user asked for: positive ones, plus negated ones (`negated`), plus those about something
    no longer there (`prior`: a resolved or removed finding of a prior study)."""
    return [f for f in findings if not f.negated or negated or (prior and f.prior_reference)]


@runtime_checkable
class Extractor(Protocol):
    """Anything that turns report text into findings (rules today, an LLM later)."""

    def extract(self, text: str) -> list[Finding]:
        ...
