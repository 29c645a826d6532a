"""Segment name, colour and terminology codes of a prompt, as the Slicer module gives them.

The rule (shared with ``VoxTellSlicerLib.terminology``, which applies it to Slicer's own
terminology logic): the prompt is normalised, matched case-insensitively against the
'3dSlicerLabel's of Slicer's "3D Slicer General Anatomy list" directly or through
``Resources/vocabulary/slicer_synonyms.json``; a match gives the list's codes and
recommended colour, anything else a colour picked by a hash of the prompt (the same in
every session). The list ships as a compact extract (``slicer_general_anatomy.json``,
made by ``scripts/extract_slicer_terminology.py``) so that no Slicer is needed.

The list gives both sides of a pair ("left kidney", "right kidney") the same colour;
``side_color`` then gives the right side a lighter shade of it so that the two stay apart.
"""

from __future__ import annotations

import colorsys
import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

GENERAL_ANATOMY = "Segmentation category and type - 3D Slicer General Anatomy list"
#: The segment tag by which a prompt's segment is found again (Slicer module, .seg.nrrd files).
PROMPT_TAG = "VoxTell.Prompt"
# Slicer marks "no recommended colour" with mid grey.
UNSET_COLOR = (127, 127, 127)
VOCABULARY_DIR = Path(__file__).resolve().parent.parent / "Resources" / "vocabulary"
SYNONYMS_FILE = VOCABULARY_DIR / "slicer_synonyms.json"
GENERAL_ANATOMY_FILE = VOCABULARY_DIR / "slicer_general_anatomy.json"
# Lightness difference (HLS, 0..1) between a right-side structure and its left side when the
# list gives both the same colour: clearly visible, still the same hue.
RIGHT_SHADE = 0.2

RGB = Tuple[float, float, float]


