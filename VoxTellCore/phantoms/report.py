"""A radiology-style report of a phantom: findings with their location and size, negations for
what is absent, and an impression. The wording varies with the phantom's seed."""

from __future__ import annotations

import numpy as np

from .generator import Phantom
from .labels import LOBES, SIDES

_NODULE_SENTENCES = (
    "There is {a} {size} mm solid nodule in the {location}.",
    "{A} {size} mm solid pulmonary nodule is seen in the {location}.",
    "In the {location}, there is {a} {size} mm solid nodule.",
)
_NORMAL_SENTENCES = (
    "Heart size is normal. No pericardial effusion.",
    "The thoracic aorta is normal in caliber.",
    "The central airways are patent.",
    "The liver, spleen and both kidneys are unremarkable in the imaged portions.",
    "No aggressive osseous lesion of the imaged vertebrae.",
)


def write_report(phantom: Phantom) -> str:
    rng = np.random.default_rng([phantom.seed, 7])
    location_of = {lobe: where for lobe, where, _ in LOBES}
    lobe_order = [lobe for lobe, _, _ in LOBES]
    nodules = sorted((f for f in phantom.findings if f["concept"] == "lung nodule"),
                     key=lambda f: lobe_order.index(f["lobe"]))
    effusions = {f["side"]: f for f in phantom.findings if f["concept"] == "pleural effusion"}

    lungs = [_NODULE_SENTENCES[rng.integers(len(_NODULE_SENTENCES))].format(
        a=_article(f["size_mm"]), A=_article(f["size_mm"]).capitalize(), size=f["size_mm"],
        location=location_of[f["lobe"]]) for f in nodules]
    if not nodules:
        lungs.append("No pulmonary nodules or masses.")
    lungs.append("No consolidation. No pneumothorax.")

    if effusions:
        pleura = [f"{effusions[side]['severity'].capitalize()} {side} pleural effusion." if side in effusions
                  else f"No pleural effusion on the {side}." for side in SIDES]
    else:
        pleura = ["No pleural effusion."]

    impression = [f"{f['size_mm']} mm solid nodule in the {location_of[f['lobe']]}." for f in nodules]
    impression += [f"{effusions[side]['severity'].capitalize()} {side} pleural effusion."
                   for side in SIDES if side in effusions]
    lines = ["FINDINGS:", "Lungs: " + " ".join(lungs), "Pleura: " + " ".join(pleura),
             "Heart and mediastinum: " + " ".join(_NORMAL_SENTENCES[:3]),
             "Upper abdomen: " + _NORMAL_SENTENCES[3], "Bones: " + _NORMAL_SENTENCES[4], "",
             "IMPRESSION:"]
    if impression:
        lines += [f"{number}. {text}" for number, text in enumerate(impression, start=1)]
    else:
        lines.append("No acute cardiopulmonary abnormality.")
    return "\n".join(lines) + "\n"


def _article(size_mm: int) -> str:
    """'an' before sizes read with a leading vowel sound (eight, eleven, eighteen, eighty...)."""
    return "an" if str(size_mm).startswith("8") or size_mm in (11, 18) else "a"
