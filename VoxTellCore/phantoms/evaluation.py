"""How well a model segments held-out phantoms: per-prompt Dice, left/right confusions, and
finding prompts that also cover the same kind of finding at another location."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from VoxTellCore.phantoms.generator import Phantom, generate_phantom
from VoxTellCore.phantoms.labels import LOBES, SIDES, effusion_prompt, nodule_prompt
from VoxTellCore.evaluation.metrics import dice

ORGAN_PROMPTS = (
    "left lung", "right lung", "heart", "aorta", "liver", "spleen", "left kidney", "right kidney", "vertebrae",
)
# Paired organs: a prompt is confused when it overlaps its mirror organ more than its own.
MIRRORED_ORGANS = {"left lung": "right lung", "left kidney": "right kidney"}
MIRRORED_ORGANS.update({right: left for left, right in list(MIRRORED_ORGANS.items())})
# Lateral findings: confused when they overlap the other hemithorax (lung + effusion) more than their own.
NODULE_SIDES = {nodule_prompt(lobe): side for lobe, _, side in LOBES}
EFFUSION_SIDES = {effusion_prompt(side): side for side in SIDES}
FINDING_SIDES = {**NODULE_SIDES, **EFFUSION_SIDES}


@dataclass
class PromptResult:
    case: str
    prompt: str
    kind: str  # "organ" or "finding"
    dice: float
    side_confused: bool  # overlaps the contralateral structure more than its own
    covers_other_location: bool = False  # a finding prompt covering half of another lobe's nodule / side's effusion


def phantom_prompts(phantom: Phantom) -> list[tuple[str, str]]:
    """(prompt, kind): the organs, then the location prompt of every finding present."""
    findings = sorted({f["prompt"] for f in phantom.findings})
    return [(p, "organ") for p in ORGAN_PROMPTS] + [(p, "finding") for p in findings]


def _hemithorax(side: str, labels: dict[str, np.ndarray]) -> np.ndarray:
    effusion = labels.get(effusion_prompt(side))
    return labels[f"{side} lung"] if effusion is None else labels[f"{side} lung"] | effusion


def side_confused(prediction: np.ndarray, prompt: str, labels: dict[str, np.ndarray]) -> bool:
    """The prediction overlaps the contralateral structure (paired organs) or hemithorax
    (nodules, effusions) more than the ipsilateral one."""
    if not prediction.any():
        return False
    if prompt in MIRRORED_ORGANS:
        own, other = labels[prompt], labels[MIRRORED_ORGANS[prompt]]
    elif prompt in FINDING_SIDES:
        side = FINDING_SIDES[prompt]
        own, other = _hemithorax(side, labels), _hemithorax(SIDES[1 - SIDES.index(side)], labels)
    else:
        return False
    return bool(np.logical_and(prediction, other).sum() > np.logical_and(prediction, own).sum())


def covers_other_location(prediction: np.ndarray, prompt: str, labels: dict[str, np.ndarray]) -> bool:
    """A nodule prompt whose mask covers at least half of a nodule in another lobe (an effusion
    prompt: of the other side's effusion). Stricter than ``side_confused``, which a mask covering
    both lungs' nodules alike passes."""
    group = next((g for g in (NODULE_SIDES, EFFUSION_SIDES) if prompt in g), {})
    others = [labels[other] for other in group if other != prompt and other in labels and labels[other].any()]
    return any(np.logical_and(prediction, target).sum() >= 0.5 * target.sum() for target in others)


def score_phantom(phantom: Phantom, prompts: list[tuple[str, str]], masks: np.ndarray, case: str) -> list[PromptResult]:
    results = []
    for (prompt, kind), mask in zip(prompts, masks):
        prediction = mask > 0
        results.append(PromptResult(case, prompt, kind, dice(prediction, phantom.labels[prompt]),
                                    side_confused(prediction, prompt, phantom.labels),
                                    covers_other_location(prediction, prompt, phantom.labels)))
    return results


def evaluate_on_phantoms(predictor, seeds: Iterable[int], shape: tuple[int, int, int] | None = None,
                         orientations: Iterable[str | None] | None = None) -> list[PromptResult]:
    """Segment freshly generated phantoms with ``predictor`` (a VoxTellPredictor) and score them."""
    seeds = list(seeds)
    orientations = list(orientations) if orientations is not None else [None] * len(seeds)
    results = []
    for seed, orientation in zip(seeds, orientations):
        phantom = generate_phantom(seed=seed, shape=shape, orientation=orientation)
        prompts = phantom_prompts(phantom)
        masks = predictor.predict_volume(phantom.to_volume(), [p for p, _ in prompts])
        results += score_phantom(phantom, prompts, masks, f"seed{seed}-{phantom.axcodes}")
    return results


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def summary(results: list[PromptResult]) -> dict[str, float]:
    findings = [r for r in results if r.kind == "finding"]
    return {
        "organ_mean_dice": _mean([r.dice for r in results if r.kind == "organ"]),
        "finding_mean_dice": _mean([r.dice for r in findings]),
        "nodule_mean_dice": _mean([r.dice for r in findings if r.prompt in NODULE_SIDES]),
        "effusion_mean_dice": _mean([r.dice for r in findings if r.prompt in EFFUSION_SIDES]),
        "side_confusions": sum(r.side_confused for r in results),
        "findings_covering_another_location": sum(r.covers_other_location for r in results),
        "finding_prompts": len(findings),
        "prompts": len(results),
    }


def format_table(results: list[PromptResult]) -> str:
    """Mean Dice per prompt over the cases, then the summary lines."""
    by_prompt: dict[str, list[PromptResult]] = {}
    for r in results:
        by_prompt.setdefault(r.prompt, []).append(r)
    width = max(len(p) for p in by_prompt)
    lines = [f"{'prompt':<{width}} | {'cases':>5} | {'Dice':>6} | left/right confused | covers another location"]
    for prompt, rows in by_prompt.items():
        lines.append(f"{prompt:<{width}} | {len(rows):5d} | {np.mean([r.dice for r in rows]):6.3f} | "
                     f"{sum(r.side_confused for r in rows):19d} | {sum(r.covers_other_location for r in rows)}")
    s = summary(results)
    lines.append(f"mean Dice: organ prompts {s['organ_mean_dice']:.3f}, nodule prompts {s['nodule_mean_dice']:.3f}, "
                 f"effusion prompts {s['effusion_mean_dice']:.3f}; left/right confusions {s['side_confusions']}; "
                 f"finding prompts covering another location {s['findings_covering_another_location']} "
                 f"of {s['finding_prompts']}")
    return "\n".join(lines)
