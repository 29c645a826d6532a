"""Share of negative prompts that could be visible, before and after the region rule (default config).

    python bench/negative_safety.py [--config configs/default.json]

For each label-map dataset of the config (Decathlon label names as nnU-Net converts them), the
candidates a case without a known-absent structure draws its negative from, uniformly:
before, every vocabulary concept the dataset does not annotate; now, those of them outside the
dataset's field of view (``Training/data/negatives.py``). "Could be visible": one of the
concept's regions is in the dataset's ``region`` (the vocabulary's region table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DECATHLON_LABELS = {"Dataset003_Liver": {"liver": 1, "cancer": 2}, "Dataset009_Spleen": {"spleen": 1}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from Training.data.negatives import can_be_visible, out_of_view_negatives
    from Training.data.sources import dataset_regions
    from Training.data.vocabulary import Vocabulary

    config = json.loads(args.config.read_text())
    vocabulary = Vocabulary.load([args.config.parent / path for path in config["vocabulary"]])  # relative to the config
    print(f"{'dataset':<20} {'region':<26} {'before: visible / candidates':>29} {'now: visible / candidates':>26}")
    for spec in config["datasets"]:
        if spec["name"] not in DECATHLON_LABELS:
            continue  # partially labelled (ReXGroundingCT): no negatives at all, before or now
        regions = dataset_regions(spec)
        targets = vocabulary.targets_for_dataset(spec["name"], DECATHLON_LABELS[spec["name"]])
        annotated = {t.name for t in targets} | {c.name for c in vocabulary.concepts.values()
                                                 if spec["name"] in c.datasets}
        before = [c for name, c in vocabulary.concepts.items() if name not in annotated]
        now = [vocabulary.concepts[t.name] for t in out_of_view_negatives(vocabulary, regions, annotated)]
        cells = []
        for candidates in (before, now):
            visible = sum(can_be_visible(c.regions, regions) for c in candidates)
            cells.append(f"{visible} / {len(candidates)} ({visible / max(len(candidates), 1):.0%})")
        print(f"{spec['name']:<20} {', '.join(regions):<26} {cells[0]:>29} {cells[1]:>26}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
