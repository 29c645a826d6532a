"""Moving voxels between Slicer nodes and numpy arrays on a volume's own grid."""

from __future__ import annotations

import numpy as np

from VoxTellCore.errors import InputError


def ijkToRasArray(volumeNode) -> np.ndarray:
    """The volume node's 4x4 IJK->RAS matrix (origin, spacing and axis directions)."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(row, col) for col in range(4)] for row in range(4)])


def vtkMatrixFromArray(array: np.ndarray):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for col in range(4):
            matrix.SetElement(row, col, float(array[row, col]))
    return matrix


def volumeArray(volumeNode) -> np.ndarray:
    """A copy of the scalar voxels in KJI order; VTK owns the original buffer."""
    import slicer

    if volumeNode is None or volumeNode.GetImageData() is None:
        raise InputError("The input volume has no voxels: load an image first.")
    if volumeNode.GetImageData().GetNumberOfScalarComponents() != 1:
        raise InputError(f"{volumeNode.GetName()} is not a scalar volume: pick a grey-level image.")
    return np.array(slicer.util.arrayFromVolume(volumeNode), copy=True)


def orientedImageFromMask(mask: np.ndarray, ijkToRas: np.ndarray):
    """A binary vtkOrientedImageData holding a KJI ``mask`` on the grid that ``ijkToRas`` describes."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    image = slicer.vtkOrientedImageData()
    image.SetDimensions(mask.shape[2], mask.shape[1], mask.shape[0])
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = (np.asarray(mask) > 0).ravel()
    image.SetImageToWorldMatrix(vtkMatrixFromArray(ijkToRas))
    return image


def roiBoundsRas(roiNode) -> tuple[float, float, float, float, float, float] | None:
    """(x0, y0, z0, x1, y1, z1) in RAS mm of a markups ROI node (world coordinates), or None."""
    if roiNode is None:
        return None
    bounds = [0.0] * 6
    roiNode.GetRASBounds(bounds)  # (xmin, xmax, ymin, ymax, zmin, zmax)
    if bounds[1] < bounds[0]:
        raise InputError(f"The ROI {roiNode.GetName()} is empty: place it over the region to segment.")
    return (bounds[0], bounds[2], bounds[4], bounds[1], bounds[3], bounds[5])
