"""One prompt per finding across sections: an impression that sums up the findings section in other words.

Impressions restate findings with a broader diagnosis ("Acute cholecystitis" after a distended gallbladder with an
oedematous wall), several findings in one sentence, or sizes in other units. Such a finding adds no prompt of its
own when the findings section already has a finding in the same organ that it can be about (`sums_up`).
"""

from __future__ import annotations

import re
from dataclasses import replace

from VoxTellCore.findings import cues
from VoxTellCore.findings.categories import head_phrase
from VoxTellCore.findings.finding import LUNG_PLEURA, Finding
from VoxTellCore.findings.restatements import (BOWEL_HALVES, head_key, interpretations, kinds, place_words, restates,
                                               same_kind, sizes)


# Structures that hold many different findings of one kind: two nodes or two bones are not the same by place alone.
_MANY_PLACES = frozenset({"lymph node", "vessel", "bone", "soft tissue", "peritoneal cavity", "retroperitoneum",
                          "abdomen", "pelvis", "muscle", "abdominal wall", "surgical bed"})
# What an impression calls a finding it sums up: a disease or an injury rather than what the images show.
_DIAGNOSIS = re.compile(r"\b(?:\w+(?:itis|osis|pathy|iasis)|\w*carcinoma|cancer|malignan\w*|neoplas\w*|metasta\w*|"
                        r"infarct\w*|abscess\w*|infection|injur\w*|laceration|rupture|torsion|ischa?emi\w*|perforat\w*|"
                        r"obstruct\w*|disease|(?:\w+)?megaly|lymphoma|tumou?r)\b", re.IGNORECASE)


# Kinds of finding that are signs of a disease rather than things of their own (a lesion, a stone): a disease the
# impression names ("Acute cholecystitis") sums them up ("distended gallbladder with an oedematous wall").
_SIGNS = frozenset({"enlargement", "atrophy", "dilatation", "inflammation", "wall thickening", "ascites", "steatosis",
                    "cirrhosis"})


# "now exceeds 4 cm", "more than 1 cm": a threshold, not a size of the finding.
_THRESHOLD = re.compile(r"\b(?:exceeds?|exceeding|more than|greater than|less than|over|under|above|below)\s+"
                        r"\d+(?:\.\d+)?\s*(?:mm|cm)\b|[<>]\s*\d+(?:\.\d+)?\s*(?:mm|cm)\b", re.IGNORECASE)


def _without_side(structure: str) -> tuple[str, str]:
    side, _, name = structure.partition(" ")
    return (name, side) if side in ("left", "right") else (structure, "")


# Names of one space: free fluid "in the pelvis" and "in the pouch of Douglas" are in the same peritoneal cavity; a
# thrombus "of the mesenteric vein extending into the portal vein" is in one venous system.
_SPACES = (frozenset({"peritoneal cavity", "pelvis", "abdomen"}), frozenset({"vessel", "portal vein", "aorta"}))


def _same_organ(structure: str, other: Finding) -> bool:
    """`other` is in the organ `structure` names, on no other side (free fluid "between the bowel loops" is in the
    peritoneal cavity)."""
    if not other.structure:
        return False
    other_structure = "peritoneal cavity" if "ascites" in kinds(other.text) else other.structure
    (name, side), (other_name, other_side) = _without_side(structure), _without_side(other_structure)
    same = name == other_name or any({name, other_name} <= space for space in _SPACES)
    return same and not (side and other_side and side != other_side)


def sums_up(finding: Finding, findings_section: list[Finding]) -> bool:
    """Whether an impression's `finding` (not in the chest) sums up findings of the report's findings section in
    other words: findings in the same organ, with no size the findings section never gave, one of which is the same
    finding, the diagnosis its sentence gives, a finding of the same kind, one whose sentence names it, or (for a
    disease of no other kind: "Acute pyelonephritis" after a striated left kidney) any. In nodes, bones, vessels and
    other structures with many places, the same finding in the places it names."""
    if finding.negated or not finding.structure or finding.organ_system == LUNG_PLEURA:
        return False
    organ = [other for other in findings_section if not other.negated and _same_organ(finding.structure, other)]
    current = sizes(_THRESHOLD.sub("", cues.PRIOR_MEASUREMENT.sub("", finding.text)))  # "12 cm vs 8 cm", "exceeds 4 cm"
    if not organ or not current <= set().union(*(sizes(o.source_sentence) | sizes(o.text) for o in findings_section)):
        return False  # a size the findings never gave: a new finding
    own_kinds, stem = _kinds_named(finding.text), head_key(finding.text)[0]
    same = [other for other in organ if same_kind(finding.text, other.text) or own_kinds & _kinds_named(other.text)
            or any(same_kind(finding.text, diagnosis) for diagnosis in interpretations(other.source_sentence))]
    if _without_side(finding.structure)[0] in _MANY_PLACES:
        places, theirs = place_words(head_phrase(finding.text)), set().union(*(place_words(o.text) for o in same))
        if {"right", "left"} <= theirs:  # "bilateral psoas abscesses" after the right and the left one
            places -= {"both"}
        return bool(same) and places <= theirs
    named = re.compile(rf"\b{re.escape(stem)}", re.IGNORECASE)
    disease = bool(_DIAGNOSIS.search(head_phrase(finding.text)))
    agreeing = same + [other for other in organ if named.search(other.source_sentence)
                       or (disease and kinds(other.text) <= _SIGNS)]
    theirs = set().union(*(_exact_places(o.text) for o in agreeing))
    unstated = set() if theirs & _HALVES else _HALVES  # "these loops" may be the jejunum's
    return bool(agreeing) and _exact_places(finding.text) - unstated <= theirs


def _kinds_named(text: str) -> set[str]:
    """The kinds of finding `text`'s head phrase names, else its whole text ("Right common iliac and left inguinal
    lymphadenopathy")."""
    return kinds(text) or kinds(text, whole=True)


def _exact_places(text: str) -> set[str]:
    """The places that tell two findings of one organ apart: segments, parts of an organ, levels, vertebrae, the
    small bowel or the colon."""
    places = {place for place in place_words(text) if place in _EXACT_PLACE_WORDS or place[-1].isdigit()}
    places |= {word for word in _EXACT_PLACE_WORDS if re.search(rf"\b{word}\b", text, re.IGNORECASE)}
    segments = {place for place in places if place.startswith("segment")}
    for listed in re.findall(r"\bsegments? ([1-8][ab]?(?:\s*(?:/|-|,|and|or|&)\s*[1-8][ab]?)*)", text, re.IGNORECASE):
        segments |= {f"segment {number}" for number in re.findall(r"[1-8]", listed)}  # 4a is in segment 4
    return (places - segments) | {segment for segment in segments if re.fullmatch(r"segment [1-8]", segment)}


# (Sides are not among them: a paired organ's side is part of its structure, and in the liver a side may be a vein's.)
_HALVES = frozenset(BOWEL_HALVES)
_EXACT_PLACE_WORDS = frozenset({"upper", "lower", "middle", "head", "body", "tail", "neck", "uncinate"}) | _HALVES


def merge_finding(findings: list[Finding], finding: Finding, findings_section: list[Finding] | None = None) -> None:
    """Add `finding` unless it restates one already there, or, in an impression, sums up one of the findings
    section (`findings_section`); a more specific restatement replaces it."""
    for index, earlier in enumerate(findings):
        if restates(finding, earlier):
            return
        if restates(earlier, finding):  # the more specific words; the flag of the finding's own description
            findings[index] = replace(finding, uncertain=earlier.uncertain)
            return
    if findings_section and sums_up(finding, findings_section):
        return
    findings.append(finding)
