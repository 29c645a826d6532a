"""Word lists the rule-based extractor looks for, as regular expressions (case-insensitive)."""

from __future__ import annotations

import re

from VoxTellCore.findings.categories import CATEGORIES


def _any(*patterns: str) -> re.Pattern:
    return re.compile("|".join(rf"\b(?:{p})" for p in patterns), re.IGNORECASE)


# Nouns that name a finding: the category keywords plus findings outside the lungs.
FINDING_NOUN = _any(
    *(keyword for category in CATEGORIES for keyword in category.keywords),
    "thickening", "calcification", "hernia", "plaque", "stones?", "calcul", "aneurysm", "cardiomegal",
    "lymphadenopath", "adenopath", r"lymph nodes?", "fracture", "collection", "goit", "stent", "catheter",
    "pacemaker", "prosthe", "atheroscl", "steatosis", "osteophyt", "deformit", "hydronephros", "ascites")
# Words that make an anatomical statement abnormal without naming a finding ("aorta ... increased").
ABNORMAL_MODIFIER = _any("increas", "enlarg", "dilat", "ectasi", "thickened", "calcified", "widen", "narrow",
                         "hypertroph", "atroph", "hypodens", "hyperdens", "degenerat", "abnormal")

# Negation before the finding ("No pleural effusion") and after it ("effusion is not seen").
NEGATION_BEFORE = _any(r"no\b", r"not\b", r"none\b", r"without\b", r"negative for", r"free of", r"absence of",
                       r"ruled out", r"nor\b")
NEGATION_AFTER = _any(r"(?:is|are|was|were) not (?:seen|detected|observed|identified|present|visuali[sz]ed|noted)",
                      r"not (?:seen|detected|observed|identified|present)", r"absent\b", r"no longer",
                      r"(?:has|have) resolved", r"resolved\b")
# Normal statements ("heart size is normal", "lungs are clear").
NORMAL = _any(r"normal\b", "unremarkable", r"within normal limits", r"clear\b", r"patent\b",
              r"(?:is|are) open\b", r"intact\b", r"preserved\b", r"natural\b")

# References to earlier studies ("stable since the prior exam", "previously described ... no longer seen").
PRIOR_REFERENCE = _any(
    r"compared (?:to|with)", r"in comparison (?:to|with)", r"since (?:the )?(?:prior|previous|last)",
    r"(?:prior|previous|earlier|last) (?:exam|examination|study|studies|ct|scan|imaging)",
    r"previously (?:described|seen|noted|reported|demonstrated|identified|mentioned)", r"no longer",
    r"interval (?:increase|decrease|development|change|resolution|improvement|progression)",
    r"(?:stable|unchanged) (?:since|from|compared|when compared|in comparison|relative)",
    r"(?:has|have) resolved")

# Sentences that are not observations: recommendations, technique, cross-references.
NOT_AN_OBSERVATION = _any(
    "recommend", "suggest", r"advis", r"correlat", r"follow[- ]?up", r"(?:could|can)(?:not| not) be evaluated",
    r"evaluated optimally", r"as (?:described )?above", r"contrast (?:medium|material|agent)",
    r"sections? (?:were|was) (?:taken|obtained)", r"reconstruct", r"(?:slice|section) thickness")

# Interpretation that follows an observation ("... consistent with pneumonia"); cut off, the observation stays.
INTERPRETATION_TAIL = re.compile(
    r",?\s*\b(?:(?:which|that) )?(?:is |are |may be |could be )?(?:consistent with|suggestive of|compatible with|"
    r"suspicious for|concerning for|(?:likely|probably|may|could|which may) represent\w*|"
    r"in favou?r of)\b.*$", re.IGNORECASE)

# Anatomy words: a negated or normal statement must name some anatomy to stand on its own.
ANATOMY = _any(r"lungs?\b", "pulmonar", r"lobes?\b", "lingula", "pleura", "bronch", "trache", "parenchym",
               "hemithora", "airway", "heart", "cardi", "pericard", "coronar", "aort", "liver", "kidney", "adrenal",
               "spleen", "pancrea", "esophag", "thyroid", "mediastin", "bone", "vertebr", "diaphragm", "stomach",
               "gallbladder", "vascular", "vessel")

# The fronted location of "In the left lower lobe, there is a nodule."
FRONTED_LOCATION = re.compile(r"^(?P<location>(?:in|within|at|on) [^,]+),\s*there (?:is|are|was|were)\s+(?P<rest>.+)$",
                              re.IGNORECASE)
# A trailing location phrase that a location-less sibling finding can borrow.
LOCATION_PHRASE = re.compile(r"\b(?:in|within|at|involving|along|of) (?:the )?(?:[\w-]+ ){0,5}?"
                             r"(?:lungs?|lobes?|segments?|lingula|bases|apices|hemithorax|hemithoraces|"
                             r"fields?|zones?|regions?|sides?)\b.*$", re.IGNORECASE)
SIDE = re.compile(r"\b(?:right|left|bilateral|both|upper|lower|middle|basal|apical)\b", re.IGNORECASE)

# Where one sentence splits into several findings; the separator is kept to rejoin fragments.
CLAUSE_SEPARATOR = re.compile(r"(,?\s+(?:and|but|while|whereas|however,?)\s+|,\s+)", re.IGNORECASE)
# A clause that starts like this introduces a new (positive) finding, so a preceding "no" does not carry over.
NEW_POSITIVE_CLAUSE = re.compile(
    r"^(?:there\b|an?\b|\d|mild|moderate|severe|small|large|minimal|marked|significant|extensive|multiple|"
    r"several|few|scattered|some|new)", re.IGNORECASE)
NO_CARRY_SEPARATOR = re.compile(r"\bbut\b|\bwhile\b|\bwhereas\b|\bhowever\b", re.IGNORECASE)
