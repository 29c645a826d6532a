"""Rule-based finding extraction: sections -> sentences -> one clause per finding -> Finding.

Shorthand is expanded and image references are removed first ("RUL (series 3, image 45)"
-> "right upper lobe"). Each sentence is cut into statements at ";" and ":",
interpretation ("consistent with ...", "..., likely atelectasis") is cut off, and each
statement is cut at "and", "but", "except", "with" and commas into clauses; a clause that
names no finding of its own ("6 mm in the right upper lobe", "both main bronchi"), a clause
that starts with a preposition, and a "with" clause that names no other kind of lung finding
are glued back to their neighbour, and a noun phrase is never cut after an adjective
("severe centrilobular | and paraseptal emphysema"). Each clause is then tidied into a short
phrase, its measurements normalised, and classified as negated/normal, uncertain, compared
with a prior study, and by category. A finding that restates an earlier one (an impression
repeating the findings) is merged into it, the more specific text kept (restatements.py), an impression that sums up
findings of the same organ in other words adds none (summaries.py), and a sentence that only tells what a finding
already reported does ("The hematoma displaces ...") or is ("Appearances are those of ...") is left out. In the abdomen and
pelvis, the organ of a heading goes into each finding's text and lists are cut into one
finding per structure (organs.py), a tumour naming no organ takes the organ of the report's cancer
("RECTAL CANCER STAGING"), and a diagnosis that "cannot be excluded" after a finding makes
that finding uncertain rather than being a finding of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from VoxTellCore.findings import cues
from VoxTellCore.findings.abbreviations import expand_abbreviations, strip_image_references
from VoxTellCore.findings.anatomy import (ABDOMEN_PELVIS, CHEST, HOLLOW_ORGANS, Organ, heading_organ, structure_named_first,
                                          structure_of, structures_in)
from VoxTellCore.findings.categories import (OTHER_ABDOMINAL, abdominal_category, categorize, is_abdominal,
                                             lung_category)
from VoxTellCore.findings.finding import Finding
from VoxTellCore.findings.measurements import MEASUREMENT, normalise_measurements
from VoxTellCore.findings.organs import (FREE_FLUID, noun_phrase_end, report_region, report_tumour_organ,
                                         finding_organ, split_enumeration, with_organ, with_shared_side, with_subject,
                                         with_tumour_organ, without_adjective_comma)
from VoxTellCore.findings.restatements import describes_effect, interpretations, interpreted, kinds
from VoxTellCore.findings.summaries import merge_finding
from VoxTellCore.findings.sentences import paragraph_sentences, report_parts, with_antecedent
from VoxTellCore.findings.tables import with_lesion_rows


@dataclass
class Clause:
    text: str
    separator: str  # the text that separated it from the previous clause ("" for the first)


class RuleBasedExtractor:
    """The default `Extractor`: offline keyword and pattern rules, no language model.

    Negated and normal statements are returned with `negated=True`, hedged ones with
    `uncertain=True`. Findings compared with a prior study ("stable", "new", "now measures")
    are returned with `prior_reference=True`; a statement about something that is no
    longer there ("previously seen effusion has resolved") is left out unless
    `include_prior_references`.
    """

    def __init__(self, include_prior_references: bool = False) -> None:
        self.include_prior_references = include_prior_references

    def extract(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        text = with_lesion_rows(strip_image_references(expand_abbreviations(text)))
        sentences = [(sentence, organ, paragraph_organ, summing_up) for part, summing_up in report_parts(text)
                     for sentence, organ, paragraph_organ in paragraph_sentences(part)]
        region = report_region([(sentence, organ) for sentence, organ, _, _ in sentences])
        tumour_organ = report_tumour_organ(text)  # "Tumour extends ..." in a rectal cancer report
        previous = ""
        findings_section: list[Finding] | None = None  # what an impression sums up
        for sentence, organ, paragraph_organ, summing_up in sentences:
            if summing_up and findings_section is None:
                findings_section = list(findings)
            sentence = with_antecedent(sentence, previous)  # "Three nodes. The largest, ..., measures 8 mm"
            if interprets_findings_before(findings, previous, sentence):
                previous = f"{previous} {sentence}"
                continue
            previous = sentence
            for finding in self.sentence_findings(sentence, organ, region):
                if finding.prior_reference and finding.negated and not self.include_prior_references:
                    continue  # only about the prior study
                if describes_effect(finding, findings):
                    continue  # "The hematoma displaces the kidney": what a finding already there does
                if not finding.negated:
                    finding = with_context_organ(finding, tumour_organ, paragraph_organ, sentence, findings)
                merge_finding(findings, finding, findings_section)
        return findings

    def sentence_findings(self, sentence: str, organ: Organ | None = None, region: str | None = None) -> list[Finding]:
        findings: list[Finding] = []
        place = None  # the location of the statement before, for a hedged diagnosis after ";"
        statement_findings: list[Finding] = []
        for number, statement in enumerate(split_statements(sentence)):
            if statement_findings and said_of_the_finding_before(statement):  # "two lesions; they may be metastases"
                findings[-len(statement_findings):] = [replace(f, uncertain=not f.negated) for f in statement_findings]
            if number and cues.ANAPHORIC_START.match(statement) and not MEASUREMENT.search(statement):
                continue  # "...; its distal branches fill via collaterals": more on the finding before
            tails = interpretations(statement)
            hedged_tail = any(cues.HEDGE.search(tail) for tail in tails)  # ", likely a cyst"
            shared_tail = any(cues.SHARED_TAIL.match(tail) for tail in tails)  # ", both suspicious for ..."
            statement = cues.HEDGED_ASIDE.sub("", cues.INTERPRETATION_TAIL.sub("", statement)).strip()
            if cues.CROSS_REFERENCE.search(statement):
                continue
            parts = split_enumeration(statement)
            statement_findings = []
            for part in parts:
                part_findings = self.statement_findings(part, sentence, organ, region)
                for number, finding in enumerate(part_findings):
                    if finding.uncertain and place and not finding.negated and not has_place(finding.text):
                        finding = replace(finding, text=f"{finding.text} {place}")
                    last = number == len(part_findings) - 1
                    if hedged_tail and not finding.negated and (len(parts) > 1 or shared_tail or last):
                        finding = replace(finding, uncertain=True)
                    statement_findings.append(finding)
            if all(finding.uncertain for finding in statement_findings):  # "...; invasion cannot be excluded"
                statement_findings = interpreted(findings, statement, statement_findings)
            findings += statement_findings
            place = location_of(statement) or place
        return findings

    def statement_findings(self, statement: str, sentence: str, organ: Organ | None = None,
                           region: str | None = None) -> list[Finding]:
        region = organ.structure.region if organ and organ.structure.region else region
        abdominal = is_abdominal(statement, region)
        clauses = split_clauses(front_location_last(statement, abdominal), abdominal=abdominal)
        about_prior_study = bool(cues.PRIOR_REFERENCE.match(statement))  # "Compared to prior, ..." covers all
        findings = []
        negation_carry = hedge_carry = False  # a leading "no" / "possible" still applies to a list
        for index, clause in enumerate(clauses):
            plain = without_hedges(clause.text)
            if abdominal and in_hollow_organ(clause.text, organ):  # "Partially distended, unremarkable" bladder
                plain = "normal" if cues.FILLING_OTHERWISE_NORMAL.search(statement) \
                    else cues.NORMAL_FILLING.sub("normal", plain)  # "Moderately distended, otherwise normal" too
            continues_list = carries_negation(clause)
            own_negation = is_negated(plain)
            negation_carried = not own_negation and negation_carry and continues_list
            negated = own_negation or negation_carried
            negation_carry = negated and (negation_carry or bool(cues.NEGATION_BEFORE.search(plain)))
            uncertain = is_hedged(clause.text) or (hedge_carry and continues_list)
            hedge_carry = uncertain
            if cues.NOT_AN_OBSERVATION.search(clause.text) or not (negated or names_finding(clause.text)):
                continue
            previous = clauses[index - 1] if index else None
            if abdominal and previous:
                clause.text = with_subject(with_shared_side(clause.text, clause.separator, previous.text),
                                           clause.separator, previous.text)
            text = tidy(with_borrowed_location(clauses, index))
            if not text:
                continue
            if negation_carried:
                text = f"No {text[0].lower()}{text[1:]}"
            elif not negated:
                before = previous.text if abdominal and previous else ""
                text = with_organ(text, finding_organ(text, organ, clause.separator, before))
            category, focal, organ_system = categorize(text, region)
            finding = Finding(
                text=text, category=category, focal=focal, negated=negated, source_sentence=sentence,
                organ_system=organ_system, uncertain=uncertain and not negated,
                prior_reference=about_prior_study or bool(cues.PRIOR_REFERENCE.search(clause.text)),
                structure=structure_of(text))
            # "Bladder wall thickening, cannot exclude a fistula": one finding, uncertain
            after_comma = clause.separator.strip() in (",", ", and")  # "..., and encasement cannot be excluded"
            findings += interpreted(findings, clause.text, [finding]) if after_comma else [finding]
        return findings


# "Transmural infarction cannot be excluded ...": a diagnosis of a few words that the findings before may be.
_EXCLUDED_DIAGNOSIS = re.compile(r"^\s*(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,3}[\w-]+\s+(?:cannot|can not|can't|could not)"
                                 r"\s+(?:be\s+)?(?:entirely\s+|completely\s+|fully\s+)?(?:excluded|ruled out)\b",
                                 re.IGNORECASE)


def _refers_back(sentence: str, before: list[Finding]) -> bool:
    """"The extravasated contrast enlarges and layers ..." after "6 mm focus of active contrast extravasation in the
    colon": a sentence whose subject is the finding before, saying more of it in its own structure, with no size."""
    sentence = re.sub(r"^(?:on|in) the [\w\s-]{0,30}?(?:phases?|images?|sequences?),?\s+", "", sentence,
                      flags=re.IGNORECASE)  # "On the portal venous phase the extravasated contrast ..."
    subject = re.match(r"^(?:the|this|these)\s+((?:[\w-]+\s+){0,2}[\w-]+)", sentence, re.IGNORECASE)
    if not subject or MEASUREMENT.search(sentence):
        return False
    stems = {word[:5].lower() for word in subject.group(1).split() if len(word) > 4}
    return any({word[:5].lower() for word in _finding_words(f.text)} & stems and {s.name for s in structures_in(sentence)}
               <= {s.name for s in structures_in(f.text)} for f in before)


