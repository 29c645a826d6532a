"""Segment names, colours and terminology entries for prompts.

Slicer's terminology lookup by '3dSlicerLabel' is exact and case-sensitive, so a prompt
is first normalised to the list's own spelling ("Liver" -> "liver") or mapped through the
synonym table ("hepatic organ" -> "liver"). Prompts that are not in the list get a random
colour that depends only on the prompt, so a rerun keeps its colour.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

GENERAL_ANATOMY = "Segmentation category and type - 3D Slicer General Anatomy list"
# Slicer marks "no recommended colour" with mid grey.
UNSET_COLOR = (127, 127, 127)
SYNONYMS_FILE = Path("Resources") / "vocabulary" / "slicer_synonyms.json"


@dataclass(frozen=True)
class SegmentStyle:
    """How a prompt's segment looks: ``color`` in 0..1, ``terminology`` serialised ("" if none)."""

    name: str
    color: tuple[float, float, float]
    terminology: str = ""


def normalizePrompt(prompt: str) -> str:
    """Trimmed, with runs of white space collapsed: the segment name and the cache key."""
    return re.sub(r"\s+", " ", prompt).strip()


def stableColor(prompt: str) -> tuple[float, float, float]:
    """A saturated colour picked by a hash of the lower-cased prompt (the same in every session)."""
    digest = hashlib.sha256(normalizePrompt(prompt).lower().encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    saturation = 0.55 + 0.35 * digest[2] / 255.0
    value = 0.75 + 0.2 * digest[3] / 255.0
    return colorsys.hsv_to_rgb(hue, saturation, value)


def findSynonymsFile(moduleDir: Path) -> Path | None:
    """The synonym table next to the installed module, or at the top of a source checkout."""
    for base in (moduleDir, moduleDir.parent):
        candidate = base / SYNONYMS_FILE
        if candidate.is_file():
            return candidate
    return None


def loadSynonyms(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    table = json.loads(Path(path).read_text(encoding="utf-8"))
    return {normalizePrompt(key).lower(): label for key, label in table.items() if not key.startswith("_")}


class PromptTerminology:
    """Maps prompts to Slicer terminology entries of one terminology context."""

    def __init__(self, terminologyLogic=None, synonyms: dict[str, str] | None = None, context: str = GENERAL_ANATOMY):
        self.logic = terminologyLogic
        self.synonyms = synonyms or {}
        self.context = context
        self._labels: dict[str, str] | None = None

    def slicerLabel(self, prompt: str) -> str | None:
        """The list's '3dSlicerLabel' spelling for a prompt, or None when the list lacks it."""
        key = normalizePrompt(prompt).lower()
        labels = self._labelIndex()
        if key in labels:
            return labels[key]
        synonym = self.synonyms.get(key, "").lower()
        return labels.get(synonym)

    def style(self, prompt: str) -> SegmentStyle:
        name = normalizePrompt(prompt)
        entry = self._entry(prompt)
        if entry is None:
            return SegmentStyle(name, stableColor(prompt))
        rgb = _recommendedColor(entry)
        color = tuple(c / 255.0 for c in rgb) if rgb is not None else stableColor(prompt)
        return SegmentStyle(name, color, self.logic.SerializeTerminologyEntry(entry))

    def _entry(self, prompt: str):
        label = self.slicerLabel(prompt)
        if label is None or self.logic is None:
            return None
        import slicer

        entry = slicer.vtkSlicerTerminologyEntry()
        if not self.logic.FindTypeInTerminologyBy3dSlicerLabel(self.context, label, entry):
            return None
        return entry

    def _labelIndex(self) -> dict[str, str]:
        """Lower-cased label -> label for every type and type modifier of the context (built once)."""
        if self._labels is None:
            self._labels = _collectLabels(self.logic, self.context) if self.logic is not None else {}
        return self._labels


def _recommendedColor(entry) -> tuple[int, int, int] | None:
    """The modifier's colour when it has one ("left kidney"), else the type's."""
    for item in (entry.GetTypeModifierObject(), entry.GetTypeObject()):
        if item is not None and item.GetCodeValue():
            rgb = tuple(int(c) for c in item.GetRecommendedDisplayRGBValue())
            if rgb != UNSET_COLOR:
                return rgb
    return None


def _collectLabels(logic, context: str) -> dict[str, str]:
    import slicer

    labels: dict[str, str] = {}
    category = slicer.vtkSlicerTerminologyCategory()
    typeObject = slicer.vtkSlicerTerminologyType()
    modifier = slicer.vtkSlicerTerminologyType()

    def add(item) -> None:
        label = item.GetSlicerLabel()
        if label:
            labels.setdefault(label.lower(), label)

    for i in range(logic.GetNumberOfCategoriesInTerminology(context)):
        logic.GetNthCategoryInTerminology(context, i, category)
        for j in range(logic.GetNumberOfTypesInTerminologyCategory(context, category)):
            logic.GetNthTypeInTerminologyCategory(context, category, j, typeObject)
            add(typeObject)
            if typeObject.GetHasModifiers():
                for k in range(logic.GetNumberOfTypeModifiersInTerminologyType(context, category, typeObject)):
                    logic.GetNthTypeModifierInTerminologyType(context, category, typeObject, k, modifier)
                    add(modifier)
    return labels
