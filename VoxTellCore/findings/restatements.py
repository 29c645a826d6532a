"""One prompt per finding: whether a finding restates another (an impression repeating the findings).

A finding restates another when it is the same finding (the same head noun; in an abdominal or
pelvic structure also the same kind of finding in other words, or the diagnosis the other's
sentence interprets it as), in the structure the other names, with no place or size of its own.
The more specific of the two is kept.
"""

from __future__ import annotations

import re
from dataclasses import replace

from VoxTellCore.findings import cues
from VoxTellCore.findings.anatomy import (ABDOMEN_PELVIS, CHEST, VERTEBRA, region_of, structure_named_first,
                                          structures_in)
from VoxTellCore.findings.categories import head_phrase
from VoxTellCore.findings.finding import Finding
from VoxTellCore.findings.measurements import MEASUREMENT, normalise_measurements


def head_key(text: str) -> tuple[str, str]:
    """The head noun of a finding, shortened, and the ending that names its condition: the last finding noun
    before its location or measurement.

    "Mild centrilobular emphysema in both upper lobes" -> ("emphy", ""), "Deep endometriosis" -> ("endom",
    "osis"), "Right ovarian endometrioma" -> ("endom", "oma"); a device keeps its kind: "Nasogastric tube ..."
    -> ("nasogastric tube", "").
    """
    match = None
    for phrase in cues.PREPOSITION.split(text):  # the first noun phrase that names a finding
        matches = [m for m in cues.FINDING_NOUN.finditer(phrase) if not _ADJECTIVE.match(phrase, m.end())]
        if matches:
            match = matches[-1]
            break
    match = match or cues.ABNORMAL_MODIFIER.search(text)
    if not match:
        return text.lower(), ""
    words = re.sub(r"[-\s]+", " ", match.string[:match.end()].lower()).split()
    noun = re.sub(r"[-\s]+", " ", match.group(0).lower()).split()[-1]
    word = noun + re.match(r"\w*", match.string[match.end():]).group(0).lower()  # "fibros" -> "fibrosis"
    if word == noun:  # a whole word: "nodes" is "node", "masses" is "mass"
        noun = _PLURAL.sub("", noun)
    if cues.DEVICE_NOUN.match(noun) and len(words) > 1:
        return f"{words[-2]} {noun}", ""
    condition = _CONDITION_ENDING.search(word)
    return noun[:5], _CONDITIONS.get(condition.group(0), condition.group(0)) if condition else ""


# "Nodular surface contour": an adjective made of a finding word names no finding of its own.
_ADJECTIVE = re.compile(r"\w*ar\s+\w")
_PLURAL = re.compile(r"(?<=ss)es$|(?<![su])s$")


# Endings that tell conditions with the same stem apart: endometriosis is not an endometrioma.
_CONDITION_ENDING = re.compile(r"(?:osis|oses|itis|omas?|megaly|iasis|pathy|ectomy)$")
_CONDITIONS = {"oses": "osis", "omas": "oma"}


def same_head(finding: str, other: str) -> bool:
    """The same head noun, with no other condition ending ("fibrotic" is "fibrosis", "cholecystitis" is not
    "cholelithiasis")."""
    (stem, condition), (other_stem, other_condition) = head_key(finding), head_key(other)
    return stem == other_stem and (condition == other_condition or not (condition and other_condition))