def interprets_findings_before(findings: list[Finding], previous: str, sentence: str) -> bool:
    """Whether `sentence` only says more about the findings of the sentence before: what they are ("... a 1.4 cm
    nodule. This may represent ...", "Appearances are those of discitis"), how they look ("It has a thick enhancing
    wall", "The extravasated contrast enlarges ...") or what they may be ("Transmural infarction cannot be
    excluded"). It joins their sentence, so an impression naming the diagnosis restates them, and makes the last one
    uncertain when hedged. It adds no finding of its own."""
    hedged = said_of_the_finding_before(sentence)
    before = [i for i, f in enumerate(findings) if f.source_sentence == previous and not f.negated]
    interprets = cues.INTERPRETING_SUBJECT.match(sentence) and interpretations(sentence)
    describes = cues.ANAPHORIC_START.match(sentence) \
        and (not MEASUREMENT.search(sentence) or interpretations(sentence))  # "It has a thick wall"
    first = re.split(r"[;,]", sentence)[0]
    excluded = _EXCLUDED_DIAGNOSIS.match(first) and not cues.ANATOMY.search(first) \
        and findings and findings[-1].organ_system == ABDOMEN_PELVIS  # "Infarction cannot be excluded ..."
    if excluded or (describes and not before):
        return True  # a diagnosis the findings before may be; more on a finding merged away
    describes = describes or (before and _refers_back(sentence, [findings[i] for i in before]))
    if not before or not (hedged or interprets or describes):
        return False
    for index in before:
        findings[index] = replace(findings[index], source_sentence=f"{previous} {sentence}",
                                  uncertain=findings[index].uncertain or (hedged and index == before[-1]))
    return True


