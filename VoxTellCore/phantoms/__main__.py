"""python -m VoxTellCore.phantoms OUT_DIR --cases N [--seed S] [--workers W] [--shape K J I]"""

from __future__ import annotations

import argparse
import sys

from .dataset import write_phantom_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m VoxTellCore.phantoms",
                                     description="Write a synthetic CT phantom dataset (nnU-Net raw layout).")
    parser.add_argument("out_dir")
    parser.add_argument("--cases", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shape", type=int, nargs=3, metavar=("K", "J", "I"),
                        help="fixed array size (default: native 2-5 mm spacing)")
    args = parser.parse_args(argv)
    options = {"shape": tuple(args.shape)} if args.shape else {}
    write_phantom_dataset(args.out_dir, args.cases, args.seed, workers=args.workers,
                          progress=lambda done, total: print(f"\r{done}/{total} cases", end="", flush=True),
                          **options)
    print(f"\nwrote {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
