"""Score a finding extractor against hand-written gold findings of radiology reports.

A gold set is a folder of report texts (``<id>.txt``) and a JSON file ``{id: {"positive":
[...], "negative": [...]}}``. A gold positive finding has ``head`` (word starts, ``|``
between alternatives: "nodul", "pleural effusion", "lymph node|adenopath"), ``location``
(words the prompt must keep, ``|`` between alternatives), ``size`` (a normalised
measurement such as "7 mm"), ``category``, ``uncertain`` and optionally ``optional`` (an
acceptable finding that recall does not require). A gold negative statement has ``head``
and optionally ``location``.

Matching. A predicted positive finding is *compatible* with a gold finding when its text
contains the gold head (at a word start, hyphens read as spaces), contains the gold size
when one is given (or no measurement at all: a restatement without it), and names no other side (left/right) or lobe level (upper/middle/lower)
than the gold location without also naming the gold's. Compatible pairs are matched one to
one, greedily: pairs with a required gold finding first, then those that keep the whole gold
location, then the size, then more location words. Then:

- recall: matched required gold findings / required gold findings;
- precision: predictions compatible with some gold finding / predictions (a second copy of
  a finding counts as correct);
- strict precision: matched predictions / predictions (a second copy is an error);
- negation errors: predictions compatible with no gold finding whose text contains the
  head (and location) of a gold negative statement;
- locations kept: matched gold findings with a location whose every location word (one
  alternative) is in the prediction / matched gold findings with a location;
- sizes kept: the same for the gold size;
- uncertain / category agreement: over the matched pairs;
- structures named: predictions whose text names the structure they are in (an organ, vessel, bone,
  lymph node or cavity of `VoxTellCore.findings.anatomy`, or a word that implies one: "ascites",
  "cholelithiasis") / predictions. A prompt without one ("Enlarged", "Diffuse signal loss") asks
  the model to segment a word.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from VoxTellCore.errors import InputError
from VoxTellCore.findings.anatomy import names_structure

SIDES = ("left", "right")
LEVELS = ("upper", "middle", "lower")
_SYNONYMS = {"bilateral": "both", "bilaterally": "both"}
_STOPWORDS = {"the", "of", "in", "and", "at", "a"}


def normalise(text: str) -> str:
    words = re.sub(r"[-/]", " ", text.lower()).split()
    return " ".join(_SYNONYMS.get(word, word) for word in words)


def _has_word_start(text: str, stem: str) -> bool:
    return re.search(rf"\b{re.escape(stem)}", text) is not None


def head_matches(head: str, text: str) -> bool:
    text = normalise(text)
    return any(_has_word_start(text, normalise(alternative)) for alternative in head.split("|"))


def has_size(size: str, text: str) -> bool:
    return bool(size) and re.search(rf"(?<![\d.]){re.escape(normalise(size))}\b", normalise(text)) is not None


def size_agrees(size: str, text: str) -> bool:
    """No gold size, the gold size in the text, or no size in the text at all (a restatement without it)."""
    return not size or has_size(size, text) or not re.search(r"\d\s*(?:mm|cm)\b", text, re.IGNORECASE)


def _location_words(alternative: str) -> list[str]:
    words = [w for w in normalise(alternative).split() if w not in _STOPWORDS]
    return [w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words]


def location_score(location: str, text: str) -> tuple[bool, int]:
    """(every word of one location alternative is in `text`, most words found for any alternative)."""
    if not location:
        return True, 0
    text = normalise(text)
    best = (False, 0)
    for alternative in location.split("|"):
        words = _location_words(alternative)
        found = sum(_has_word_start(text, word) for word in words)
        best = max(best, (found == len(words), found))
    return best


def conflicts(location: str, text: str) -> bool:
    """Whether `text` names another side or lobe level than `location`, and not the location's own."""
    gold, predicted = set(normalise(location).split()), set(normalise(text).split())
    for group in (SIDES, LEVELS):
        gold_words = gold.intersection(group)
        if gold_words and predicted.intersection(group) and not gold_words & predicted:
            return True
    return False