def _finding_words(text: str) -> list[str]:
    """The whole words that name findings in `text`: "a mature pseudocyst" -> ["pseudocyst"]."""
    return [re.match(r"[\w-]+", text[m.start():]).group(0) for m in cues.FINDING_NOUN.finditer(text)]


def context_structures(text: str, sentence: str, findings: list[Finding]) -> list[str]:
    """The structures a finding naming none may be in, most likely first: that of an earlier finding it names ("...
    in the inferior aspect of the hematoma"), then that of the finding before it in its sentence."""
    named = next((f.structure for f in reversed(findings) if f.structure and not f.negated
                  and any(re.search(rf"\bthe (?:[\w-]+ )?{re.escape(word)}\b", text, re.IGNORECASE)
                          for name in [f.text, *interpretations(f.source_sentence)] for word in _finding_words(name))),
                 None)
    same_sentence = [f.structure for f in findings if f.source_sentence == sentence and f.structure]
    before = [f.structure for f in findings[-1:] if f.structure and cues.ANAPHORIC_START.match(text)]  # "These loops"
    return ([named] if named else []) + same_sentence[-1:] + before


def with_context_organ(finding: Finding, tumour_organ: str | None, paragraph_organ: Organ | None, sentence: str,
                       findings: list[Finding]) -> Finding:
    """A positive finding naming its organ: a tumour naming none is in the report's cancer organ ("Tumour extends
    ..." in a rectal cancer report); another finding naming none is in a structure of its context
    (`context_structures`), else in its prose paragraph's organ. Free fluid is in no organ."""
    text = with_tumour_organ(finding.text, tumour_organ)
    if not structures_in(text) and not FREE_FLUID.search(text):
        context = [heading_organ(name) for name in context_structures(text, sentence, findings)] + [paragraph_organ]
        organ = next((o for o in context if o and o.structure.region != CHEST), None)
        text = with_organ(text, organ)
    return replace(finding, text=text, structure=structure_of(text))