@dataclass(frozen=True)
class Code:
    """A coded concept: coding scheme designator, code value, code meaning."""

    scheme: str
    value: str
    meaning: str

    def serialize(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"


LEFT = Code("SCT", "7771000", "Left")
RIGHT = Code("SCT", "24028007", "Right")


@dataclass(frozen=True)
class Terminology:
    """Segmentation category, type and type modifier of one terminology context."""

    category: Code
    type: Code
    modifier: Optional[Code] = None
    context: str = GENERAL_ANATOMY

    def serialize(self) -> str:
        """Slicer's 'TerminologyEntry' string (as ``SerializeTerminologyEntry`` writes it)."""
        modifier = self.modifier.serialize() if self.modifier else "^^"
        return "~".join([self.context, self.category.serialize(), self.type.serialize(), modifier, "", "^^", "^^"])

    @classmethod
    def parse(cls, entry: str) -> Optional[Terminology]:
        """The inverse of ``serialize`` (a segment's 'TerminologyEntry' tag); None without a type."""
        fields = entry.split("~")
        codes = [Code(*(field.split("^") + ["", "", ""])[:3]) for field in fields[1:4]]
        if len(fields) < 4 or not codes[1].value:
            return None
        return cls(codes[0], codes[1], codes[2] if codes[2].value else None, fields[0])


# What Slicer gives a segment without a terminology entry ("Tissue", "Tissue"); used by
# DICOM SEG, which needs a category and type for every segment.
GENERIC = Terminology(Code("SCT", "85756007", "Tissue"), Code("SCT", "85756007", "Tissue"))


@dataclass(frozen=True)
class SegmentInfo:
    """One prompt's segment: name, colour (0..1), terminology codes (None when the list lacks it)."""

    prompt: str
    name: str
    color: RGB
    terminology: Optional[Terminology] = None


def normalize_prompt(prompt: str) -> str:
    """Trimmed, with runs of white space collapsed: the segment name and the cache key."""
    return re.sub(r"\s+", " ", prompt).strip()


def prompt_key(prompt: str) -> str:
    """Prompts that differ only in case or spacing give the same mask and share a segment."""
    return normalize_prompt(prompt).lower()


def stable_color(prompt: str) -> RGB:
    """A saturated colour picked by a hash of the lower-cased prompt (the same in every session)."""
    digest = hashlib.sha256(normalize_prompt(prompt).lower().encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    saturation = 0.55 + 0.35 * digest[2] / 255.0
    value = 0.75 + 0.2 * digest[3] / 255.0
    return colorsys.hsv_to_rgb(hue, saturation, value)


def side_of(modifier: Optional[Code]) -> Optional[str]:
    """"left" or "right" for the laterality modifiers, else None."""
    if modifier is None or modifier.scheme != "SCT":
        return None
    return {LEFT.value: "left", RIGHT.value: "right"}.get(modifier.value)


def side_color(rgb255: Sequence[int], side: Optional[str], opposite_rgb255: Optional[Sequence[int]]) -> RGB:
    """The list's colour in 0..1. When the list colours both sides of a pair alike, the left
    side keeps it and the right side gets a shade of it (lighter, or darker for light colours)."""
    color = tuple(c / 255.0 for c in rgb255)
    if side != "right" or opposite_rgb255 is None or tuple(opposite_rgb255) != tuple(rgb255):
        return color  # type: ignore[return-value]
    hue, lightness, saturation = colorsys.rgb_to_hls(*color)
    shaded = lightness + RIGHT_SHADE if lightness <= 0.7 else lightness - RIGHT_SHADE
    return colorsys.hls_to_rgb(hue, shaded, saturation)


def load_synonyms(path: Optional[Path] = SYNONYMS_FILE) -> Dict[str, str]:
    """Normalised lower-case prompt -> '3dSlicerLabel' (keys starting with "_" are comments)."""
    if path is None or not Path(path).is_file():
        return {}
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    return {normalize_prompt(key).lower(): label for key, label in table.items() if not key.startswith("_")}


def find_label(prompt: str, labels: Dict[str, str], synonyms: Dict[str, str]) -> Optional[str]:
    """The list's spelling of a prompt's label: ``labels`` maps lower case -> list spelling."""
    key = normalize_prompt(prompt).lower()
    if key in labels:
        return labels[key]
    return labels.get(synonyms.get(key, "").lower())


@dataclass(frozen=True)
class _Entry:
    terminology: Terminology
    color: Optional[Tuple[int, int, int]]


class TerminologyTable:
    """Prompts -> ``SegmentInfo`` from the General Anatomy extract and the synonym table."""

    def __init__(self, entries: Dict[str, _Entry], synonyms: Dict[str, str]):
        self.entries = entries
        self.synonyms = synonyms
        self._labels = {label.lower(): label for label in entries}

    @classmethod
    def load(cls, extract: Path = GENERAL_ANATOMY_FILE, synonyms: Optional[Path] = SYNONYMS_FILE) -> TerminologyTable:
        data = json.loads(Path(extract).read_text(encoding="utf-8"))
        entries = {}
        for label, item in data["labels"].items():
            modifier = Code(*item["modifier"]) if item.get("modifier") else None
            terminology = Terminology(Code(*item["category"]), Code(*item["type"]), modifier, data["context"])
            entries[label] = _Entry(terminology, tuple(item["color"]) if item.get("color") else None)
        return cls(entries, load_synonyms(synonyms))

    def label(self, prompt: str) -> Optional[str]:
        return find_label(prompt, self._labels, self.synonyms)

    def segment(self, prompt: str) -> SegmentInfo:
        name = normalize_prompt(prompt)
        label = self.label(prompt)
        if label is None:
            return SegmentInfo(prompt, name, stable_color(prompt))
        entry = self.entries[label]
        if entry.color is None:
            return SegmentInfo(prompt, name, stable_color(prompt), entry.terminology)
        side = side_of(entry.terminology.modifier)
        color = side_color(entry.color, side, self._opposite_color(entry.terminology) if side else None)
        return SegmentInfo(prompt, name, color, entry.terminology)

    def _opposite_color(self, terminology: Terminology) -> Optional[Tuple[int, int, int]]:
        opposite = RIGHT if side_of(terminology.modifier) == "left" else LEFT
        for entry in self.entries.values():
            other = entry.terminology
            if other.category == terminology.category and other.type == terminology.type and other.modifier == opposite:
                return entry.color
        return None


@functools.lru_cache(maxsize=1)
def default_table() -> TerminologyTable:
    """The shipped extract and synonym table, loaded once."""
    return TerminologyTable.load()


def segment_info(prompt: str) -> SegmentInfo:
    """Name, colour and terminology codes that a prompt's segment gets (Slicer's rule)."""
    return default_table().segment(prompt)


#: A prompt outside every known name but at least this similar to one (difflib's ratio: one
#: wrong, missing or doubled letter in a short word, "livr" -> "liver" 0.89, "lefft kidney" ->
#: "left kidney" 0.96) is probably a typo: it gets a "did you mean" warning.
TYPO_SIMILARITY = 0.85


def known_prompts() -> set:
    """Lower-case names the terminology knows: its labels and their synonyms."""
    table = default_table()
    return {label.lower() for label in table.entries} | set(table.synonyms)


def closest_prompts(prompt: str, candidates, count: int = 3, cutoff: float = 0.6) -> list:
    """Up to ``count`` of ``candidates`` most like ``prompt`` (case and spacing ignored), best first."""
    return difflib.get_close_matches(prompt_key(prompt), sorted(candidates), n=count, cutoff=cutoff)
