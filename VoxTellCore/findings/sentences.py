"""Report text -> the sentences of its findings and impression.

With a Findings header, the Findings and Impression (Conclusion) sections are read.
Without one, everything except the technique, indication, comparison, history and
recommendation sections is read, so a report written as prose, as organ sections
("Lungs: ... Pleura: ...") or as an impression only still gives all its findings.
"""

from __future__ import annotations

import re

from VoxTellCore.findings.anatomy import ABDOMEN_PELVIS, CHEST, Organ, heading_organ, structures_in, sub_heading_organ
from VoxTellCore.findings.cues import ABNORMAL_MODIFIER, FINDING_NOUN, NEGATION_BEFORE, NORMAL
from VoxTellCore.findings.measurements import MEASUREMENT

# The names hospitals give these sections ("Report:" and "Opinion:" in British and Australian reports).
FINDINGS_SECTIONS = ("findings", "finding", "report")
GROUNDED_SECTIONS = FINDINGS_SECTIONS + ("impression", "impressions", "imp", "conclusion", "conclusions", "opinion",
                                         "summary", "interpretation", "diagnosis", "comment", "comments")
OTHER_SECTIONS = ("technique", "clinical", "clinical information", "clinical history", "clinical indication", "history",
                  "clinical notes", "clinical details", "clinical question", "clinical data", "request", "hx", "comp",
                  "indication", "indications", "comparison", "comparisons", "recommendation", "recommendations",
                  "procedure", "examination", "exam", "protocol", "reason for exam", "reason for examination",
                  "reason for study", "addendum", "quality", "image quality")
_HEADER = re.compile(
    r"^\s*(?P<name>" + "|".join(re.escape(s) for s in GROUNDED_SECTIONS + OTHER_SECTIONS) + r")\s*"
    r"(?::\s*|$)", re.IGNORECASE | re.MULTILINE)

ABBREVIATIONS = ("e.g.", "i.e.", "approx.", "vs.", "cf.", "etc.", "dr.", "no.", "fig.", "sec.", "resp.")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Organ sub-headings at the start of a line ("Lungs:", "Heart and mediastinum:", "Right upper lobe:") start
# a new sentence and are not part of it; one that names a place is kept as the location of its sentences.
_SUBHEADING = r"[A-Za-z][A-Za-z0-9 ,/&-]{0,40}(?:\([^()\n:]{1,40}\))?:\s"  # "Observation 3 (new):" too
_LEADING_SUBHEADING = re.compile(r"^\s*(?P<heading>" + _SUBHEADING[:-3] + r"):(?:\s+|$)")  # "KIDNEYS:" alone too
_PLACE = re.compile(r"\b(?:right|left|bilateral|lobes?|lingula|lungs?|hemithorax|base|bases|apex|apices)\b",
                    re.IGNORECASE)
# "LIVER", "TRANSPLANT KIDNEY (right iliac fossa)": a heading alone on its line (its aside is dropped).
_CAPITALS_HEADING = re.compile(r"^[ \t]*([A-Z][A-Z ,/&-]{1,40}[A-Z])(?:[ \t]*\([^()\n]*\))?[ \t]*$", re.MULTILINE)
# "liver", "biliary / gallbladder": a heading in small letters alone on its line after a blank line, text below it.
_LINE_HEADING = re.compile(r"(?:\A|(?<=\n))([ \t]*\n[ \t]*)([a-z][a-z ,/&-]{1,40}[a-z](?: \d{1,2})?)[ \t]*(?=\n[ \t]*\S)",
                           re.IGNORECASE)
_SIDE_ONLY = re.compile(r"^(?:right|left)$", re.IGNORECASE)
# A sentence that names its own place does not take the heading's.
OWN_PLACE = re.compile(r"\b(?:right|left|bilateral|both|bibasilar|bibasal|lobes?|lingula\w*|upper|middle|lower)\b",
                       re.IGNORECASE)


def report_sections(text: str) -> str:
    """The text to read: Findings and Impression with a Findings header, else all but the other sections."""
    return "\n\n".join(part for part, _ in report_parts(text))