def extract_findings(report_text: str, include_prior_references: bool = False) -> list[Finding]:
    """Findings of a radiology report, negated ones included (with `negated=True`)."""
    return RuleBasedExtractor(include_prior_references).extract(report_text)


# ---------------------------------------------------------------- statements and clauses
def split_statements(sentence: str) -> list[str]:
    """Cut at ";", at ":" after a lead-in ("As far as can be observed: ..."), but not after a label ("Lungs: clear"),
    and before ", and the X ..." after an interpretation, which would otherwise end with it ("..., in keeping with
    pancreatitis, and the duct is dilated")."""
    statements = []
    for part in re.split(r";\s*|(?<=\w),\s+and\s+(?=(?:the|there)\s)(?=[^,]*$)", sentence.rstrip(" .")):
        lead_in, colon, rest = part.partition(": ")
        statements += [lead_in, rest] if colon and len(lead_in.split()) > 3 else [part]
    return statements


def front_location_last(sentence: str, abdominal: bool = False) -> str:
    """"In the left lower lobe, there is a nodule" -> "a nodule in the left lower lobe"; "Right transition zone at
    the apex, 1.6 cm lesion" -> "1.6 cm lesion in the right transition zone at the apex"."""
    match = cues.FRONTED_LOCATION.match(sentence) or cues.INVERTED_LOCATION.match(sentence)
    if match:  # in the abdomen right after the finding's noun phrase, before its details
        rest, location = match["rest"], match["location"]
        end = noun_phrase_end(rest) if abdominal else len(rest)
        return f"{rest[:end]} {location[0].lower()}{location[1:]}{rest[end:]}"
    match = abdominal and cues.BARE_FRONTED_LOCATION.match(sentence)
    if match and structures_in(match["location"]) and not names_finding(match["location"]) \
            and not cues.NEGATION_BEFORE.match(match["location"]) \
            and names_finding(match["rest"]):
        location = match["location"]
        return f"{match['rest']} in the {location[0].lower()}{location[1:]}"
    return sentence


def names_finding(text: str) -> bool:
    """Whether `text` names a finding of its own; one it only places something by ("lateral to the mass") is not."""
    text = cues.LANDMARK.sub("", text)
    return bool(cues.FINDING_NOUN.search(text) or cues.ABNORMAL_MODIFIER.search(text))


def has_own_cue(text: str) -> bool:
    return any(pattern.search(text) for pattern in (cues.NEGATION_BEFORE, cues.NEGATION_AFTER, cues.NORMAL))


def stands_alone(text: str) -> bool:
    """Whether a clause is a finding of its own rather than a fragment of its neighbour."""
    return bool(cues.FINDING_NOUN.search(text) or (has_own_cue(text) and cues.ANATOMY.search(text)))


