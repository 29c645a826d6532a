"""Rule-based extraction of findings from radiology report text (offline, no language model)."""

from VoxTellCore.findings.categories import ABDOMINAL_CATEGORIES, CATEGORIES, categorize
from VoxTellCore.findings.finding import LUNG_PLEURA, OTHER, Extractor, Finding, reported
from VoxTellCore.findings.measurements import normalise_measurements
from VoxTellCore.findings.rule_based import RuleBasedExtractor, extract_findings

__all__ = ["ABDOMINAL_CATEGORIES", "CATEGORIES", "LUNG_PLEURA", "OTHER", "Extractor", "Finding", "RuleBasedExtractor", "categorize",
           "extract_findings", "normalise_measurements", "reported"]
