"""A finding's prompt names its structure: the organ of its heading goes into its text.

Under "Spleen:", "Mildly enlarged, measuring 14.5 cm" becomes "Mildly enlarged spleen,
measuring 14.5 cm"; under "Liver:", "2.3 cm observation in segment 7" becomes "2.3 cm
observation in segment 7 of the liver"; under "Kidneys:", "4 mm stone in the right lower
pole" takes the side of its sentence: "... of the right kidney". "Two lesions, 2.4 cm in
segment 8 and 1.1 cm in segment 5" is two findings, one per lesion.
"""

from __future__ import annotations

import re
from collections import Counter

from VoxTellCore.findings import cues
from VoxTellCore.findings.anatomy import (SIDE, SUBPART_WORDS, Organ, heading_organ, organ_named_in, region_of,
                                          structure_pattern, structures_in)
from VoxTellCore.findings.measurements import MEASUREMENT

# "in segment 7", "at the lower pole", "in the body and tail": a part of the organ that "of the <organ>" completes.
_PART_PHRASE = re.compile(r"\b(?:in|at|of|within|involving|along|near) (?:the )?(?:[\w/-]+ ){0,3}?"
                          rf"(?:{SUBPART_WORDS})\b(?:\s+(?:and|or)\s+(?:the\s+)?(?:\d\w?|(?:[\w/-]+ ){{0,3}}?"
                          rf"(?:{SUBPART_WORDS}))\b)?", re.IGNORECASE)
# A head that is only adjectives ("Enlarged", "Mildly enlarged", "Atrophic"): the organ is its noun.
_ADJECTIVES_ONLY = re.compile(
    r"^(?:(?:mild|mildly|moderate|moderately|severe|severely|marked|markedly|diffuse|diffusely|slight|slightly|"
    r"minimal|minimally|massive|massively|very|acute|chronic|heterogeneously)\s+)*"
    r"\w+(?:ed|ic|al|ous|ar|ive|ent)$", re.IGNORECASE)
_GENERIC_ORGAN = re.compile(r"^(?:the )?(?:gland|organ)\b", re.IGNORECASE)
# Findings inside an organ ("cyst in the liver") rather than of it ("atrophy of the pancreas").
_INSIDE = re.compile(r"(?:lesion|mass|nodule|cyst|stone|calculus|calculi|polyp|observation|focus|foci|fluid|"
                     r"collection|sludge|fibroid|\w+oma|area|anomaly)s?$", re.IGNORECASE)
# Words after which a finding's noun phrase has ended.
_PHRASE_END_WORDS = ("in|of|at|on|along|within|involving|measuring|with|without|and|which|that|"
                     "demonstrating|showing|containing|to")
_NOUN_PHRASE_END = re.compile(r"\s+(?:deep|medial|lateral|superior|inferior|anterior|posterior)(?:\s+and\s+\w+)?\s+to\s+|"
                              rf"\s+(?:{_PHRASE_END_WORDS})\s+|,|;|\(", re.IGNORECASE)
# "18 mm flat (carpet-like) lesion": an aside inside the noun phrase, which goes on after it.
_ASIDE_INSIDE = re.compile(rf"\([^()]*\)\s+(?!(?:{_PHRASE_END_WORDS})\b)[a-z]", re.IGNORECASE)
# "diverticulum" names the bowel unless the heading names another organ ("Bladder: 2 cm diverticulum").
_HOLLOW_ORGAN_FINDING = re.compile(r"\bdiverticul\w*", re.IGNORECASE)
# "the transplant", "the graft": a transplanted organ named by the heading it stands under.
_GRAFT = re.compile(r"\bthe (?:transplant|graft|allograft)\b(?!\s*(?:kidney|liver|pancreas|renal|ureter))",
                    re.IGNORECASE)
_PLURAL_ENDINGS = (("calculi", "calculus"), ("metastases", "metastasis"), ("foci", "focus"), ("es", "e"), ("s", ""))


_OWN_HEAD_END = re.compile(r",|\s(?:arising|extending|towards)\s", re.IGNORECASE)


def with_organ(text: str, organ: Organ | None) -> str:
    """`text` naming the heading's organ, unless its head (up to the first comma) names a structure of its own."""
    head = _OWN_HEAD_END.split(text, maxsplit=1)[0]  # "mass arising from the wall and extending towards the ureter"
    if organ is None:
        return text
    named = structures_in(head if organ.structure.name == "bowel" else _HOLLOW_ORGAN_FINDING.sub("", head))
    if organ.structure in named:
        return with_heading_side(text, organ)
    if named:
        return text  # "free fluid in the right paracolic gutter" under "Bowel:" names its own place
    phrase = organ.phrase
    side = SIDE.search(text)
    if organ.structure.paired and phrase == organ.structure.name and side and side.group(1).lower() in ("right", "left"):
        phrase = f"{side.group(1).lower()} {phrase}"
    graft = _GRAFT.search(text)
    if graft:  # "collection at the lower pole of the transplant" under "Transplant kidney"
        return f"{text[:graft.end()]} {organ.structure.name}{text[graft.end():]}"
    if _GENERIC_ORGAN.match(text):  # "The gland is enlarged" under "Prostate:"
        return _GENERIC_ORGAN.sub(f"The {phrase}", text, count=1)
    part = _PART_PHRASE.search(head)
    if part:
        return f"{text[:part.end()]} of the {phrase}{text[part.end():]}"
    end = noun_phrase_end(text)
    noun_phrase, rest = text[:end], text[end:]
    if organ.part:  # under "Segment 2:"
        return f"{noun_phrase} in {organ.part} of the {phrase}{rest}"
    if _ADJECTIVES_ONLY.match(noun_phrase.strip()):
        return f"{noun_phrase} {phrase}{rest}"
    preposition = "in" if _INSIDE.search(noun_phrase.strip()) else "of"
    return f"{noun_phrase} {preposition} the {phrase}{rest}"


