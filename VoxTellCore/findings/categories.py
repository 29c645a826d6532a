"""Finding categories of ReXGroundingCT, as data: category -> focal flag and keyword patterns.

The 14 lung/pleura categories (8 focal, 6 non-focal) are those of the ReXGroundingCT
benchmark. A finding gets the first category in `CATEGORIES` (a priority order: the
more specific patterns come first, e.g. "linear atelectasis" is a linear opacity, not
atelectasis) whose keyword pattern occurs in its text. Findings about other organs
(liver lesion, coronary calcification, hiatal hernia, ...) get organ system "other"
and category "other".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    Category("Pneumothorax", True, ("pneumothora", "hydropneumothora")),
    Category("Pleural Effusion/Thickening", True, (
        r"pleural (?:effusion|fluid|thicken|plaque|calcific)", "effusion", "hydrothora", "empyema",
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
        "atelecta", "consolidat", "collaps", "infiltrat", "pneumoni", r"air bronchogram",
        r"dependent densit", r"increased? (?:in )?(?:\w+ )?densit", r"airspace (?:disease|opacit)")),
    Category(OTHER_DIFFUSE, False, (
        "reticul", "interstiti", "fibros", "fibrotic", "mosaic", r"air[- ]trapping", r"crazy[- ]paving",
        "hyperinflat", r"o?edema", "diffuse")),
    Category(OTHER_FOCAL, True, (
        "cavit", "cyst", "bulla", "bleb", "pneumatocele", r"scar", r"mucus plug", r"mucoid impaction",
        "opacit", "densit")),
)

# Where a finding sits: anatomy outside the lungs and pleura, and anatomy that anchors it in them.
OTHER_ORGAN = re.compile(
    r"\b(?:heart|cardi|pericard|coronar|aort|valv|arter|vein|vena|venous|vascular|atheroscl|liver|hepat|"
    r"gallbladder|cholecyst|biliar|kidney|renal|adrenal|spleen|splen|pancrea|stomach|gastr|bowel|colon|"
    r"esophag|oesophag|hiatal|hernia|thyroid|lymph|adenopath|lap\b|mediastin|thymus|bone|osseous|"
    r"vertebr|spine|spinal|ribs?\b|stern|clavic|scapul|breast|axill|subcutaneous|soft tissue|muscle|"
    r"diaphragm)", re.IGNORECASE)
LUNG_ANCHOR = re.compile(
    r"\b(?:lungs?\b|pulmonar|lobes?\b|lobar|lingula|pleura|subpleural|bronch|trache|parenchym|perihilar|"
    r"hemithora|apical|apex|apices|basal|bases|costophrenic|fissur|alveol|airway|centrilobular)",
    re.IGNORECASE)
DIFFUSE = re.compile(r"\b(?:diffuse|widespread|generali[sz]ed|extensive)", re.IGNORECASE)

_COMPILED = tuple((category, re.compile("|".join(rf"\b(?:{k})" for k in category.keywords), re.IGNORECASE))
                  for category in CATEGORIES)


def lung_category(text: str) -> Category | None:
    """The first lung/pleura category whose keywords occur in `text`, or None."""
    for category, pattern in _COMPILED:
        if pattern.search(text):
            return category
    return None


def categorize(text: str) -> tuple[str, bool, str]:
    """(category, focal, organ system) of a finding's text."""
    category = lung_category(text)
    in_other_organ = bool(OTHER_ORGAN.search(text))
    in_lung = bool(LUNG_ANCHOR.search(text))
    if category is not None and (in_lung or not in_other_organ):
        return category.name, category.focal, LUNG_PLEURA
    if in_lung and not in_other_organ:
        return OTHER_FOCAL, True, LUNG_PLEURA
    return OTHER, not DIFFUSE.search(text), OTHER
