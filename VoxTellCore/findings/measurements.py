"""Measurement normalisation: "3mm" -> "3 mm", "3.4 mm" -> "3 mm", "1,5 cm" -> "1.5 cm", "12x8mm" -> "12 x 8 mm".

Millimetres are rounded to whole numbers and centimetres to at most one decimal (half up),
as in the ReXGroundingCT reports ("2 cm" stays "2 cm", "2.45 cm" becomes "2.5 cm"). A decimal comma directly between digits is read as a
decimal point.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

_NUMBER = r"\d+(?:[.,]\d+)?"
_UNIT = r"(?P<unit>mm|cm|millimet(?:er|re)s?|centimet(?:er|re)s?)"
MEASUREMENT = re.compile(
    rf"(?<![\w.,])(?P<numbers>{_NUMBER}(?:\s*(?:x|×|\*|-|–|to)\s*{_NUMBER})*)\s*{_UNIT}(?![\w])",
    re.IGNORECASE)
_SEPARATOR = re.compile(r"\s*(x|×|\*|-|–|to)\s*", re.IGNORECASE)


def normalise_number(value: str, unit: str) -> str:
    """One value in `unit` ("mm" or "cm") in the normalised format."""
    number = Decimal(value.replace(",", "."))
    step = Decimal("1") if unit == "mm" else Decimal("0.1")
    if -number.as_tuple().exponent <= -step.as_tuple().exponent:
        return str(number)  # already within the allowed precision
    return str(number.quantize(step, rounding=ROUND_HALF_UP))


def _normalise_match(match: re.Match) -> str:
    unit = "mm" if match["unit"].lower().startswith(("mm", "mil")) else "cm"
    pieces = _SEPARATOR.split(match["numbers"])
    numbers = [normalise_number(piece, unit) for piece in pieces[::2]]
    separators = [" x " if s.lower() in ("x", "×", "*") else ("-" if s in ("-", "–") else " to ")
                  for s in pieces[1::2]]
    text = numbers[0]
    for separator, number in zip(separators, numbers[1:]):
        text += separator + number
    return f"{text} {unit}"


def normalise_measurements(text: str) -> str:
    """`text` with every length measurement rewritten in the normalised format."""
    return MEASUREMENT.sub(_normalise_match, text)