def without_adjective_comma(text: str) -> str:
    """"Ulcerated, avidly enhancing mural mass ..." -> "Ulcerated avidly enhancing mural mass ...": a comma between
    adjectives of one noun phrase does not end it ("Enlarged, measuring 14.5 cm" keeps its comma)."""
    first, comma, rest = text.partition(", ")
    next_piece = re.split(r",|\s(?:in|of|at|along|with|measuring)\s", rest, maxsplit=1)[0]
    if comma and _ADJECTIVES_ONLY.match(first) and cues.FINDING_NOUN.search(next_piece) \
            and not MEASUREMENT.search(next_piece) and not next_piece.lower().startswith(("measuring", "with")):
        return f"{first} {rest}"
    return text


def with_heading_side(text: str, organ: Organ) -> str:
    """Under "Right kidney:", "Perinephric stranding" -> "Right perinephric stranding": the heading's side."""
    side = SIDE.match(organ.phrase)
    if not side or SIDE.search(text):
        return text
    start = structure_pattern(organ.structure).search(text).start()
    side_word = side.group(1).lower() if start else side.group(1).capitalize()
    return f"{text[:start]}{side_word} {text[start].lower()}{text[start + 1:]}"


# "Small amount | of free fluid": a quantity is not the noun of its phrase.
_QUANTITY_END = re.compile(r"\b(?:amount|volume|quantity|number|pockets?|locules?)$", re.IGNORECASE)


def noun_phrase_end(text: str) -> int:
    """Where the noun phrase that starts `text` ends; never after an adjective ("intramural | and subserosal") or
    a quantity ("small amount | of free fluid")."""
    for end in _NOUN_PHRASE_END.finditer(text):
        word = end.group(0).strip().lower()
        before = text[:end.start()]
        if not ((word == "and" and (cues.ADJECTIVE_END.search(before) or cues.SEQUENCE_END.search(before)))
                or (word == "of" and _QUANTITY_END.search(before))
                or (word == "to" and before.lower().endswith(" up"))  # "thickening up to 9 mm"
                or (word == "(" and _ASIDE_INSIDE.match(text, end.start()))):
            return end.start()
    return len(text)


# "Two hypoattenuating lesions, 2.4 cm in segment 8 and 1.1 cm in segment 5": one finding per listed lesion.
_ENUMERATED = re.compile(r"^(?P<head>(?:two|three|four|\d)\s+[\w -]*?s)(?:\s+(?:are|were)\s+(?:present|seen|noted))?"
                         r",?\s+(?P<items>.+)$", re.IGNORECASE)
_ITEM = re.compile(rf"(?P<size>{MEASUREMENT.pattern})\s+(?P<place>(?:in|at|within) (?:the )?[\w/ -]+?)"
                   r"(?=\s*,|\s+and\s+|$)", re.IGNORECASE)
# "..., one in segment 4 measuring 8 mm and one in segment 7 measuring 6 mm"
_ONE_ITEM = re.compile(rf"\bone\s+(?P<place>(?:in|at|within) (?:the )?[\w/ -]+?),?\s+measuring\s+"
                       rf"(?P<size>{MEASUREMENT.pattern})", re.IGNORECASE)


_SIZE = r"\d+(?:\.\d+)?\s*(?:mm|cm)"
# "Two lesions in segments 4 and 7 measuring 1.2 cm and 0.9 cm": places and sizes listed side by side.
_PAIRED = re.compile(rf"^(?P<head>(?:two|2)\s+[\w -]*?s)\s+in\s+(?:the\s+)?segments\s+(?P<a>\w+)\s+and\s+(?P<b>\w+),?"
                     rf"\s+measuring\s+(?P<size_a>{_SIZE})\s+and\s+(?P<size_b>{_SIZE})(?P<rest>.*)$",
                     re.IGNORECASE)


def split_enumeration(statement: str) -> list[str]:
    """The statements of a counted list of sized, placed findings, or [statement]."""
    paired = _PAIRED.match(statement)
    if paired:
        noun = _singular(paired["head"].split(maxsplit=1)[1])
        return [f"{paired[size]} {noun} in segment {paired[place]}{paired['rest']}"
                for place, size in (("a", "size_a"), ("b", "size_b"))]
    match = _ENUMERATED.match(statement)
    items = (list(_ITEM.finditer(match["items"])) or list(_ONE_ITEM.finditer(match["items"]))) if match else []
    if len(items) < 2:
        return [statement]
    noun = _singular(match["head"].split(maxsplit=1)[1])
    return [f"{item['size']} {noun} {item['place']}" for item in items]