# Abdominal details that a "with" adds to the finding before it ("dilated appendix with wall thickening").
_DETAIL_CATEGORIES = {"Diffuse Organ Change", OTHER_ABDOMINAL}
_ENLARGEMENT = "Organ Enlargement/Atrophy"


_PLACE_PHRASE = re.compile(r"\b(?:at|along|of|in|within|around|involving) (?:the|both)\b", re.IGNORECASE)


def _bare(text: str) -> bool:
    """A short finding with no structure, place or size ("Wall thickening", "Bilateral subchondral sclerosis")."""
    return len(text.split()) <= 4 and not (structures_in(text) or cues.PLACE.search(text) or MEASUREMENT.search(text))


def glued_to_previous(previous: Clause, clause: Clause, abdominal: bool = False) -> bool:
    # in the abdomen "a dilated pancreatic duct" (a changed structure) is a finding of its own
    changed_structure = abdominal and bool(cues.ABNORMAL_MODIFIER.search(clause.text) and structures_in(clause.text))
    if not (stands_alone(clause.text) or changed_structure) or cues.PREPOSITION_START.match(clause.text.strip()):
        return True
    separator = clause.separator.strip(" ,").lower()
    if separator == "and" and cues.SEQUENCE_END.search(previous.text.rstrip()) \
            and cues.SEQUENCE_START.match(clause.text.strip()):
        return True
    if cues.ADJECTIVE_END.search(previous.text.rstrip()) and separator != "with":
        return True  # "severe centrilobular" + "and paraseptal emphysema" is one noun phrase
    if abdominal and separator == "and" and (cues.ENHANCEMENT_DETAIL.match(clause.text.strip())
                                             or cues.ENHANCEMENT_DETAIL.fullmatch(previous.text.strip())):
        return True  # "thickening and enhancement", "hypoenhancement and thickening of the cecum": one finding
    if abdominal and separator in ("", "with") and cues.IMAGING_FEATURE.match(clause.text.strip()) \
            and names_finding(previous.text) and not (structures_in(clause.text) or cues.LESION.search(clause.text)):
        return True  # "lesion, ..., arterial hyperenhancement without washout", "fluid, simple density": how it looks
    if abdominal and separator == "and" and cues.IMAGING_FEATURE.match(clause.text.strip()) \
            and cues.IMAGING_WORD.search(previous.text) and names_finding(previous.text) \
            and not (structures_in(clause.text) or cues.LESION.search(clause.text)):
        return True  # "focus with restricted diffusion and hypointensity in the hepatobiliary phase": how it looks
    if abdominal and separator in ("with", "and") and cues.LESION_FEATURE.match(clause.text.strip()) \
            and cues.LESION.search(previous.text) and not structures_in(clause.text):
        return True  # "mass with coarse calcification and radiating strands" is one lesion
    if abdominal and separator == "and" and cues.STRANDING.search(previous.text) \
            and abdominal_category(clause.text).name in _DETAIL_CATEGORIES \
            and set(structures_in(clause.text)) <= set(structures_in(previous.text)):
        return True  # "perinephric stranding and thickening of Gerota fascia": one sign in the same fat
    if abdominal and separator == "and" and cues.STRANDING.search(clause.text) \
            and cues.SURROUNDING_FAT.search(clause.text) and not structures_in(clause.text):
        return True  # "fluid in the hernia sac and stranding of the surrounding fat": around the same finding
    if abdominal and separator == "and" and _bare(previous.text) and not MEASUREMENT.search(clause.text) \
            and (cues.STRANDING.search(clause.text) or _PLACE_PHRASE.search(clause.text)):
        return True  # "Wall thickening and stranding at the anastomosis", "sclerosis and erosions of the joints"
    if abdominal and separator == "and" and " with " in previous.text:
        # "dilated appendix with wall thickening and surrounding fat stranding", "enlarged pancreas with a featureless
        # contour and a hypoattenuating peripancreatic halo": the list of details, or of how it looks, goes on
        looks = cues.IMAGING_WORD.search(clause.text) and not cues.LESION.search(clause.text) \
            and set(structures_in(clause.text)) <= set(structures_in(previous.text))
        return bool(looks) or abdominal_category(clause.text).name in _DETAIL_CATEGORIES
    if separator == "with":
        # "consolidation with air bronchograms" is one finding, "mass with traction bronchiectasis" two.
        if has_own_cue(clause.text):
            return False  # "patent, with no obstructing lesion"
        before, after = lung_category(previous.text), lung_category(clause.text)
        if abdominal:
            # "obstructing calculus with hydronephrosis" is two findings, "aneurysm with mural thrombus" one
            before_kind, after_kind = abdominal_category(previous.text).name, abdominal_category(clause.text).name
            if "varices" in kinds(clause.text) - kinds(previous.text):
                return False  # "thrombus with collateral veins": the collaterals are a finding of their own
            if after_kind in _DETAIL_CATEGORIES:  # but "enlarged liver with diffuse fatty infiltration" is two
                return not (before_kind == _ENLARGEMENT and after_kind == "Diffuse Organ Change")
            if before_kind == OTHER_ABDOMINAL and structures_in(clause.text) \
                    and set(structures_in(clause.text)) <= set(structures_in(previous.text)):
                return True  # "perinephric stranding with nodules in the perinephric fat" is one sign
            return before_kind == after_kind
        return before is None or after is None or before == after
    return False


