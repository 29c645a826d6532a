"""VoxTell in the browser: a trame-slicer web app on Slicer's own MRML, views and Segment Editor.

Layers (imports go downward only): ``app`` (trame UI) -> ``session`` (one browser user's
scene and runs, no trame) -> ``VoxTellSlicerLib`` (the module's Qt-free logic: masks into
segments, terminology, Revert) -> ``VoxTellCore``. It runs in its own environment
(``.venv-web``, made by ``scripts/setup.sh --web``): trame-slicer pins ``slicer-core<5.12``.
"""

import sys
from pathlib import Path

# The Slicer module's logic is imported as ``VoxTellSlicerLib`` (as Slicer does: the module
# folder is on its path); in a source checkout that folder is VoxTellSlicer/.
_MODULE_DIR = Path(__file__).resolve().parent.parent / "VoxTellSlicer"
if _MODULE_DIR.is_dir() and str(_MODULE_DIR) not in sys.path:
    sys.path.append(str(_MODULE_DIR))
