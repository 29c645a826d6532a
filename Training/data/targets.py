"""What a prompt refers to inside one cached case."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Target:
    """A concept's prompts (default name first, then rephrasings) and where its voxels are.

    ``labels``: label values of a label-map case whose union is the structure.
    ``channel``: channel of a multi-channel case (one binary mask per finding).
    Neither: an absent structure (negative prompt, empty target).
    """

    names: tuple[str, ...]
    labels: tuple[int, ...] = ()
    channel: int | None = None

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def key(self) -> str:
        """Identity of the location: labels or channel, used to find foreground voxels."""
        if self.channel is not None:
            return f"c{self.channel}"
        return "l" + "_".join(str(v) for v in self.labels) if self.labels else ""

    def mask(self, segmentation: np.ndarray) -> np.ndarray:
        """Binary mask of this target in a (C, *spatial) segmentation crop."""
        if self.channel is not None:
            return segmentation[self.channel] > 0
        if self.labels:
            return np.isin(segmentation[0], self.labels)
        return np.zeros(segmentation.shape[1:], dtype=bool)


def absent(names: tuple[str, ...]) -> Target:
    return Target(names=names)
