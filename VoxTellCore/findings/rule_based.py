"""Rule-based finding extraction: sections -> sentences -> one clause per finding -> Finding.

Each sentence of the Findings/Impression sections is cut into statements at ";" and ":",
interpretation ("consistent with ...") is cut off, and each statement is cut at "and",
"but" and commas into clauses; a clause that names no finding of its own ("6 mm in the right
upper lobe", "both main bronchi") is glued back to its neighbour, so only sentences
that really list several findings are split. Each clause is then tidied into a short
phrase, its measurements normalised, and classified as negated/normal, prior
reference, and category.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from VoxTellCore.findings import cues
from VoxTellCore.findings.categories import categorize
from VoxTellCore.findings.finding import Finding
from VoxTellCore.findings.measurements import normalise_measurements
from VoxTellCore.findings.sentences import report_sections, split_sentences


@dataclass
class Clause:
    text: str
    separator: str  # the text that separated it from the previous clause ("" for the first)


class RuleBasedExtractor:
    """The default `Extractor`: offline keyword and pattern rules, no language model.

    Negated and normal statements are returned with `negated=True`; statements that
    refer to a prior study are left out unless `include_prior_references`.
    """

    def __init__(self, include_prior_references: bool = False) -> None:
        self.include_prior_references = include_prior_references

    def extract(self, text: str) -> list[Finding]:
        findings: list[Finding] = []
        for sentence in split_sentences(report_sections(text)):
            for finding in self.sentence_findings(sentence):
                if (self.include_prior_references or not finding.prior_reference) \
                        and not any(repeats(finding, earlier) for earlier in findings):
                    findings.append(finding)
        return findings

    def sentence_findings(self, sentence: str) -> list[Finding]:
        findings = []
        for statement in split_statements(sentence):
            findings += self.statement_findings(cues.INTERPRETATION_TAIL.sub("", statement).strip(), sentence)
        return findings

    def statement_findings(self, statement: str, sentence: str) -> list[Finding]:
        clauses = split_clauses(front_location_last(statement))
        about_prior_study = bool(cues.PRIOR_REFERENCE.match(statement))  # "Compared to prior, ..." covers all
        findings = []
        carry = False  # a leading "no" still applies ("No effusion, pneumothorax or mass")
        for index, clause in enumerate(clauses):
            own_negation = is_negated(clause.text)
            negation_carried = not own_negation and carry and carries_negation(clause)
            negated = own_negation or negation_carried
            carry = negated and (carry or bool(cues.NEGATION_BEFORE.search(clause.text)))
            if cues.NOT_AN_OBSERVATION.search(clause.text) or not (negated or names_finding(clause.text)):
                continue
            following = clauses[index + 1] if index + 1 < len(clauses) else None
            text = tidy(with_borrowed_location(clause, following))
            if not text:
                continue
            if negation_carried:
                text = f"No {text[0].lower()}{text[1:]}"
            category, focal, organ_system = categorize(text)
            findings.append(Finding(
                text=text, category=category, focal=focal, negated=negated, source_sentence=sentence,
                organ_system=organ_system,
                prior_reference=about_prior_study or bool(cues.PRIOR_REFERENCE.search(clause.text))))
        return findings


def extract_findings(report_text: str, include_prior_references: bool = False) -> list[Finding]:
    """Findings of a radiology report, negated ones included (with `negated=True`)."""
    return RuleBasedExtractor(include_prior_references).extract(report_text)


def repeats(finding: Finding, earlier: Finding) -> bool:
    """Whether `finding` says nothing new over `earlier` (an impression repeating a finding)."""
    words = set(re.findall(r"[\w.-]+", finding.text.lower()))
    return finding.negated == earlier.negated and words <= set(re.findall(r"[\w.-]+", earlier.text.lower()))


def split_statements(sentence: str) -> list[str]:
    """Cut at ";" and at ":" after a lead-in ("As far as can be observed: ..."), but not after a label ("Lungs: clear")."""
    statements = []
    for part in re.split(r";\s*", sentence.rstrip(" .")):
        lead_in, colon, rest = part.partition(": ")
        statements += [lead_in, rest] if colon and len(lead_in.split()) > 3 else [part]
    return statements


def front_location_last(sentence: str) -> str:
    """"In the left lower lobe, there is a nodule" -> "a nodule in the left lower lobe"."""
    match = cues.FRONTED_LOCATION.match(sentence)
    if not match:
        return sentence
    location = match["location"]
    return f"{match['rest']} {location[0].lower()}{location[1:]}"


def names_finding(text: str) -> bool:
    return bool(cues.FINDING_NOUN.search(text) or cues.ABNORMAL_MODIFIER.search(text))


def has_own_cue(text: str) -> bool:
    return any(pattern.search(text) for pattern in (cues.NEGATION_BEFORE, cues.NEGATION_AFTER, cues.NORMAL))


def stands_alone(text: str) -> bool:
    """Whether a clause is a finding of its own rather than a fragment of its neighbour."""
    return bool(cues.FINDING_NOUN.search(text) or (has_own_cue(text) and cues.ANATOMY.search(text)))


def split_clauses(sentence: str) -> list[Clause]:
    """Cut a sentence into clauses and glue fragments that name no finding back to a neighbour."""
    pieces = cues.CLAUSE_SEPARATOR.split(sentence)
    raw = [Clause(pieces[0], "")] + [Clause(text, separator)
                                     for separator, text in zip(pieces[1::2], pieces[2::2])]
    groups: list[Clause] = []
    for clause in raw:
        if groups and not stands_alone(clause.text):
            groups[-1].text += clause.separator + clause.text
        else:
            groups.append(Clause(clause.text, clause.separator))
    if len(groups) > 1 and not stands_alone(groups[0].text):  # a leading fragment: "Trachea and ..."
        first = groups.pop(0)
        groups[0] = Clause(first.text + groups[0].separator + groups[0].text, first.separator)
    return groups


def is_negated(text: str) -> bool:
    """A negative ("No effusion", "effusion is not seen") or normal ("heart size is normal") clause."""
    heads = [m.start() for m in (cues.FINDING_NOUN.search(text), cues.ABNORMAL_MODIFIER.search(text)) if m]
    head = min(heads, default=None)
    negation = cues.NEGATION_BEFORE.search(text)
    if negation and (head is None or negation.start() < head):
        return True
    if cues.NEGATION_AFTER.search(text):
        return True
    return head is None and bool(cues.NORMAL.search(text))


def carries_negation(clause: Clause) -> bool:
    """Whether "no" of the previous clause reaches this one ("No effusion, pneumothorax or mass")."""
    return not (has_own_cue(clause.text) or cues.NEW_POSITIVE_CLAUSE.match(clause.text.strip())
                or cues.NO_CARRY_SEPARATOR.search(clause.separator))


def with_borrowed_location(clause: Clause, following: Clause | None) -> str:
    """"Ground-glass opacities and consolidation in the right lower lobe": both are in the lower lobe.

    A short clause without any location borrows the trailing location of the next clause,
    when that clause continues the list without an article of its own.
    """
    text = clause.text
    if (following is None or len(text.split()) > 3 or cues.ANATOMY.search(text) or cues.SIDE.search(text)
            or cues.NEW_POSITIVE_CLAUSE.match(following.text.strip())):
        return text
    location = cues.LOCATION_PHRASE.search(following.text)
    return f"{text} {location.group(0)}" if location else text


_CONNECTOR = re.compile(r"^(?:and|but|while|whereas|however|also|or|with)\b,?\s*", re.IGNORECASE)
_THERE_IS = re.compile(r"^there (?:is|are|was|were)\s+(?:also\s+)?", re.IGNORECASE)
_ARTICLE = re.compile(r"^(?:a|an)\s+(?!few\b)", re.IGNORECASE)
_IN_WHICH = re.compile(r"\b(?:in which|where)\s+(.+?)\s+(?:is|are|was|were)\s+(?:seen|noted|observed|detected)\b",
                       re.IGNORECASE)
_SEEN = re.compile(r"\s+\b(?:is|are|was|were)\s+(?:also\s+)?(?:seen|noted|observed|detected|present|identified|"
                   r"visuali[sz]ed|demonstrated|evident)\b", re.IGNORECASE)


def tidy(text: str) -> str:
    """A clause as a short finding phrase: "There is a 3mm nodule ..." -> "3 mm nodule ..."."""
    text = " ".join(text.split()).strip(" ,;:.")
    text = _CONNECTOR.sub("", text)
    text = _THERE_IS.sub("", text)
    text = _ARTICLE.sub("", text)
    text = _IN_WHICH.sub(r"with \1", text)
    text = _SEEN.sub("", text)
    text = normalise_measurements(" ".join(text.split()).strip(" ,;:."))
    return text[:1].upper() + text[1:]
