"""VoxTell batch mode in Slicer's Python: ``voxtell-core predict`` with ``.seg.nrrd`` output.

    Slicer --no-main-window --python-script <VoxTellSlicer>/VoxTellSlicerLib/batch.py -- \\
        -i images/ dicom/ct -o out -p liver "left kidney" [-m MODEL] [--no-overwrite]

It takes every option of ``voxtell-core predict`` and runs the same batch engine
(``VoxTellCore.inference.batch``): the same inputs (image files, folders, DICOM series
folders with ``--series``), model (``-m``, then ``$VOXTELL_MODEL``, then the official model;
the demo only with ``-m demo``), output names, ``--no-overwrite`` resume, ``--parts`` and
exit codes (0 done, 1 some cases failed, 2 nothing run: the message says why). The only
difference is the default ``--format seg-nrrd``: one ``<case>.seg.nrrd`` per image with the
segment names, colours and terminology the module gives. Inside Slicer it first checks the
module's Python packages and installs none: what is missing is listed (the module's Run asks
before installing it). Plain Python
runs it too: ``python VoxTellSlicer/VoxTellSlicerLib/batch.py -i ... -o out -p liver``.

This file lives in VoxTellSlicerLib/ because Slicer loads every top-level .py of the
module folder as a module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

LIB_DIR = Path(__file__).resolve().parent


def _ensureImportPaths() -> None:
    """The module folder (VoxTellSlicerLib, and VoxTellCore in an installed extension) and the
    checkout's root (VoxTellCore in a source checkout) on the path; this file's own folder off
    it, so that its modules (``options``, ``report``, ...) cannot shadow other packages."""
    sys.path[:] = [entry for entry in sys.path if not entry or Path(entry).resolve() != LIB_DIR]
    for path in (LIB_DIR.parent.parent, LIB_DIR.parent):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def inSlicerApplication() -> bool:
    try:
        import slicer
    except ImportError:
        return False
    return hasattr(slicer, "app")


def parseArgs(argv: List[str]) -> argparse.Namespace:
    from VoxTellCore.commands import predict

    parser = argparse.ArgumentParser(
        prog="Slicer --no-main-window --python-script VoxTellSlicerLib/batch.py --",
        description="Segment images from text prompts into Slicer .seg.nrrd files (the options of voxtell-core "
                    "predict; --format defaults to seg-nrrd).",
        epilog=predict.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_arguments(parser)
    parser.set_defaults(format="seg-nrrd")
    if argv and argv[0] == "--":
        argv = argv[1:]
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    _ensureImportPaths()
    args = parseArgs(sys.argv[1:] if argv is None else list(argv))

    from VoxTellCore.cli import run_command

    if inSlicerApplication():
        from VoxTellSlicerLib.dependencies import DependencyError, installPlan, setupDependencies

        missing = installPlan(installTorch=False)
        if missing:
            listed = "; ".join(f"{item.name} ({item.reason})" for item in missing)
            print(f"VoxTell batch: error: missing Python packages: {listed}. Open the VoxTell Segmentation module "
                  "and press Run once (it asks before installing them), then run the batch again.", file=sys.stderr)
            return 2
        try:
            setupDependencies(log=print, installTorch=False)  # checks torch and versions; nothing to install
        except DependencyError as exc:
            print(f"VoxTell batch: error: {exc}", file=sys.stderr)
            return 2
    return run_command("predict", args)


if __name__ == "__main__":
    status = main()
    try:
        import slicer

        if hasattr(slicer, "app"):
            slicer.util.exit(status)
    except ImportError:
        pass
    sys.exit(status)
