"""Finding categories, as data: category -> focal flag and keyword patterns.

The 14 lung/pleura categories (8 focal, 6 non-focal) are those of the ReXGroundingCT
benchmark. A finding gets the first category in `CATEGORIES` (a priority order: the
more specific patterns come first, e.g. "linear atelectasis" is a linear opacity, not
atelectasis) whose keyword pattern occurs in its text. Findings in the abdomen or pelvis
(by the structure they name, else by the report's region) get one of the 12
`ABDOMINAL_CATEGORIES` and organ system "abdomen/pelvis"; other findings outside the lungs
(coronary calcification, thyroid nodule, ...) get organ system "other" and category "other".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from VoxTellCore.findings.anatomy import ABDOMEN_PELVIS, CHEST, VERTEBRA, region_of
from VoxTellCore.findings.finding import LUNG_PLEURA, OTHER

OTHER_FOCAL = "Other Focal Findings"
OTHER_DIFFUSE = "Other Diffuse Findings"


@dataclass(frozen=True)
class Category:
    name: str
    focal: bool
    keywords: tuple[str, ...]  # regular expressions, matched case-insensitively from a word start


CATEGORIES: tuple[Category, ...] = (
    Category("Honeycombing", True, ("honeycomb",)),
    Category("Pneumothorax", True, (r"\w*pneumothora",)),
    Category("Pleural Effusion/Thickening", True, (
        r"pleural (?:effusion|fluid|thicken|plaque|calcific)", "effusion", "hydrothora", "hemothora", "haemothora",
        "empyema",
        r"thicken\w* (?:of )?(?:the )?pleura", r"pleuroparenchymal thicken")),
    Category("Emphysema", False, ("emphysem",)),
    Category("Bronchiectasis", False, ("bronchiectas", "bronchiectat", "bronchiolectas")),
    Category("Bronchial Wall Thickening", False, (
        r"bronchial wall", "peribronchial", r"bronchial thicken", r"thicken\w* (?:of )?(?:the )?bronch")),
    Category("Septal Thickening", False, (
        r"(?:inter|intra)lobular sept", r"septal (?:thicken|line)", r"thicken\w* (?:of )?(?:the )?sept")),
    Category("Micronodules", False, ("micronodul", "centrilobular", r"tree[- ]in[- ]bud", "miliary")),
    Category("Pulmonary Nodules/Masses", True, (
        "nodul", r"mass(?:es)?\b", r"tumou?r", "granuloma", "neoplas", "metasta", r"lesions?\b")),
    Category("Ground-Glass Opacities", True, (r"ground[- ]?glass", r"ggos?\b", r"frosted[- ]glass")),
    Category("Linear Opacities", True, ("linear", r"bands?\b", r"band-like", "strand", r"plate[- ]?like",
                                        "discoid", "sequela")),
    Category("Atelectasis/Consolidation", True, (
        "atelecta", "consolidat", "collaps", "infiltrat", "pneumoni", r"air bronchogram", "contusion",
        r"dependent densit", r"increased? (?:in )?(?:\w+ )?densit", r"airspace (?:disease|opacit)")),
    Category(OTHER_DIFFUSE, False, (
        "reticul", "interstiti", "fibros", "fibrotic", "mosaic", r"air[- ]trapping", r"crazy[- ]paving",
        "hyperinflat", r"o?edema", "diffuse")),
    Category(OTHER_FOCAL, True, (
        r"cavit(?!y)", r"(?<!endometrial )(?<!peritoneal )(?<!abdominal )(?<!pelvic )(?<!uterine )(?<!oral )"
        r"(?<!nasal )(?<!medullary )(?<!glenoid )cavity", "cyst", "bulla", "bleb", "pneumatocele", r"scar", r"mucus plug", r"mucoid impaction",
        "opacit", "densit")),
)

OTHER_ABDOMINAL = "Other Abdominal/Pelvic Finding"
# Fluid, but not "fluid-filled" bowel: that describes the bowel.
FLUID = r"fluid(?![- ]?filled)"
# Gas in a vein ("portal venous gas", "gas is present in mesenteric venous branches"); other gas is a detail.
VENOUS_GAS = r"venous gas|gas\b(?=(?:\s+\w+){0,6}\s+(?:venous|veins?)\b)"
# "Replaced left hepatic artery", "accessory renal artery": an arterial variant, relevant for surgery.
ARTERIAL_VARIANT = r"(?:replaced|accessory|aberrant) (?:\w+ ){0,2}arter"
# A filling defect in a duct is a stone (in a vessel it is a thrombus).
DUCT_FILLING_DEFECT = r"filling defects? (?:in|within) (?:the )?(?:[\w-]+ ){0,3}(?:duct|ureter)"
# Abdominal and pelvic findings, in priority order (a stone in a duct is a calculus, an aneurysm's thrombus vascular).
ABDOMINAL_CATEGORIES: tuple[Category, ...] = (
    Category("Postsurgical/Device", True, (r"\w+ectomy", r"stents?\b", "catheter", r"drains?\b", r"tubes?\b",
                                             "post-?surgical", "post-?operative", "anastomo", "prosthe", r"clips?\b")),
    Category("Lymph Node", True, (r"lymph", r"\w*adenopath", r"nodes?\b")),
    Category("Vascular", True, ("aneurysm", "varic", "thromb", "stenos", "dissection", "atheroscl", "occlu", "embol",
                                "recanali", r"contact\b", "encase", "abutment", r"\w*vascular calcif", r"shunts?\b",
                                VENOUS_GAS, ARTERIAL_VARIANT,
                                r"aort\w* ectasia", r"beading\b")),
    Category("Calculus", True, (r"\w*stones?\b", "calcul", r"\w*liths?\b", r"\w*lithiasis", "sludge", "calcif",
                                DUCT_FILLING_DEFECT)),
    Category("Duct/Collecting System Dilatation", False, (
        r"hydro\w*(?:nephros|ureter|salpinx)", "pelviectasis", "caliectasis", r"duct\w* dilat",
        r"(?:biliar|bile duct|ductal|duct)\w*(?: \w+){0,3} (?:dilat|ectasi)", r"dilat\w*(?: \w+){0,3} (?:duct|biliar)")),
    Category("Fluid Collection/Ascites", True, ("ascites", FLUID, "collection", "abscess", r"h(?:a)?ematoma",
                                               "biloma", "seroma", "urinoma", "hemoperitoneum")),
    Category("Osseous", True, ("fracture", r"\w*listhesis", r"compression deformit", "marrow", "osseous", r"bones?\b",
                               "vertebra", VERTEBRA, "sacr", "degenerat", "sclerotic", "lytic", "schmorl",
                               r"pars (?:interarticularis )?defect", "spondylolys")),
    Category("Bowel/Mesentery", True, (r"append", r"bowel", r"colon", "colitis", "sigmoid", r"ile(?:um|al)\b", "jejun",
                                       "duoden", r"c(?:a)?ec(?:um|al)\b", r"rect(?:um|al)\b", r"diverticul(?:osis|itis|a\b)",
                                       "hernia", "obstruct", "ileus", "volvulus", "intussuscep", "pneumatosis",
                                       r"free air", "pneumoperitoneum", "enteritis", "proctitis",
                                       "fistul")),
    Category("Organ Enlargement/Atrophy", False, ("enlarg", r"\w+megaly", "atroph", "hypertroph", r"smaller\b",
                                                  "cortical thinning", "distended", "prominen")),
    Category("Focal Organ Lesion", True, (r"lesions?\b", r"mass(?:es)?\b", "nodul", "cyst", r"observations?\b",
                                          r"foc(?:us|i)\b", "polyp", r"tumou?r", r"\w+omas?\b", "fibroid", "ipmn",
                                          "metasta", "hypodens", "hypoattenuat", "hyperdens", "hypointens",
                                          "hyperintens", "perfusion", "scar", r"areas?\b", "diverticulum", "neoplas",
                                          r"implants?\b", "infarct", r"regions?\b")),
    Category("Diffuse Organ Change", False, ("steatosis", "fatty", "cirrho", "signal loss", "o?edema", r"\w+itis\b",
                                             "trabecul", "thicken", "nodular", "iron", "heterogene", "siderosis")),
    Category(OTHER_ABDOMINAL, True, (r"\w",)),
)

# Where a finding sits: anatomy outside the lungs and pleura, and anatomy that anchors it in them.
OTHER_ORGAN = re.compile(
    r"\b(?:heart|cardi|pericard|coronar|aort|valv|arter|vein|vena|venous|vascular|atheroscl|liver|hepat|"
    r"gallbladder|cholecyst|biliar|kidney|renal|adrenal|spleen|splen|pancrea|stomach|gastr|bowel|colon|"
    r"esophag|oesophag|hiatal|hernia|thyroid|lymph|adenopath|lap\b|mediastin|thymus|bone|osseous|"
    r"vertebr|spine|spinal|ribs?\b|stern|clavic|scapul|breast|axill|subcutaneous|soft tissue|muscle|"
    r"diaphragm|embol|thromb|chest wall)", re.IGNORECASE)
LUNG_ANCHOR = re.compile(
    r"\b(?:lungs?\b|pulmonar|lingula|pleura|subpleural|bronch|trache|parenchym|perihilar|"
    r"hemithora|costophrenic|fissur|alveol|airway|centrilobular)", re.IGNORECASE)
# Words that place a finding in the lung only when no other organ is named ("right hepatic lobe" is liver).
GENERIC_LUNG_ANCHOR = re.compile(r"\b(?:lobes?\b|lobar|apical|apex|apices|basal|bases|bibasilar|upper|middle|lower)",
                                 re.IGNORECASE)
# The head of a finding's text: what comes before a second finding or a detail ("mass | with traction ...").
_HEAD_END = re.compile(r"(?<!-)\s+(?:with|without|and|but|containing|causing|resulting)\s+|,\s*|;", re.IGNORECASE)
DIFFUSE = re.compile(r"\b(?:diffuse|widespread|generali[sz]ed|extensive)", re.IGNORECASE)

def _compiled(categories: tuple[Category, ...]) -> tuple[tuple[Category, re.Pattern], ...]:
    return tuple((category, re.compile("|".join(rf"\b(?:{k})" for k in category.keywords), re.IGNORECASE))
                 for category in categories)


_COMPILED = _compiled(CATEGORIES)
_ABDOMINAL = _compiled(ABDOMINAL_CATEGORIES)


def lung_category(text: str) -> Category | None:
    """The first lung/pleura category whose keywords occur in `text`, or None."""
    for category, pattern in _COMPILED:
        if pattern.search(text):
            return category
    return None


def head_phrase(text: str) -> str:
    """The text up to its first "with", "and" or comma: "3 cm mass with traction bronchiectasis" -> "3 cm mass"."""
    return _HEAD_END.split(text, maxsplit=1)[0]


def in_lung(text: str) -> bool:
    in_other_organ = bool(OTHER_ORGAN.search(text))
    return bool(LUNG_ANCHOR.search(text)) or (not in_other_organ and bool(GENERIC_LUNG_ANCHOR.search(text)))


def abdominal_category(text: str) -> Category:
    """The first abdominal/pelvic category whose keywords occur in the head phrase, else in the whole text."""
    for part in (head_phrase(text), text):
        for category, pattern in _ABDOMINAL[:-1]:
            if pattern.search(part):
                return category
    return ABDOMINAL_CATEGORIES[-1]


def is_abdominal(text: str, default_region: str | None = None) -> bool:
    """A finding in the abdomen or pelvis: by the structure it names, else by the region of its report."""
    region = region_of(text)
    if region is None and in_lung(text):
        region = CHEST
    return (region or default_region) == ABDOMEN_PELVIS


def categorize(text: str, default_region: str | None = None) -> tuple[str, bool, str]:
    """(category, focal, organ system) of a finding's text.

    The head phrase decides: "large left pneumothorax with mediastinal shift" is a
    pneumothorax, "conglomerate mass with traction bronchiectasis" a mass. Only when the
    head names no category does the rest of the text count. A finding in the abdomen or
    pelvis gets an abdominal category (`default_region`: the report's region, for a
    finding that names no structure of a known region, such as "lymph node").
    """
    if is_abdominal(text, default_region):
        category = abdominal_category(text)
        return category.name, category.focal, ABDOMEN_PELVIS
    for part in (head_phrase(text), text):
        category = lung_category(part)
        if category is not None:
            if in_lung(part) or not OTHER_ORGAN.search(part):
                return category.name, category.focal, LUNG_PLEURA
            return OTHER, not DIFFUSE.search(text), OTHER
    if in_lung(text) and not OTHER_ORGAN.search(text):
        return OTHER_FOCAL, True, LUNG_PLEURA
    return OTHER, not DIFFUSE.search(text), OTHER
