"""``voxtell-core``: one subcommand per module in ``VoxTellCore.commands``, named like it."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from VoxTellCore import __version__
from VoxTellCore.errors import VoxTellError

COMMANDS = ("predict", "demo", "evaluate", "findings", "ground", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voxtell-core", description="Free-text promptable 3D segmentation (VoxTell).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"VoxTellCore.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    return run_command(args.command, args)


def run_command(name: str, args: argparse.Namespace) -> int:
    """Run a subcommand with the documented exit codes: its own (0, 1), 2 for a problem the
    user can fix (the message says which and how, no traceback), 130 when interrupted."""
    command = importlib.import_module(f"VoxTellCore.commands.{name}")
    try:
        return int(command.run(args) or 0)
    except VoxTellError as exc:
        print(f"voxtell-core {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