def place_words(text: str) -> set[str]:
    """Where a finding is: location words anywhere, and the words of "in/of/at/along the ..." phrases."""
    text = _NOT_THERE.split(text)[0]  # "iron overload with sparing of the pancreas": not in the pancreas
    words = re.findall(r"[a-z0-9]+", text.lower())
    places = {cues.LOCATION_WORDS[w] for w in words if w in cues.LOCATION_WORDS}
    places |= {f"segment {n}" for n in re.findall(r"\bsegments? ([1-8][ab]?(?:[/-][1-8][ab]?)?)", text.lower())}
    places |= {m.group(0).lower() for m in re.finditer(VERTEBRA, text)}  # "L1" fractures are not the rib fractures
    places |= {half for half, words in BOWEL_HALVES.items() if words.search(text)}  # small bowel is not the colon
    for phrase in re.findall(r"\b(?:in|of|at|along|within|involving|encas\w*|surround\w*|"
                             r"(?:deep|medial|lateral|superior|inferior|anterior|posterior) to) the ([a-z0-9 -]+?)(?=$|"
                             r"[,;(]|\s(?:with|without|which|that|and|measuring|communicating|demonstrating|containing|extending|where|"
                             r"next|adjacent|near)\b)", text.lower()):
        places |= {cues.LOCATION_WORDS.get(w, w.rstrip("s")) for w in re.findall(r"[a-z0-9]+", phrase)
                   if w not in _NOT_PLACES}
    return places


BOWEL_HALVES = {"small bowel": re.compile(r"\b(?:small (?:bowel|intestin)|jejun|ile(?:um|al)\b|duoden)", re.IGNORECASE),
                 "large bowel": re.compile(r"\b(?:large bowel|colon|colonic|c(?:a)?ec(?:um|al)|sigmoid|rect(?:um|al))",
                                           re.IGNORECASE)}
_NOT_THERE = re.compile(r"\b(?:without|sparing)\b|,\s*with\b", re.IGNORECASE)
_NOT_PLACES = {"the", "and", "mm", "cm", "lobe", "lobes", "lung", "lungs", "now", "measuring", "gland", "glands",
               "of", "along", "in", "at", "on", "from", "to"}  # prepositions inside a place phrase


def sizes(text: str) -> set[float]:
    """Each measured value in millimetres: "5.6 x 5.4 cm" -> {56.0, 54.0}; "41 mm" and "4.1 cm" are one size."""
    return {round(float(value) * (10 if m["unit"][0].lower() == "c" else 1), 1)
            for m in MEASUREMENT.finditer(normalise_measurements(text))
            for value in re.findall(r"\d+(?:\.\d+)?", m["numbers"])}


def kinds(text: str, whole: bool = False) -> set[str]:
    """The kinds of finding `text`'s head phrase names (with `whole`, its whole text)."""
    part = text if whole else head_phrase(text)
    return {kind for kind, pattern in cues.FINDING_KINDS.items() if pattern.search(part)}


def same_kind(finding: str, other: str) -> bool:
    """The same head noun, or, in an abdominal or pelvic structure, the same kind of finding in other words."""
    if same_head(finding, other):
        return True
    abdominal = region_of(other) == ABDOMEN_PELVIS and region_of(finding) != CHEST
    return abdominal and bool(kinds(finding) & kinds(other))


def same_structure(finding: str, other: str) -> bool:
    """`finding` names no structure, or `other` names the one it is in too ("pericardial" is not "pleural";
    "bladder wall thickening next to the sigmoid" is not the sigmoid's)."""
    own = structure_named_first(finding)
    return own is None or own.name in {s.name for s in structures_in(other)}


def interpretations(statement: str) -> list[str]:
    """What a statement says its finding is: "... consistent with hepatic steatosis", ", likely a cyst"."""
    return [m.group(0) for m in (cues.INTERPRETATION_TAIL.search(statement), cues.HEDGED_ASIDE.search(statement)) if m]


def excluded_diagnoses(statement: str) -> list[str]:
    """What a statement says its finding may be: "...; invasion cannot be excluded"."""
    return [part for part in re.split(r"[;,]", statement)[1:] if cues.EXCLUSION.search(part)]


