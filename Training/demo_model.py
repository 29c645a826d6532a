"""Build the built-in demo model, from nothing, with the project's own pipeline.

    python -m Training.demo_model [--out Resources/DemoModel] [--work demo_build] [--cases 160] [--evaluate-only]

1. a small Qwen3 text encoder made locally, its tokenizer trained on the phantom vocabulary;
2. synthetic CT phantoms (VoxTellCore.phantoms) in nnU-Net raw layout;
3. the embedding bank of every vocabulary prompt;
4. voxtell-train preprocess, then voxtell-train with configs/demo.json on the CPU;
5. the model folder (official layout) + text encoder + bank, and an evaluation on held-out
   phantoms (new seeds, orientations absent from the training set) in evaluation.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from Training.config import TrainingConfig
from Training.data.preprocess import preprocess
from VoxTellCore.phantoms.dataset import DATASET_NAME, write_phantom_dataset
from VoxTellCore.phantoms.evaluation import evaluate_on_phantoms, format_table, summary
from VoxTellCore.phantoms.grid import check_axcodes
from Training.trainer import train
from VoxTellCore.checkpoint import load_model, save_model_folder
from VoxTellCore.models import DEMO_DESCRIPTION
from VoxTellCore.text.small_qwen3 import build_embedding_bank, build_small_qwen3

ROOT = Path(__file__).resolve().parent.parent
VOCABULARY = ROOT / "Resources" / "vocabulary" / "phantom_vocabulary.json"
CONFIG = ROOT / "configs" / "demo.json"
HELD_OUT_SEEDS = range(900_000, 900_012)
PHANTOM_SHAPE = (64, 64, 64)  # ~5 mm voxels: the whole phantom fits one 64^3 window


def vocabulary_prompts(path: Path = VOCABULARY) -> list[str]:
    concepts = json.loads(path.read_text(encoding="utf-8"))["concepts"]
    return list(dict.fromkeys(n.lower() for c in concepts for n in [c["name"], *c["synonyms"]]))


def unseen_orientations(dataset: Path, count: int) -> list[str | None]:
    """Orientations that no training phantom has (cycled), so evaluation tests generalisation."""
    import itertools

    seen = {case["orientation"] for case in json.loads((dataset / "cases.json").read_text(encoding="utf-8")).values()}
    axes = [("R", "L"), ("A", "P"), ("S", "I")]
    every = {"".join(axes[p][f] for p, f in zip(perm, flips))
             for perm in itertools.permutations(range(3)) for flips in itertools.product((0, 1), repeat=3)}
    unseen = sorted(check_axcodes(a) for a in every - seen) or [None]
    return [unseen[i % len(unseen)] for i in range(count)]


def build(out: Path, work: Path, cases: int, overrides: list[str]) -> dict:
    """Steps 1-5: encoder, data, bank, training, then the shipped folder and its evaluation."""
    work.mkdir(parents=True, exist_ok=True)
    prompts = vocabulary_prompts()
    encoder = build_small_qwen3(work / "text_encoder", prompts, hidden_size=64, seed=0)
    bank = build_embedding_bank(encoder, prompts, work / "embedding_bank.npz")
    dataset = work / DATASET_NAME
    if not (dataset / "dataset.json").is_file():
        write_phantom_dataset(dataset, n_cases=cases, seed=0, shape=PHANTOM_SHAPE)

    paths = [f'datasets=[{{"name": "{DATASET_NAME}", "type": "nnunet", "path": "{dataset}"}}]',
             f'embedding_bank="{bank}"', f'text_encoder="{encoder}"', f'preprocessed_dir="{work / "preprocessed"}"',
             f'vocabulary=["{VOCABULARY}"]']
    config = TrainingConfig.from_file(CONFIG, paths + overrides)
    print(preprocess(config.datasets, config.preprocessed_dir, config.seed).summary())
    trained = train(config, work / "run")
    if trained is None:  # stop_after_iterations: the training state is in work/run, no model yet
        print(f"training stopped at iteration {config.stop_after_iterations}; {out} was left as it was")
        return {}

    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "text_encoder", ignore_errors=True)
    shutil.copytree(encoder, out / "text_encoder")
    shutil.copy(bank, out / "embedding_bank.npz")
    info = {"description": DEMO_DESCRIPTION, "text_encoder": "text_encoder", "embedding_bank": "embedding_bank.npz",
            "phantom_shape": list(PHANTOM_SHAPE),
            "training": json.loads((trained / "voxtell_model.json").read_text(encoding="utf-8"))["training"]}
    save_model_folder(load_model(trained), out, info=info)  # weights only: no optimizer state in the shipped file
    return evaluate(out, work)


def evaluate(out: Path, work: Path) -> dict:
    """Held-out evaluation of the model folder ``out`` into ``out/evaluation.json``."""
    from VoxTellCore.inference.predictor import VoxTellPredictor

    predictor = VoxTellPredictor(model=out, device="cpu", embedding_cache_dir=work / "cache")
    orientations = unseen_orientations(work / DATASET_NAME, len(HELD_OUT_SEEDS))
    results = evaluate_on_phantoms(predictor, HELD_OUT_SEEDS, PHANTOM_SHAPE, orientations)
    print(format_table(results))
    evaluation = {**summary(results), "seeds": list(HELD_OUT_SEEDS), "orientations": orientations,
                  "table": format_table(results)}
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "Resources" / "DemoModel")
    parser.add_argument("--work", type=Path, default=ROOT / "demo_build")
    parser.add_argument("--cases", type=int, default=160)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="training config override")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="only re-run the held-out evaluation of --out (after --work built it)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.evaluate_only:
        evaluate(args.out, args.work)
    else:
        build(args.out, args.work, args.cases, args.set)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
