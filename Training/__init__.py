"""VoxTell training pipeline (voxtell-train)."""
