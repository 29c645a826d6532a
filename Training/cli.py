"""``voxtell-train``: preprocess, list the prompts a bank needs, train, or transfer the encoder.

    voxtell-train preprocess CONFIG.json [--set ...] [--workers N] [--parts N --part I]
    voxtell-train prompts CONFIG.json [--set ...] [--out prompts.txt] [--bank bank.npz --encoder ID]
    voxtell-train CONFIG.json [--set key=value ...] [--resume] [--output DIR]
    voxtell-train transfer-encoder --voxtell MODEL_DIR --out weights.pth [--num-classes N] [--plans PLANS.json]

The same command runs as one process, under ``torchrun --nproc_per_node N -m Training.cli``
and under SLURM (see scripts/slurm_8x8.sbatch).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from VoxTellCore.errors import InputError, VoxTellError


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxtell-train", description="Train VoxTell from a JSON config.",
                                     epilog="Subcommands: voxtell-train preprocess ..., voxtell-train prompts ..., "
                                            "voxtell-train transfer-encoder ...")
    parser.add_argument("config", help="training config (JSON), e.g. configs/default.json")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry (JSON value), e.g. --set num_epochs=10")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/fold_0/checkpoint_latest.pth")
    parser.add_argument("--output", help="output folder (default: the config's output_dir)")
    return parser


def _preprocess_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxtell-train preprocess",
        description="Fill the preprocessed cache (resumable: only missing cases are done). Run it as many "
                    "processes or nodes at once as you like: each takes its part, from --parts/--part, else "
                    "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, else the torchrun or srun rank.")
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, default=1, help="processes for this part (default 1)")
    parser.add_argument("--parts", type=int, help="split the cases into this many parts ...")
    parser.add_argument("--part", type=int, help="... and do part I (0-based)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _prompts_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxtell-train prompts",
                                     description="List every prompt the embedding bank needs (after preprocess).")
    parser.add_argument("config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write one prompt per line here (default: stdout)")
    parser.add_argument("--bank", help="also embed them into this embedding bank (.npz)")
    parser.add_argument("--encoder", help="text encoder for --bank (Hugging Face id or folder; default: the "
                                          "config's text_encoder)")
    parser.add_argument("--device", default="cpu", help="device for --bank (cpu, cuda)")
    return parser


def _transfer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxtell-train transfer-encoder",
                                     description="Copy VoxTell's image encoder into a plain nnU-Net ResEnc U-Net.")
    parser.add_argument("--voxtell", required=True, help="VoxTell model folder (plans.json + fold_0/)")
    parser.add_argument("--out", required=True, help="output .pth (nnU-Net 'network_weights')")
    parser.add_argument("--num-classes", type=int, default=2, help="segmentation outputs of the U-Net")
    parser.add_argument("--plans", help="the nnU-Net plans file the U-Net will be trained with: checked against "
                                        "VoxTell's encoder, and its decoder is built from it")
    parser.add_argument("--configuration", default="3d_fullres", help="configuration in --plans")
    parser.add_argument("--input-channels", type=int, default=1, help="input channels of the nnU-Net dataset")
    return parser


def run_train(argv: list[str]) -> int:
    from Training.config import TrainingConfig
    from Training.trainer import train

    args = _train_parser().parse_args(argv)
    config = TrainingConfig.from_file(args.config, args.set)
    model_dir = train(config, args.output, resume=args.resume)
    if model_dir is not None:
        print(f"Model written to {model_dir}")
    return 0


def run_preprocess(argv: list[str]) -> int:
    from Training.config import TrainingConfig
    from Training.data.preprocess import preprocess, work_part

    args = _preprocess_parser().parse_args(argv)
    if args.workers < 1:
        raise InputError("--workers must be >= 1.")
    config = TrainingConfig.from_file(args.config, args.set)
    part, parts = work_part(args.part, args.parts)
    report = preprocess(config.datasets, config.preprocessed_dir, config.seed, args.workers, part, parts,
                        progress=not args.no_progress)
    print(f"preprocess part {part + 1}/{parts} into {config.preprocessed_dir}: "
          f"{report.summary(Path(config.preprocessed_dir))}")
    return 0  # failed cases are reported and excluded: a dependent job (SLURM afterok) still starts


def run_prompts(argv: list[str]) -> int:
    from Training.config import TrainingConfig
    from Training.data.prepare import prepare_data
    from Training.data.vocabulary import Vocabulary

    args = _prompts_parser().parse_args(argv)
    config = TrainingConfig.from_file(args.config, args.set)
    data = prepare_data(config.datasets, Vocabulary.load(config.vocabulary), config.preprocessed_dir,
                        config.val_fraction, config.seed)
    prompts = data.prompt_names()
    for dataset, failed in data.excluded.items():
        print(f"{dataset}: {len(failed)} case(s) excluded, preprocessing failed on them", file=sys.stderr)
    for dataset, case_ids in data.unpromptable.items():
        print(f"{dataset}: {len(case_ids)} case(s) left out, nothing to prompt", file=sys.stderr)
    text = "".join(p + "\n" for p in prompts)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    elif not args.bank:
        sys.stdout.write(text)
    if args.bank:
        from VoxTellCore.text.small_qwen3 import build_embedding_bank

        encoder = args.encoder or config.text_encoder
        if not encoder:
            raise InputError("--bank needs a text encoder: pass --encoder or set text_encoder in the config.")
        print(f"{build_embedding_bank(encoder, prompts, args.bank, args.device)}: {len(prompts)} prompts embedded")
    return 0


def run_transfer(argv: list[str]) -> int:
    from Training.encoder_transfer import export_encoder_transfer

    args = _transfer_parser().parse_args(argv)
    report = export_encoder_transfer(args.voxtell, args.out, args.num_classes, args.plans, args.configuration,
                                     args.input_channels)
    print(f"{args.out}: {report.summary()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"preprocess": run_preprocess, "prompts": run_prompts, "transfer-encoder": run_transfer}
    command = commands.get(argv[0] if argv else "", None)
    try:
        return command(argv[1:]) if command else run_train(argv)
    except VoxTellError as error:
        print(f"voxtell-train: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