def report_parts(text: str) -> list[tuple[str, bool]]:
    """The text to read (see `report_sections`) in parts, each with whether it sums up a Findings section before
    it (an impression, or a final read after a preliminary one)."""
    headers = list(_HEADER.finditer(text))
    if any(m["name"].lower() in FINDINGS_SECTIONS for m in headers):
        parts, findings_seen = [], False
        for header in headers:
            name = header["name"].lower()
            if name in GROUNDED_SECTIONS:
                parts.append((_section_text(text, header, headers), findings_seen))
            findings_seen = findings_seen or name in FINDINGS_SECTIONS
        return parts
    parts, position, summing_up = [], 0, False
    for header in headers:
        parts.append((text[position:header.start()], summing_up))
        if header["name"].lower() in GROUNDED_SECTIONS:  # "Conclusion:" after prose findings sums them up
            summing_up = any(part.strip() for part, _ in parts)
            position = header.end()
        else:
            position = _other_section_end(text, header, headers)
    parts.append((text[position:], summing_up))
    return [(part, summing_up) for part, summing_up in parts if part.strip()]


def _section_text(text: str, header: re.Match, headers: list[re.Match]) -> str:
    end = min([m.start() for m in headers if m.start() > header.start()], default=len(text))
    return text[header.end():end]


def _other_section_end(text: str, header: re.Match, headers: list[re.Match]) -> int:
    """Where an ignored section ends: with the line of its header when that line has text
    ("Comparison: CT 08/2024." followed by prose), else at the next header, blank line or sub-heading."""
    end = min([m.start() for m in headers if m.start() > header.start()], default=len(text))
    line_end = text.find("\n", header.end())
    line_end = end if line_end < 0 else min(line_end, end)
    if text[header.end():line_end].strip() and "\n" not in text[header.start():header.end()]:
        return line_end
    boundary = re.compile(r"\n\s*\n|\n(?=\s*" + _SUBHEADING + ")").search(text, header.end(), end)
    return boundary.start() if boundary else end


def heading_location(heading: str) -> str | None:
    """ "Right upper lobe" -> "in the right upper lobe", "right" -> "on the right"; None for "Lungs", "Pleura"."""
    heading = " ".join(heading.split()).lower()
    if re.fullmatch(r"(?:lung|pulmonary) (?:bases|apices)|(?:bibasilar|basal) lungs?", heading):
        return f"at the {heading}"  # "Lung bases: emphysematous changes"
    if not _PLACE.search(heading) or not re.search(r"\b(?:right|left|bilateral|lobes?|lingula)\b", heading):
        return None
    return f"on the {heading}" if _SIDE_ONLY.match(heading) else f"in the {heading}"


def split_sentences(text: str) -> list[str]:
    """Sentences of a text block (see `headed_sentences`)."""
    return [sentence for sentence, _ in headed_sentences(text)]


def headed_sentences(text: str) -> list[tuple[str, Organ | None]]:
    """Sentences of a text block, each with the organ of the heading it stands under (see `paragraph_sentences`)."""
    return [(sentence, organ) for sentence, organ, _ in paragraph_sentences(text)]


