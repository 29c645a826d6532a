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


def roiBoundsRas(roiNode, volumeNode=None) -> tuple[float, float, float, float, float, float] | None:
    """(x0, y0, z0, x1, y1, z1) of a markups ROI node, in the RAS frame of ``volumeNode``'s
    IJK->RAS matrix (the world frame unless the volume is under a transform), or None."""
    if roiNode is None:
        return None
    import slicer
    import vtk

    bounds = [0.0] * 6
    roiNode.GetRASBounds(bounds)  # world (xmin, xmax, ymin, ymax, zmin, zmax)
    if any(bounds[2 * axis + 1] <= bounds[2 * axis] for axis in range(3)):  # e.g. just created, never placed
        raise InputError(f"The ROI {roiNode.GetName()} is empty: place it over the region to segment.")
    worldToVolume = vtk.vtkGeneralTransform()
    volumeTransform = volumeNode.GetParentTransformNode() if volumeNode is not None else None
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(None, volumeTransform, worldToVolume)
    corners = np.array([
        worldToVolume.TransformPoint(x, y, z) for x in bounds[0:2] for y in bounds[2:4] for z in bounds[4:6]
    ])
    low, high = corners.min(axis=0), corners.max(axis=0)
    return (*map(float, low), *map(float, high))


def fitRoiToVolume(roiNode, volumeNode) -> None:
    """Put a markups ROI around the whole volume (world frame): a new ROI starts as a box to
    shrink, not an empty one that every run refuses."""
    bounds = [0.0] * 6
    volumeNode.GetRASBounds(bounds)  # world (xmin, xmax, ymin, ymax, zmin, zmax)
    roiNode.SetCenterWorld(*[(bounds[2 * axis] + bounds[2 * axis + 1]) / 2 for axis in range(3)])
    roiNode.SetSizeWorld(*[bounds[2 * axis + 1] - bounds[2 * axis] for axis in range(3)])


def volumeToSegmentationMatrix(volumeNode, segmentationNode) -> np.ndarray:
    """4x4 from the volume's RAS frame to the segmentation's (identity when both are under
    the same transform, or none). A non-linear transform between them is refused."""
    import slicer
    import vtk

    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(
        volumeNode.GetParentTransformNode(), segmentationNode.GetParentTransformNode(), transform)
    if not slicer.vtkMRMLTransformNode.IsGeneralTransformLinear(transform):
        raise InputError(
            f"{volumeNode.GetName()} and {segmentationNode.GetName()} are under different non-linear transforms: "
            "harden the transform (Data module, right-click > Harden transform) and run again."
        )
    matrix = vtk.vtkMatrix4x4()
    slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(
        volumeNode.GetParentTransformNode(), segmentationNode.GetParentTransformNode(), matrix)
    return np.array([[matrix.GetElement(row, col) for col in range(4)] for row in range(4)])


def segmentationLabelmap(mask: np.ndarray, volumeNode, segmentationNode):
    """A KJI ``mask`` on ``volumeNode``'s grid as a binary labelmap in ``segmentationNode``'s
    frame (what Slicer's segmentation functions expect), exact (no resampling)."""
    return orientedImageFromMask(mask, volumeToSegmentationMatrix(volumeNode, segmentationNode) @ ijkToRasArray(volumeNode))
