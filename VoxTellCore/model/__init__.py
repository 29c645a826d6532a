"""The VoxTell network, built from its plans."""

from VoxTellCore.model.config import VoxTellConfig
from VoxTellCore.model.network import VoxTellModel

__all__ = ["VoxTellConfig", "VoxTellModel"]