def paragraph_sentences(text: str) -> list[tuple[str, Organ | None, Organ | None]]:
    """Sentences of a text block, each with the organ of the heading it stands under.

    Splits after . ! ? followed by white space (so "1.5 cm" stays whole) unless the
    word before is an abbreviation like "e.g.", and at blank lines, list items and organ
    sub-headings. Other line breaks (hard-wrapped text) are joined. The items of a list ("- ...") under an
    organ heading alone on its line stand under it. A lung sub-heading that
    names a place ("Right upper lobe:", "L base:" once expanded) is added to each of its
    sentences that names no place of its own. An organ heading ("Spleen:", "Right kidney:")
    is returned with each sentence under it, up to the next heading or blank line; a heading
    such as "Observation 1:" keeps the organ of the heading before it.

    Each sentence also comes with the organ of its paragraph: its heading's, else the organ its first sentence is
    about ("The liver is of normal size. There is mild fatty infiltration.") or names alone.
    """
    sentences: list[tuple[str, Organ | None, Organ | None]] = []
    organ = list_organ = section_organ = None  # section: the organ of the last heading alone on its line
    finding_heading = list_finding_heading = ""  # "ANEURYSM SAC": a heading that names a finding
    text = _CAPITALS_HEADING.sub(r"\1:", text)  # "LIVER" alone on its line is "LIVER:"
    text = _LINE_HEADING.sub(r"\1\2:", "\n" + text)[1:]
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d{1,2}[.)])\s)|\n(?=\s*" + _SUBHEADING + ")", text):
        listed = bool(_BULLET.match(block))
        block = _without_size_label(" ".join(_BULLET.sub("", block).split()))
        heading = _LEADING_SUBHEADING.match(block)
        location = None
        if heading:
            organ = _organ_after(heading["heading"], organ) or _section_goes_on(heading["heading"], section_organ)
            finding_heading = " ".join(heading["heading"].split()) if FINDING_NOUN.search(heading["heading"]) else ""
            location = _lung_heading_location(heading["heading"], organ)
            block = block[heading.end():]
            list_organ = None if block.strip() else organ  # "KIDNEY:" alone on its line heads the list below
            section_organ = section_organ if block.strip() else organ
            list_finding_heading = "" if block.strip() else finding_heading
        elif listed:
            organ, finding_heading = list_organ, list_finding_heading
        else:
            organ = list_organ = None
            finding_heading = list_finding_heading = ""
        block = _BULLET.sub("", block)
        paragraph_organ, paragraph_started = None, False
        for sentence in _block_sentences(block):
            sentence = _without_size_label(sentence)
            inline = _LEADING_SUBHEADING.match(sentence)  # "... lobe. Pleura: left apical thickening."
            alone = _ORGAN_ALONE.match(sentence)
            alone_organ = heading_organ(alone["organ"]) if alone and not _SAYS_SOMETHING.search(sentence) else None
            if alone_organ:
                organ = alone_organ  # "Liver. Two hypodense lesions."
                continue
            place = location
            if inline:
                organ = _organ_after(inline["heading"], organ)
                sentence = sentence[inline.end():]
                place = _lung_heading_location(inline["heading"], organ) or location
            if place and not OWN_PLACE.search(sentence):
                sentence = f"{sentence.rstrip(' .')} {place}."
            if finding_heading and MEASUREMENT.search(sentence) \
                    and not FINDING_NOUN.search(_without_asides(sentence)):
                sentence = f"{finding_heading[0].upper()}{finding_heading[1:].lower()} {sentence[0].lower()}{sentence[1:]}"
            if not paragraph_started:
                paragraph_organ, paragraph_started = _paragraph_organ(sentence), True
            sentences.append((sentence, organ, organ or paragraph_organ))
    return [(s.strip(), o, p) for s, o, p in sentences if s.strip(" .;")]


# Headings that start a new topic rather than say more of the organ before them.
_NEW_TOPIC = re.compile(r"^(?:others?|other (?:organs|findings)|additional(?: findings)?|incidental(?: findings)?|"
                        r"miscellaneous|remaining|rest of|elsewhere|general)\b", re.IGNORECASE)
# "Liver.", "Lung bases.": an organ named alone, as a heading, in dictation ("Portal veins patent." says something).
_SAYS_SOMETHING = re.compile("|".join(p.pattern for p in (FINDING_NOUN, NORMAL, NEGATION_BEFORE, ABNORMAL_MODIFIER)),
                             re.IGNORECASE)
_ORGAN_ALONE = re.compile(r"^\s*(?P<organ>[A-Za-z]+(?: [A-Za-z]+){0,2})\s*\.?\s*$")

# "Maximal diameter (perpendicular to centerline): 6.3 cm": a label and the size it gives.
_LABELLED_SIZE = re.compile(r"^(?P<label>[A-Za-z][^:]{2,60}?)\s*:\s*(?P<size>\d+(?:\.\d+)?\s*(?:mm|cm)\b.*)$", re.IGNORECASE)

# "The liver is of normal size ...", "The spleen measures 13 cm": what a paragraph of prose is about.
_SUBJECT_ORGAN = re.compile(r"^(?:the )?(?P<organ>[a-z]+(?: [a-z]+)?) (?:is|are|measures?|shows?|demonstrates?|"
                            r"appears?|has|have|contains?)\b", re.IGNORECASE)


def _paragraph_organ(first_sentence: str) -> Organ | None:
    """What a paragraph of prose is about: the organ its first sentence is about ("The liver is of normal size"),
    else the one abdominal organ that sentence names ("Large bowel obstruction.")."""
    subject = _SUBJECT_ORGAN.match(first_sentence)
    if subject:
        return heading_organ(subject["organ"]) if len(structures_in(subject["organ"])) == 1 else None  # not a vein
    named = [s for s in structures_in(first_sentence) if s.region == ABDOMEN_PELVIS]
    return heading_organ(named[0].name) if len(named) == 1 and len(structures_in(first_sentence)) == 1 else None