def split_clauses(sentence: str, abdominal: bool = False) -> list[Clause]:
    """Cut a sentence into clauses and glue fragments that name no finding back to a neighbour."""
    pieces = cues.CLAUSE_SEPARATOR.split(sentence)
    raw = [Clause(pieces[0], "")] + [Clause(text, separator)
                                     for separator, text in zip(pieces[1::2], pieces[2::2])]
    groups: list[Clause] = []
    for clause in raw:
        if groups and glued_to_previous(groups[-1], clause, abdominal):
            groups[-1].text += clause.separator + clause.text
        else:
            groups.append(Clause(clause.text, clause.separator))
    # a leading fragment: "Trachea and ..."; in the abdomen "The liver is enlarged" is a finding of its own
    leading_is_finding = names_finding if abdominal else stands_alone
    if len(groups) > 1 and not leading_is_finding(groups[0].text):
        first = groups.pop(0)
        groups[0] = Clause(first.text + groups[0].separator + groups[0].text, first.separator)
    return groups


# ---------------------------------------------------------------- negation and hedges
def without_hedges(text: str) -> str:
    """`text` without hedges and follow-up stability phrases, which are not negations ("no change in X")."""
    return cues.STABILITY.sub(" ", cues.HEDGE.sub(" ", text))


def is_hedged(text: str) -> bool:
    return bool(cues.HEDGE.search(text)) or text.rstrip().endswith("?")


def is_negated(text: str) -> bool:
    """A negative ("No effusion", "effusion is not seen") or normal ("heart size is normal") clause."""
    if cues.NEGATION_AFTER.search(text):  # "effusion is not seen", "the mass is well separated from the uterus"
        return True
    text = cues.LANDMARK.sub("", text)  # "is separate from the mass and normal"
    heads = [m.start() for m in (cues.FINDING_NOUN.search(text), cues.ABNORMAL_MODIFIER.search(text)) if m]
    head = min(heads, default=None)
    negation = cues.NEGATION_BEFORE.search(text)
    if negation and (head is None or negation.start() < head):
        return True
    if cues.NEGATION_AFTER.search(text) or cues.NORMAL_PREDICATE.search(text):
        return True
    return head is None and bool(cues.NORMAL.search(text))


def in_hollow_organ(text: str, organ: Organ | None) -> bool:
    """Whether `text` is about a hollow organ (or names none), whose filling is no finding: a collapsed bowel is
    normal, a collapsed vena cava or lobe is not."""
    structure = structure_named_first(text) or (organ.structure if organ else None)
    return structure is None or structure.name in HOLLOW_ORGANS


def carries_negation(clause: Clause) -> bool:
    """Whether "no" (or "possible") of the previous clause reaches this one ("No effusion, pneumothorax or mass")."""
    return not (has_own_cue(clause.text) or cues.NEW_POSITIVE_CLAUSE.match(clause.text.strip())
                or cues.NO_CARRY_SEPARATOR.search(clause.separator))


# ---------------------------------------------------------------- locations
def said_of_the_finding_before(statement: str) -> bool:
    """A hedge whose subject is a pronoun ("This may represent ...", "they are indeterminate and may be ...")."""
    return bool(cues.PRONOUN_START.match(statement) and is_hedged(statement))


