"""PNG pictures of volumes with masks outlined, in the radiological display convention."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.io import Volume, kji_to_network

CT_WINDOW = (-1000.0, 600.0)


def _radiological(plane: np.ndarray) -> np.ndarray:
    """Flip the last two axes of network-array planes (growing toward R and A, or R and S) so
    that patient right is on the viewer's left and anterior (axial) or superior (coronal) is up."""
    return np.flip(plane, (-2, -1))


def _save(figure, path: Path, dpi: int = 100) -> None:
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=dpi), ".png")
    finally:
        plt.close(figure)


# Distinct colours (Trubetskoy's list): neighbours in a prompt list never get similar hues,
# unlike tab20, whose pairs are a dark and a light shade of one hue.
DISTINCT_COLORS = (
    "#4363d8", "#f58231", "#e6194b", "#f032e6", "#3cb44b", "#9a6324", "#42d4f4", "#911eb4", "#bfef45",
    "#ffe119", "#fabed4", "#469990", "#dcbeff", "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075",
)
# Contours are drawn on masks upsampled this many times (bilinear), so they are smooth lines
# instead of voxel staircases.
CONTOUR_UPSAMPLING = 4


def _draw(axis, image: np.ndarray, masks: np.ndarray, colors, title: str, window: tuple[float, float],
          aspect: float = 1.0) -> None:
    """One plane with each mask outlined in its colour."""
    from scipy.ndimage import zoom

    axis.imshow(_radiological(image), cmap="gray", vmin=window[0], vmax=window[1], interpolation="bilinear",
                aspect=aspect)
    height, width = image.shape
    for color, mask in zip(colors, _radiological(masks)):
        if not mask.any():
            continue
        fine = zoom(mask.astype(np.float32), CONTOUR_UPSAMPLING, order=1)
        rows = (np.arange(fine.shape[0]) + 0.5) / CONTOUR_UPSAMPLING - 0.5
        columns = (np.arange(fine.shape[1]) + 0.5) / CONTOUR_UPSAMPLING - 0.5
        axis.contour(columns, rows, fine, levels=[0.5], colors=[color], linewidths=1.6)
    axis.set_xlim(-0.5, width - 0.5)
    axis.set_ylim(height - 0.5, -0.5)
    axis.set_title(title, fontsize=10)
    axis.axis("off")


def _mark_sides(axis, top: str, bottom: str) -> None:
    """Orientation letters on a radiological plane: the patient's right (R) on the viewer's left."""
    style = {"transform": axis.transAxes, "color": "yellow", "fontsize": 12, "fontweight": "bold"}
    for text, x, y, ha, va in (("R", 0.01, 0.5, "left", "center"), ("L", 0.99, 0.5, "right", "center"),
                               (top, 0.5, 0.99, "center", "top"), (bottom, 0.5, 0.01, "center", "bottom")):
        axis.text(x, y, text, ha=ha, va=va, **style)


def _plane_through_smallest(masks: np.ndarray) -> int:
    """The axial plane of (N, S, A, R) masks through the centre of the smallest non-empty mask,
    so that small structures such as nodules appear in the picture."""
    sizes = [(int(mask.sum()), index) for index, mask in enumerate(masks) if mask.any()]
    if not sizes:
        return masks.shape[1] // 2
    return int(round(np.argwhere(masks[min(sizes)[1]])[:, 0].mean()))


def _busiest_coronal_plane(masks: np.ndarray) -> int:
    """The coronal plane of (N, S, A, R) masks where most masks show (of those, the one nearest the middle)."""
    present = masks.any(axis=(1, 3)).sum(axis=0)
    middle = (len(present) - 1) / 2
    return int(max(range(len(present)), key=lambda index: (present[index], -abs(index - middle))))


def overview_png(volume: Volume, masks: np.ndarray, names: Sequence[str], path: Path, title: str,
                 truth: Optional[np.ndarray] = None, window: tuple[float, float] = CT_WINDOW) -> Path:
    """An axial and a coronal slice with every mask (N, K, J, I) outlined, and a legend.

    With ``truth`` (N, K, J, I), the ground truth is drawn beside the prediction in the same
    colours, on the same slices, so that a reader sees at a glance where they differ.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = volume.to_network()
    predicted = kji_to_network(masks, volume.ijk_to_ras)
    columns = [("VoxTell", predicted)]
    if truth is not None:
        columns.append(("ground truth", kji_to_network(truth, volume.ijk_to_ras)))
    s, a = _plane_through_smallest(columns[-1][1]), _busiest_coronal_plane(columns[-1][1])
    spacing = np.linalg.norm(volume.network_to_ras[:3, :3], axis=0)  # (S, A, R) voxel sizes in mm
    colors = [DISTINCT_COLORS[index % len(DISTINCT_COLORS)] for index in range(len(names))]
    figure, axes = plt.subplots(2, len(columns), figsize=(6.5 * len(columns), 12.5), squeeze=False)
    for column, (label, network_masks) in enumerate(columns):
        _draw(axes[0, column], image[s], network_masks[:, s], colors, f"{label}: axial slice {s}", window,
              aspect=spacing[1] / spacing[2])
        _draw(axes[1, column], image[:, a], network_masks[:, :, a], colors, f"{label}: coronal slice {a}", window,
              aspect=spacing[0] / spacing[2])
        _mark_sides(axes[0, column], "A", "P")
        _mark_sides(axes[1, column], "S", "I")
    handles = [plt.Line2D([], [], color=c, linewidth=6, label=n) for c, n in zip(colors, names)]
    figure.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.08, 1, 0.97))
    _save(figure, path, dpi=130)
    return path


def finding_png(volume: Volume, mask: np.ndarray, path: Path, title: str, label: str,
                window: tuple[float, float] = CT_WINDOW) -> Path:
    """The axial slice through the centre of ``mask`` (K, J, I), with the mask outlined, the
    patient's sides marked, ``label`` (which model made the mask) below, and "no voxels found"
    across the picture when the mask is empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, network_mask = volume.to_network(), kji_to_network(mask, volume.ijk_to_ras)
    occupied = np.nonzero(network_mask.any(axis=(1, 2)))[0]
    s = int(np.round(occupied.mean())) if occupied.size else image.shape[0] // 2
    spacing = np.linalg.norm(volume.network_to_ras[:3, :3], axis=0)
    figure, axis = plt.subplots(1, 1, figsize=(6, 6.8))
    _draw(axis, image[s], network_mask[None, s], ["#ff3030"], f"axial slice {s} (RAS-reoriented)", window,
          aspect=spacing[1] / spacing[2])
    _mark_sides(axis, "A", "P")
    if not occupied.size:
        axis.text(0.5, 0.5, "no voxels found", transform=axis.transAxes, ha="center", va="center", fontsize=18,
                  color="#ff3030", bbox={"facecolor": "black", "alpha": 0.7})
    figure.suptitle(title, fontsize=9, wrap=True)
    figure.text(0.5, 0.01, label, ha="center", va="bottom", fontsize=8, wrap=True)
    _save(figure, path)
    return path