def _without_asides(text: str) -> str:
    """`text` without what it says in brackets: "3.1 x 2.8 cm (pre-treatment lesion 2.9 cm)" -> "3.1 x 2.8 cm"."""
    return re.sub(r"\s*\([^()]*\)", "", text)


def _without_size_label(text: str) -> str:
    """"Maximal diameter (axial): 6.3 cm" -> "Maximal diameter (axial) 6.3 cm": the label of a size alone is no
    heading (an organ's is: "Spleen: 12 cm"; so is one before a finding: "Left: 3.4 cm mass")."""
    labelled = _LABELLED_SIZE.match(text)
    if not labelled or structures_in(labelled["label"]) \
            or FINDING_NOUN.search(_without_asides(labelled["size"])):
        return text
    return f"{labelled['label']} {labelled['size']}"


def _section_goes_on(heading: str, section_organ: Organ | None) -> Organ | None:
    """Under "LIVER" alone on its line, "Vascular:" or "Morphology:" still describe the liver."""
    return None if heading_organ(heading) or _NEW_TOPIC.match(heading) else section_organ


def _organ_after(heading: str, organ: Organ | None) -> Organ | None:
    """The organ of a new heading; "Observation 1:", "Left:", "Segment 2:", a finding that names no organ
    ("Endoleak:" under "ANEURYSM SAC") and a heading that names no structure ("Morphology:", "Size:") go on with
    the organ before it; "Vessels:", "Other:" end it."""
    heading = _without_asides(heading)  # "Observation 3 (new)"
    found = heading_organ(heading) or sub_heading_organ(heading, organ)
    if found or structures_in(heading) and not FINDING_NOUN.search(heading) or _NEW_TOPIC.match(heading):
        return found
    return organ


def _lung_heading_location(heading: str, organ: Organ | None) -> str | None:
    """The place of a lung heading ("Right upper lobe:"); an organ heading's place is its organ."""
    return heading_location(heading) if organ is None or organ.structure.region == CHEST else None


def _block_sentences(block: str) -> list[str]:
    sentences, start = [], 0
    for boundary in _SENTENCE_END.finditer(block):
        before = block[start:boundary.start()]
        if before.lower().endswith(ABBREVIATIONS) or re.search(r"\b[A-Za-z]\.$", before):
            continue
        sentences.append(before)
        start = boundary.end()
    sentences.append(block[start:])
    return sentences


# "Three suspicious nodes. The largest, at 6 o'clock, measures 8 mm": the largest of those nodes.
_SUPERLATIVE_START = re.compile(r"^the (?:largest|biggest|dominant one|smallest)(?=\s*,|\s+(?:measures|measuring|is)\b)",
                                re.IGNORECASE)
_COUNTED_PLURAL = re.compile(r"\b(?:two|three|four|five|six|several|multiple|numerous|\d+)\s+(?P<noun>(?:[\w-]+\s+){0,3}"
                             r"[\w-]+s)(?=\s*(?:[.,;:]|$)|\s(?:in|of|at|along|with|measuring|are|were)\b)",
                             re.IGNORECASE)


# "Within it, a small focus of ...": inside the finding of the sentence before.
_INSIDE_IT = re.compile(r"^(?:within|in|inside) (?:it|this|them)\b", re.IGNORECASE)


def with_antecedent(sentence: str, previous: str) -> str:
    """"The largest, at 6 o'clock, measures 8 mm" after "three suspicious nodes" -> "The largest of the suspicious
    nodes, at 6 o'clock, measures 8 mm"; "Within it, a focus of X, ..." after "Pelvic hematoma, 7.5 cm" -> "a focus of X
    within the pelvic hematoma, ...": a sentence that names its finding only by the sentence before."""
    inside, finding = _INSIDE_IT.match(sentence), FINDING_NOUN.search(previous)
    if inside and finding:
        words = re.findall(r"[A-Za-z-]+", previous[:finding.start()])[-2:]  # "extraperitoneal pelvic"
        noun = " ".join(words + [re.match(r"[\w-]+", previous[finding.start():]).group(0)]).lower()
        rest = sentence[inside.end():].strip(" ,.")
        head_end = (rest.find(",") + 1 or len(rest) + 1) - 1  # the place goes after the finding's first phrase
        return f"{rest[:head_end]} within the {noun}{rest[head_end:]}"
    start, counted = _SUPERLATIVE_START.match(sentence), _COUNTED_PLURAL.search(previous)
    if not (start and counted):
        return sentence
    return f"{sentence[:start.end()]} of the {counted['noun']}{sentence[start.end():]}"