@dataclass(frozen=True)
class Predicted:
    text: str
    category: str
    uncertain: bool


@dataclass
class ReportScore:
    report: str
    n_gold: int = 0
    n_predicted: int = 0
    matched: int = 0
    compatible: int = 0  # predictions compatible with some gold finding (copies included)
    negation_errors: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    size_checked: int = 0
    size_kept: int = 0
    location_checked: int = 0
    location_kept: int = 0
    lost_locations: list[str] = field(default_factory=list)
    uncertain_agree: int = 0
    category_agree: int = 0
    wrong_flags: list[str] = field(default_factory=list)
    unnamed_structures: list[str] = field(default_factory=list)


def compatible(gold: dict, text: str) -> bool:
    return (head_matches(gold["head"], text) and size_agrees(gold.get("size", ""), text)
            and not conflicts(gold.get("location", ""), text))


def score_report(report: str, predicted: Sequence[Predicted], gold: dict) -> ReportScore:
    positives, negatives = gold["positive"], gold.get("negative", [])
    score = ReportScore(report, n_gold=sum(not g.get("optional") for g in positives), n_predicted=len(predicted))
    pairs = []
    for p, prediction in enumerate(predicted):
        for g, finding in enumerate(positives):
            if compatible(finding, prediction.text):
                kept, words = location_score(finding.get("location", ""), prediction.text)
                sized = has_size(finding.get("size", ""), prediction.text)
                pairs.append(((not finding.get("optional"), kept, sized, words), -p, -g, p, g))
    used_p, used_g = set(), set()
    for _, _, _, p, g in sorted(pairs, reverse=True):
        if p in used_p or g in used_g:
            continue
        used_p.add(p)
        used_g.add(g)
        finding, prediction = positives[g], predicted[p]
        score.matched += not finding.get("optional")
        if finding.get("size"):
            score.size_checked += 1
            score.size_kept += has_size(finding["size"], prediction.text)
        if finding.get("location"):
            score.location_checked += 1
            if location_score(finding["location"], prediction.text)[0]:
                score.location_kept += 1
            else:
                score.lost_locations.append(f"{prediction.text!r} (gold location {finding['location']!r})")
        score.uncertain_agree += prediction.uncertain == bool(finding.get("uncertain"))
        score.category_agree += prediction.category == finding.get("category")
        if prediction.uncertain != bool(finding.get("uncertain")) or prediction.category != finding.get("category"):
            score.wrong_flags.append(f"{prediction.text!r}: uncertain {prediction.uncertain}, {prediction.category!r}; "
                                     f"gold {bool(finding.get('uncertain'))}, {finding.get('category')!r}")
    compatible_predictions = {p for _, _, _, p, _ in pairs}
    score.compatible = len(compatible_predictions)
    for p, prediction in enumerate(predicted):
        if p in used_p:
            continue
        if p in compatible_predictions:
            score.duplicates.append(prediction.text)
        elif any(head_matches(n["head"], prediction.text) and location_score(n.get("location", ""), prediction.text)[0]
                 for n in negatives):
            score.negation_errors.append(prediction.text)
            score.false_positives.append(prediction.text)
        else:
            score.false_positives.append(prediction.text)
    score.missed = [g["text"] for i, g in enumerate(positives) if i not in used_g and not g.get("optional")]
    score.unnamed_structures = [p.text for p in predicted if not names_structure(p.text)]
    return score


@dataclass(frozen=True)
class SetScore:
    reports: int
    gold: int
    predicted: int
    recall: float
    precision: float
    strict_precision: float
    negation_errors: int
    locations_kept: float
    sizes_kept: float
    uncertain_agreement: float
    category_agreement: float
    structures_named: float


