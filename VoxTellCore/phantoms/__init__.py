"""Synthetic CT phantoms with exact masks, findings and reports (the demo model's data)."""

from .generator import Phantom, generate_phantom
from .labels import CONCEPTS, PARTITION, concept_masks

__all__ = ["CONCEPTS", "PARTITION", "Phantom", "concept_masks", "generate_phantom"]
