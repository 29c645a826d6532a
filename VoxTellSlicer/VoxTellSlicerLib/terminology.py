"""Segment names, colours and terminology entries for prompts, from Slicer's terminology logic.

The rule is the core's (``VoxTellCore.terminology``, which the command line applies to a
shipped extract of the same list): Slicer's lookup by '3dSlicerLabel' is exact and
case-sensitive, so a prompt is first normalised to the list's own spelling ("Liver" ->
"liver") or mapped through the synonym table ("hepatic organ" -> "liver"); prompts that are
not in the list get a colour that depends only on the prompt; the two sides of a pair that
the list colours alike are told apart by a lighter right side. Here the entry comes from
Slicer's logic, which also serialises it for the segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from VoxTellCore.terminology import (
    GENERAL_ANATOMY,
    LEFT,
    RIGHT,
    UNSET_COLOR,
    Code,
    find_label,
    load_synonyms,
    normalize_prompt,
    side_color,
    side_of,
    stable_color,
)

SYNONYMS_FILE = Path("Resources") / "vocabulary" / "slicer_synonyms.json"

# The names the module and its tests use.
normalizePrompt = normalize_prompt
stableColor = stable_color


@dataclass(frozen=True)
class SegmentStyle:
    """How a prompt's segment looks: ``color`` in 0..1, ``terminology`` serialised ("" if none)."""

    name: str
    color: tuple[float, float, float]
    terminology: str = ""


def findSynonymsFile(moduleDir: Path) -> Path | None:
    """The synonym table next to the installed module, or at the top of a source checkout."""
    for base in (moduleDir, moduleDir.parent):
        candidate = base / SYNONYMS_FILE
        if candidate.is_file():
            return candidate
    return None


def loadSynonyms(path: Path | None) -> dict[str, str]:
    return load_synonyms(path)


class PromptTerminology:
    """Maps prompts to Slicer terminology entries of one terminology context."""

    def __init__(self, terminologyLogic=None, synonyms: dict[str, str] | None = None, context: str = GENERAL_ANATOMY):
        self.logic = terminologyLogic
        self.synonyms = synonyms or {}
        self.context = context
        self._labels: dict[str, str] | None = None

    def slicerLabel(self, prompt: str) -> str | None:
        """The list's '3dSlicerLabel' spelling for a prompt, or None when the list lacks it."""
        return find_label(prompt, self._labelIndex(), self.synonyms)

    def style(self, prompt: str) -> SegmentStyle:
        name = normalizePrompt(prompt)
        entry = self._entry(prompt)
        if entry is None:
            return SegmentStyle(name, stableColor(prompt))
        rgb = _recommendedColor(entry.GetTypeModifierObject(), entry.GetTypeObject())
        if rgb is None:
            color = stableColor(prompt)
        else:
            side = side_of(_code(entry.GetTypeModifierObject()))
            color = side_color(rgb, side, self._oppositeColor(entry) if side else None)
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

    def _oppositeColor(self, entry) -> tuple[int, int, int] | None:
        """The recommended colour of the type's other side ("right kidney" for "left kidney")."""
        import slicer

        opposite = RIGHT if side_of(_code(entry.GetTypeModifierObject())) == "left" else LEFT
        category, typeObject = entry.GetCategoryObject(), entry.GetTypeObject()
        modifier = slicer.vtkSlicerTerminologyType()
        for k in range(self.logic.GetNumberOfTypeModifiersInTerminologyType(self.context, category, typeObject)):
            self.logic.GetNthTypeModifierInTerminologyType(self.context, category, typeObject, k, modifier)
            if _code(modifier) == opposite:
                return _recommendedColor(modifier, typeObject)
        return None

    def _labelIndex(self) -> dict[str, str]:
        """Lower-cased label -> label for every type and type modifier of the context (built once)."""
        if self._labels is None:
            self._labels = _collectLabels(self.logic, self.context) if self.logic is not None else {}
        return self._labels


def _code(item) -> Optional[Code]:
    if item is None or not item.GetCodeValue():
        return None
    return Code(item.GetCodingSchemeDesignator(), item.GetCodeValue(), item.GetCodeMeaning())


def _recommendedColor(modifier, typeObject) -> tuple[int, int, int] | None:
    """The modifier's colour when it has one ("left kidney"), else the type's."""
    for item in (modifier, typeObject):
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
