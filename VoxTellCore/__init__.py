"""VoxTellCore: free-text promptable 3D segmentation (VoxTell), with no Slicer dependency."""

__version__ = "0.1.0"