def _singular(noun: str) -> str:
    for plural, singular in _PLURAL_ENDINGS:
        if noun.endswith(plural):
            return noun[: len(noun) - len(plural)] + singular
    return noun


_LIVER_SEGMENT = re.compile(r"\bsegments? [1-8][ab]?\b", re.IGNORECASE)


def segment_organ(text: str) -> Organ | None:
    """The liver, for a finding "in segment 4" that names no organ: numbered segments are the liver's (Couinaud)."""
    return heading_organ("liver") if _LIVER_SEGMENT.search(text) and not structures_in(text) else None


# "... of the hepatic flexure and small volume free fluid": free fluid or air is in the peritoneum, not in that organ.
FREE_FLUID = re.compile(r"\bfree (?:intraperitoneal )?(?:fluid|air)\b", re.IGNORECASE)


def finding_organ(text: str, heading: Organ | None, separator: str, previous: str) -> Organ | None:
    """The organ `text` is in: what follows "with" or "and" is in the organ named before it ("The liver is enlarged
    with diffuse fatty infiltration"; under "Hepatobiliary:", "The gallbladder is distended with wall thickening"),
    else in the heading's organ, else a numbered segment's liver."""
    joined = separator.strip(" ,").lower() in ("with", "and")  # also "... with fat stranding and multiple diverticula"
    before = organ_named_in(previous) if joined and not FREE_FLUID.search(text) else None
    if before and not (heading and before.structure == heading.structure):
        return before
    return heading or segment_organ(text)


_LEADING_SIDE = re.compile(r"^(?:there (?:is|are) )?(?:(?:a|an|the|mild|moderate|severe|small|large)\s+)?"
                           r"(right|left|bilateral)\b", re.IGNORECASE)


def with_shared_side(text: str, separator: str, previous: str) -> str:
    """"Moderate left hydronephrosis and hydroureter": the hydroureter is on the left too."""
    if SIDE.search(text) or separator.strip(" ,").lower() != "and":
        return text
    side = _LEADING_SIDE.match(previous.strip())
    return f"{side.group(1)} {text}" if side else text


_CONTAINS = re.compile(r"^(?:also )?(?:contains?|has|have|shows?|demonstrates?)\s+(?:an?\s+)?", re.IGNORECASE)
_SUBJECT = re.compile(r"^(?:the )?(?P<subject>[\w -]+?)\s+(?:is|are|was|were)\b", re.IGNORECASE)
_ITS_PART = re.compile(r"\bits (\w+) (?:portion|part|aspect|end|third)\b", re.IGNORECASE)


def with_subject(text: str, separator: str, previous: str) -> str:
    """"The common bile duct is dilated and contains a 7 mm stone in its distal portion": "7 mm stone in the distal
    common bile duct"."""
    verb, subject = _CONTAINS.match(text.strip()), _SUBJECT.match(previous.strip())
    if not (verb and subject) or separator.strip(" ,").lower() != "and":
        return text
    rest, subject = text.strip()[verb.end():], subject["subject"].lower()
    if _ITS_PART.search(rest):
        return _ITS_PART.sub(rf"the \1 {subject}", rest, count=1)
    return f"{rest} in the {subject}"


def report_region(sentences: list[tuple[str, Organ | None]]) -> str | None:
    """The body region most of a report's sentences are about (for findings that name no structure)."""
    regions = Counter(organ.structure.region if organ and organ.structure.region else region_of(sentence)
                      for sentence, organ in sentences)
    regions.pop(None, None)
    return regions.most_common(1)[0][0] if regions else None



# "MRI PELVIS - RECTAL CANCER STAGING": the organ of the tumour a report is about.
_SUBJECT_TUMOUR = re.compile(r"\b(?P<organ>[a-z]+) (?:cancer|carcinoma|adenocarcinoma|tumou?r)\b", re.IGNORECASE)
_TUMOUR = re.compile(r"\b(?:tumou?r|carcinoma|cancer)\b(?! (?:signal|deposit|thrombus))", re.IGNORECASE)


def report_tumour_organ(report: str) -> str | None:
    """The organ word of the tumour a report is about ("rectal"): the first one its title, history or findings
    name."""
    return next((m["organ"].lower() for m in _SUBJECT_TUMOUR.finditer(report) if structures_in(m["organ"])), None)


def with_tumour_organ(text: str, organ_word: str | None) -> str:
    """"Semi-annular tumour from 3 to 9 o'clock" in a rectal cancer report -> "Semi-annular rectal tumour ..."."""
    tumour = _TUMOUR.search(text)
    if not organ_word or not tumour or structures_in(text[:tumour.end()]):
        return text
    word = organ_word if tumour.start() else organ_word.capitalize()
    rest = text[tumour.start():]
    return f"{text[:tumour.start()]}{word} {rest[0].lower() if not tumour.start() else rest[0]}{rest[1:]}"
