"""Training data: raw dataset readers, the per-case cache, the vocabulary and prompt targets."""