def interpreted(findings: list[Finding], text: str, new: list[Finding]) -> list[Finding]:
    """`new`, the findings of `text`, less those that only say what the abdominal or pelvic finding before may be
    ("Bladder wall thickening, cannot exclude a fistula"); that finding becomes uncertain. (In the chest, "opacity;
    cannot exclude pneumonia" stays two findings.)"""
    if not (findings and cues.EXCLUSION.search(text)) or findings[-1].negated \
            or findings[-1].organ_system != ABDOMEN_PELVIS:
        return new
    findings[-1] = replace(findings[-1], uncertain=True)
    return [finding for finding in new if not same_structure(finding.text, findings[-1].text)]


# "..., compressing the transplant ureter": the finding's effect on a neighbour.
_EFFECT_TAIL = re.compile(r",\s*(?:compressing|displacing|indenting|effacing|causing)\b.*$", re.IGNORECASE)
# "carcinoma ... with suspected serosal invasion (cT4a) and perigastric nodal disease (cN2)": an impression's summary
# of the spread its stages name, each a finding of its own in the findings.
_STAGED_SPREAD = re.compile(r"\s+(?:with|and)\s[^()]*\((?:c|p|yp|mr|u)?[TN]\d[a-d]?\)(?:\s+and\s[^()]*\("
                            r"(?:c|p|yp|mr|u)?[TN]\d[a-d]?\))*", re.IGNORECASE)
# "carcinoma with parametrial invasion ... and involvement of the upper vagina": an impression's summary of the
# spread, each part a finding of its own in the findings.
_SPREAD = re.compile(r"\s+with\s[^()]*?\b(?:invasion|involvement|extension|infiltration)\b.*$", re.IGNORECASE)
_MANY = re.compile(r"\b(?:innumerable|numerous|multiple|several|countless|myriad|scattered)\b", re.IGNORECASE)


def restates(finding: Finding, other: Finding) -> bool:
    """Whether `finding` says nothing `other` does not: same finding (or the diagnosis `other`'s sentence gives it:
    "Hepatic steatosis" after "The liver is diffusely hypoattenuating, consistent with hepatic steatosis"), no
    structure, place or size of its own."""
    if _MANY.search(finding.text) and not _MANY.search(other.text) and sizes(other.text):
        return False  # "innumerable nodules throughout the liver" are more than the 1.4 cm nodule in segment 8
    diagnoses = [other.text, *interpretations(other.source_sentence)]
    if other.organ_system == ABDOMEN_PELVIS:  # see `interpreted`
        diagnoses += excluded_diagnoses(other.source_sentence)
    text = _SPREAD.sub("", _STAGED_SPREAD.sub("", _EFFECT_TAIL.sub("", finding.text)))  # effects, spread: others
    return (finding.negated == other.negated and any(same_kind(text, diagnosis) for diagnosis in diagnoses)
            and same_structure(text, other.text)
            and place_words(text) <= place_words(other.text) and sizes(text) <= sizes(other.text))


# "The hematoma displaces the left kidney ...", "the left ureter is compressed by the hematoma": what a finding
# already reported does to its neighbours, said of it by name.
_EFFECT = re.compile(r"^(?:the|this) (?P<subject>[\w -]+?) (?:displaces|compresses|indents|effaces|exerts|causes)\b|"
                     r"\b(?:is|are)? ?(?:(?:displaced|compressed|indented|effaced|splayed|draped|stretched|pushed)"
                     r"(?: \w+ly| to the (?:right|left))?,? )+(?:by|around)(?: the margins of)? (?:the|this) "
                     r"(?P<agent>[\w -]+?)(?=\s+(?:without|with|and|which)\b|\s*[,;(]|$)", re.IGNORECASE)


def describes_effect(finding: Finding, findings: list[Finding]) -> bool:
    """Whether `finding` only tells what one of `findings` does ("The hematoma displaces the left kidney")."""
    effect = _EFFECT.search(finding.text)
    if not effect or finding.negated:
        return False
    cause = effect["subject"] or effect["agent"]
    return any(not earlier.negated and same_head(cause, earlier.text) and cues.FINDING_NOUN.search(cause)
               for earlier in findings)
