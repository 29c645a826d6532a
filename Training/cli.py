"""``voxtell-train``: train, list the prompts a bank needs, or transfer the encoder.

    voxtell-train CONFIG.json [--set key=value ...] [--resume] [--output DIR]
    voxtell-train prompts CONFIG.json [--set ...] [--out prompts.txt] [--bank bank.npz --encoder ID]
    voxtell-train transfer-encoder --voxtell MODEL_DIR --out weights.pth [--num-classes N]

The same command runs as one process, under ``torchrun --nproc_per_node N -m Training.cli``
and under SLURM (see scripts/slurm_8x8.sbatch).
"""

from __future__ import annotations

import argparse
import sys

from VoxTellCore.errors import InputError, VoxTellError


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxtell-train", description="Train VoxTell from a JSON config.",
                                     epilog="Subcommands: voxtell-train prompts ..., voxtell-train transfer-encoder ...")
    parser.add_argument("config", help="training config (JSON), e.g. configs/default.json")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry (JSON value), e.g. --set num_epochs=10")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/fold_0/checkpoint_latest.pth")
    parser.add_argument("--output", help="output folder (default: the config's output_dir)")
    return parser


def _prompts_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxtell-train prompts",
                                     description="Preprocess the data and list every prompt the embedding bank needs.")
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


def run_prompts(argv: list[str]) -> int:
    from Training.config import TrainingConfig
    from Training.data.prepare import prepare_data
    from Training.data.vocabulary import Vocabulary

    args = _prompts_parser().parse_args(argv)
    config = TrainingConfig.from_file(args.config, args.set)
    data = prepare_data(config.datasets, Vocabulary.load(config.vocabulary), config.preprocessed_dir,
                        config.val_fraction, config.seed)
    prompts = data.prompt_names()
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
    report = export_encoder_transfer(args.voxtell, args.out, args.num_classes)
    print(f"{args.out}: {report.summary()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = {"prompts": run_prompts, "transfer-encoder": run_transfer}.get(argv[0] if argv else "", None)
    try:
        return command(argv[1:]) if command else run_train(argv)
    except VoxTellError as error:
        print(f"voxtell-train: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