def summarise(scores: Iterable[ReportScore]) -> SetScore:
    scores = list(scores)
    gold = sum(s.n_gold for s in scores)
    predicted = sum(s.n_predicted for s in scores)
    pairs = sum(_pair_count(s) for s in scores)
    return SetScore(
        reports=len(scores), gold=gold, predicted=predicted,
        recall=sum(s.matched for s in scores) / max(gold, 1),
        precision=sum(s.compatible for s in scores) / max(predicted, 1),
        strict_precision=pairs / max(predicted, 1),
        negation_errors=sum(len(s.negation_errors) for s in scores),
        locations_kept=sum(s.location_kept for s in scores) / max(sum(s.location_checked for s in scores), 1),
        sizes_kept=sum(s.size_kept for s in scores) / max(sum(s.size_checked for s in scores), 1),
        uncertain_agreement=sum(s.uncertain_agree for s in scores) / max(pairs, 1),
        category_agreement=sum(s.category_agree for s in scores) / max(pairs, 1),
        structures_named=1 - sum(len(s.unnamed_structures) for s in scores) / max(predicted, 1))


def _pair_count(score: ReportScore) -> int:
    """Matched pairs, optional gold findings included."""
    return score.n_predicted - len(score.duplicates) - len(score.false_positives)


def load_gold_set(folder: str | Path, gold_file: str | Path) -> dict[str, tuple[str, dict]]:
    """{report id: (report text, gold)} for every entry of `gold_file` (keys starting with "_" are comments)."""
    gold = json.loads(Path(gold_file).read_text(encoding="utf-8"))
    reports = {}
    for report_id, entry in gold.items():
        if report_id.startswith("_"):
            continue
        path = Path(folder) / f"{report_id}.txt"
        if not path.is_file():
            raise InputError(f"{gold_file} lists {report_id} but {path} does not exist; add the report or remove the entry.")
        reports[report_id] = (path.read_text(encoding="utf-8"), entry)
    return reports


def predictions_of(findings: Iterable) -> list[Predicted]:
    """The positive findings of an extractor's output as `Predicted` (negated ones dropped)."""
    return [Predicted(f.text, f.category, bool(getattr(f, "uncertain", False))) for f in findings if not f.negated]


def score_extractor(extract: Callable[[str], Iterable], reports: dict[str, tuple[str, dict]]) -> list[ReportScore]:
    return [score_report(report_id, predictions_of(extract(text)), gold) for report_id, (text, gold) in reports.items()]


def format_summary(name: str, summary: SetScore) -> str:
    return (f"{name}: {summary.reports} reports, {summary.gold} gold findings, {summary.predicted} predicted | "
            f"recall {summary.recall:.1%}, precision {summary.precision:.1%}, strict precision "
            f"{summary.strict_precision:.1%}, negation errors {summary.negation_errors}, locations kept "
            f"{summary.locations_kept:.1%}, sizes kept {summary.sizes_kept:.1%}, uncertain agreement {summary.uncertain_agreement:.1%}, "
            f"category agreement {summary.category_agreement:.1%}, structures named {summary.structures_named:.1%}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m VoxTellCore.evaluation.extraction REPORTS_FOLDER GOLD.json [-v]``: score the rule-based extractor."""
    from VoxTellCore.findings import extract_findings

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args
    folder, gold_file = [a for a in args if a != "-v"]
    scores = score_extractor(extract_findings, load_gold_set(folder, gold_file))
    if verbose:
        for s in scores:
            problems = [("missed", s.missed), ("false positive", s.false_positives), ("duplicate", s.duplicates),
                        ("negation error", s.negation_errors), ("location lost", s.lost_locations),
                        ("flags", s.wrong_flags), ("no structure named", s.unnamed_structures)]
            for label, items in problems:
                for item in items:
                    print(f"{s.report}: {label}: {item}")
    print(format_summary(Path(gold_file).stem, summarise(scores)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
