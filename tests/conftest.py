import sys
from pathlib import Path

# Let tests import the shared fixture modules next to them (model_fixtures, text_fixtures).
sys.path.insert(0, str(Path(__file__).parent))

# tests/web needs the web app's environment (.venv-web, trame-slicer); tests/test_web_app.py runs it there.
try:
    import trame_slicer  # noqa: F401
except ImportError:
    collect_ignore = ["web"]
