"""How much memory this process can still get: the host's, or a CUDA GPU's."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch


def available_memory_bytes() -> Optional[int]:
    """Memory the system can still give this process (psutil, else /proc/meminfo); None when unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_memory_bytes(device: torch.device) -> int:
    """Free GPU memory on CUDA (within this process's memory fraction), else the host's
    available memory (0 when unknown)."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        allocated = torch.cuda.memory_allocated(device)
        available = free + torch.cuda.memory_reserved(device) - allocated
        fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)  # torch >= 2.5
        if fraction is not None:  # set_per_process_memory_fraction caps this process below the free memory
            available = min(available, int(fraction(device) * total) - allocated)
        return max(int(available), 0)
    return available_memory_bytes() or 0
