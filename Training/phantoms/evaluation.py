"""How well a model segments held-out phantoms: per-prompt Dice and left/right confusions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from Training.phantoms.generator import Phantom, generate_phantom
from VoxTellCore.evaluation.metrics import dice

ORGAN_PROMPTS = (
    "left lung", "right lung", "heart", "aorta", "liver", "spleen", "left kidney", "right kidney", "vertebrae",
)
# Every lateral prompt and its mirror image, for the left/right confusion check.
LATERAL_PAIRS = {
    "left lung": "right lung", "left kidney": "right kidney",
    "left pleural effusion": "right pleural effusion",
    "nodule in the left upper lobe": "nodule in the right upper lobe",
    "nodule in the left lower lobe": "nodule in the right lower lobe",
}
LATERAL_PAIRS.update({right: left for left, right in list(LATERAL_PAIRS.items())})


@dataclass
class PromptResult:
    case: str
    prompt: str
    kind: str  # "organ" or "finding"
    dice: float
    side_confused: bool  # overlaps the contralateral structure more than its own


def phantom_prompts(phantom: Phantom) -> list[tuple[str, str]]:
    """(prompt, kind): the organs, then the location prompt of every finding present."""
    findings = sorted({f["prompt"] for f in phantom.findings})
    return [(p, "organ") for p in ORGAN_PROMPTS] + [(p, "finding") for p in findings]


def side_confused(prediction: np.ndarray, prompt: str, labels: dict[str, np.ndarray]) -> bool:
    mirror = LATERAL_PAIRS.get(prompt)
    if mirror is None or mirror not in labels or not prediction.any():
        return False
    own = np.logical_and(prediction, labels[prompt]).sum()
    other = np.logical_and(prediction, labels[mirror]).sum()
    return bool(other > own)


def score_phantom(phantom: Phantom, prompts: list[tuple[str, str]], masks: np.ndarray, case: str) -> list[PromptResult]:
    results = []
    for (prompt, kind), mask in zip(prompts, masks):
        prediction = mask > 0
        results.append(PromptResult(case, prompt, kind, dice(prediction, phantom.labels[prompt]),
                                    side_confused(prediction, prompt, phantom.labels)))
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


def summary(results: list[PromptResult]) -> dict[str, float]:
    organ = [r.dice for r in results if r.kind == "organ"]
    finding = [r.dice for r in results if r.kind == "finding"]
    return {
        "organ_mean_dice": float(np.mean(organ)) if organ else float("nan"),
        "finding_mean_dice": float(np.mean(finding)) if finding else float("nan"),
        "side_confusions": sum(r.side_confused for r in results),
        "prompts": len(results),
    }


def format_table(results: list[PromptResult]) -> str:
    """Mean Dice per prompt over the cases, then the summary lines."""
    by_prompt: dict[str, list[PromptResult]] = {}
    for r in results:
        by_prompt.setdefault(r.prompt, []).append(r)
    width = max(len(p) for p in by_prompt)
    lines = [f"{'prompt':<{width}} | {'cases':>5} | {'Dice':>6} | left/right confused"]
    for prompt, rows in by_prompt.items():
        lines.append(f"{prompt:<{width}} | {len(rows):5d} | {np.mean([r.dice for r in rows]):6.3f} | "
                     f"{sum(r.side_confused for r in rows)}")
    s = summary(results)
    lines.append(f"organ prompts mean Dice {s['organ_mean_dice']:.3f}; finding prompts mean Dice "
                 f"{s['finding_mean_dice']:.3f}; left/right confusions {s['side_confusions']}")
    return "\n".join(lines)
