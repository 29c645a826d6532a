"""PNG pictures of volumes with masks outlined, in the radiological display convention."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from VoxTellCore.atomic import atomic_write
from VoxTellCore.io import Volume, kji_to_network

CT_WINDOW = (-1000.0, 600.0)


def _radiological(plane: np.ndarray) -> np.ndarray:
    """Flip the last two axes of network-array planes (growing toward R and A, or R and S) so
    that patient right is on the viewer's left and anterior (axial) or superior (coronal) is up."""
    return np.flip(plane, (-2, -1))


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=100), ".png")
    finally:
        plt.close(figure)


def _draw(axis, image: np.ndarray, masks: np.ndarray, colors, title: str, window: tuple[float, float]) -> None:
    axis.imshow(_radiological(image), cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest")
    for color, mask in zip(colors, _radiological(masks)):
        if mask.any():
            axis.contour(mask, levels=[0.5], colors=[color], linewidths=1.2)
    axis.set_title(title)
    axis.axis("off")


def overview_png(volume: Volume, masks: np.ndarray, names: Sequence[str], path: Path, title: str,
                 window: tuple[float, float] = CT_WINDOW) -> Path:
    """Mid-axial and mid-coronal slices with every mask (N, K, J, I) outlined and a legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, network_masks = volume.to_network(), kji_to_network(masks, volume.ijk_to_ras)
    s_mid, a_mid = image.shape[0] // 2, image.shape[1] // 2
    colors = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(names), 1)))
    figure, axes = plt.subplots(1, 2, figsize=(12, 6.5))
    _draw(axes[0], image[s_mid], network_masks[:, s_mid], colors, "axial", window)
    _draw(axes[1], image[:, a_mid], network_masks[:, :, a_mid], colors, "coronal", window)
    handles = [plt.Line2D([], [], color=c, label=n) for c, n in zip(colors, names)]
    figure.legend(handles=handles, loc="lower center", ncol=4, fontsize=8)
    figure.suptitle(title)
    _save(figure, path)
    return path


def finding_png(volume: Volume, mask: np.ndarray, path: Path, title: str,
                window: tuple[float, float] = CT_WINDOW) -> Path:
    """The axial slice through the centre of ``mask`` (K, J, I), with the mask outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, network_mask = volume.to_network(), kji_to_network(mask, volume.ijk_to_ras)
    occupied = np.nonzero(network_mask.any(axis=(1, 2)))[0]
    s = int(np.round(occupied.mean())) if occupied.size else image.shape[0] // 2
    figure, axis = plt.subplots(1, 1, figsize=(6, 6.4))
    _draw(axis, image[s], network_mask[None, s], ["#ff3030"], f"axial slice {s} (RAS-reoriented)", window)
    figure.suptitle(title, fontsize=9, wrap=True)
    _save(figure, path)
    return path