def has_place(text: str) -> bool:
    return bool(cues.PLACE.search(text) or cues.SIDE.search(text))


def location_of(text: str) -> str | None:
    """The place a statement names, as a phrase: "in the left lower lobe"."""
    phrase = cues.LOCATION_PHRASE.search(text)
    if phrase:
        return phrase.group(0)
    lobe = cues.LOBE_NAME.search(text)
    return f"in the {lobe.group(0).lower()}" if lobe else None


def with_borrowed_location(clauses: list[Clause], index: int) -> str:
    """"Ground-glass opacities and consolidation in the right lower lobe": both are in the lower lobe.

    A short clause without any location borrows the trailing location of the next clause
    that has one, as long as the list goes on without a new article ("and a 5 mm nodule");
    a "with" clause ("cavity with surrounding consolidation") borrows from the clause before,
    and the clause before a "with" clause from it ("mass with bronchiectasis in the right upper lobe").
    """
    text = clauses[index].text
    if has_place(text):
        return text
    before_with = index + 1 < len(clauses) and clauses[index + 1].separator.strip(" ,").lower() == "with"
    if before_with:  # "mass with traction bronchiectasis in the right upper lobe": the mass is there too
        location = cues.LOCATION_PHRASE.search(clauses[index + 1].text)
        if location:
            return f"{text} {location.group(0)}"
    if len(tidy(text).split()) > 3:
        return text
    for following in clauses[index + 1:]:
        if cues.NEW_POSITIVE_CLAUSE.match(following.text.strip()):
            break
        location = cues.LOCATION_PHRASE.search(following.text)
        if location:
            return f"{text} {location.group(0)}"
    if index and clauses[index].separator.strip(" ,").lower() == "with":
        location = location_of(clauses[index - 1].text)
        if location:
            return f"{text} {location}"
    return text


# ---------------------------------------------------------------- tidying
_CONNECTOR = re.compile(r"^(?:and|but|while|whereas|however|also|or|with|except(?: for)?)\b,?\s*", re.IGNORECASE)
# "Unremarkable aside from a 1.2 cm lesion": the lead-in is not part of the finding.
_NORMAL_EXCEPT = re.compile(r"^(?:otherwise )?(?:unremarkable|normal|clear)(?: in size)?,? (?:aside|apart) from\s+|"
                            r"^(?:otherwise )?(?:unremarkable|normal|clear)(?: in size)?,? (?:except for|other than)\s+",
                            re.IGNORECASE)
_THERE_IS = re.compile(r"^there (?:is|are|was|were)\s+(?:also\s+)?", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:a|an)\s+(?!few\b)", re.IGNORECASE)
_IN_WHICH = re.compile(r"\b(?:in which|where)\s+(.+?)\s+(?:is|are|was|were)\s+(?:seen|noted|observed|detected)\b",
                       re.IGNORECASE)
# "in the pancreatic parenchymal phase", "on the portal venous phase": when it was seen, not where.
_PHASE = re.compile(r",?\s*\b(?:in|on|during|at) the (?:[\w-]+ ){0,2}phases?\b", re.IGNORECASE)
_SEEN = re.compile(r"\s+\b(?:is|are|was|were)\s+(?:also\s+)?(?:seen|noted|observed|detected|present|identified|"
                   r"visuali[sz]ed|demonstrated|evident)\b", re.IGNORECASE)


def tidy(text: str) -> str:
    """A clause as a short finding phrase: "There is a 3mm nodule ..." -> "3 mm nodule ..."."""
    text = " ".join(cues.PRIOR_COMPARISON.sub("", text).split()).strip(" ,;:.")
    text = _CONNECTOR.sub("", text)
    text = _THERE_IS.sub("", _NORMAL_EXCEPT.sub("", text))
    text = cues.LEADING_HEDGE.sub("", text)
    text = cues.TRAILING_HEDGE.sub("", text)
    text = _ARTICLE.sub("", text)
    text = _IN_WHICH.sub(r"with \1", text)
    text = _PHASE.sub("", _SEEN.sub("", text))
    text = cues.PRIOR_MEASUREMENT.sub("", normalise_measurements(text))
    text = without_adjective_comma(" ".join(text.split()).strip(" ,;:.?"))
    return text[:1].upper() + text[1:]
