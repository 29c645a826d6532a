import sys
from pathlib import Path

# Let tests import the shared fixture modules next to them (model_fixtures, text_fixtures).
sys.path.insert(0, str(Path(__file__).parent))
