"""Where VoxTell runs: the choices for the device box and what each choice really means.

Works without torch (or with a broken one): then only "auto" and "cpu" are offered. Nothing
here touches the network or loads a model, so the GUI thread can call it.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from VoxTellCore.errors import InputError

#: below this much GPU memory VoxTell runs out of memory on full windows and retries on the CPU
MIN_GPU_MEMORY_GB = 8.0
CPU_WARNING = (
    "No CUDA GPU: VoxTell runs on the CPU, about 1 minute per 192x192x192 window on 2 cores (tens of "
    "minutes for a whole CT). An ROI around the structure makes it much faster."
)


#: Measured with the released model on 2 CPU cores (AMD Zen 4, fp32, bench/README.md): the image
#: encoder of one 192^3 window, and the prompt decoder per prompt and window.
CPU_ENCODE_SECONDS = 26.0
CPU_DECODE_SECONDS = 14.8
RELEASED_PATCH = (192, 192, 192)


def cpuEstimate(imageShape: Tuple[int, int, int], promptCount: int) -> Tuple[int, float]:
    """(windows, minutes) that the released model takes on 2 CPU cores for an image of this
    shape (voxels) and this many prompts. Imports torch: call it after the device probe."""
    from VoxTellCore.inference.sliding_window import DEFAULT_STEP, compute_steps

    padded = tuple(max(size, patch) for size, patch in zip(imageShape, RELEASED_PATCH))  # as the predictor pads
    windows = 1
    for starts in compute_steps(padded, RELEASED_PATCH, DEFAULT_STEP):
        windows *= len(starts)
    return windows, windows * (CPU_ENCODE_SECONDS + CPU_DECODE_SECONDS * max(promptCount, 1)) / 60


def _torch():
    """The torch module, or None when it is missing or cannot be imported."""
    try:
        import torch

        return torch
    except Exception:  # a broken install raises all kinds of errors at import
        return None


def _cudaDevices() -> List[Tuple[str, float]]:
    """(name, memory in GB) of each CUDA GPU that PyTorch sees; [] when none or when CUDA is broken."""
    torch = _torch()
    try:
        if torch is None or not torch.cuda.is_available():
            return []
        devices = []
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            devices.append((properties.name, properties.total_memory / 2**30))
        return devices
    except Exception:  # e.g. a driver that is too old for this torch build
        return []


def _mpsAvailable() -> bool:
    torch = _torch()
    try:
        backend = getattr(getattr(torch, "backends", None), "mps", None)
        return bool(backend is not None and backend.is_available())
    except Exception:
        return False


AUTO_CHOICE = ("auto", "Auto (a CUDA GPU when there is one, else the CPU)")
CPU_CHOICE = ("cpu", "CPU (slow: minutes per image)")
#: What the device box offers before PyTorch was asked (importing it and starting CUDA take
#: seconds, so the module asks in a background thread once its panel shows).
UNPROBED_CHOICES = [AUTO_CHOICE, CPU_CHOICE]


def deviceChoices() -> List[Tuple[str, str]]:
    """(value, label) for the device box: auto, every CUDA GPU, Apple mps when present, cpu."""
    choices = [AUTO_CHOICE]
    for index, (name, memory) in enumerate(_cudaDevices()):
        choices.append((f"cuda:{index}", f"GPU {index}: {name}, {memory:.0f} GB"))
    if _mpsAvailable():
        choices.append(("mps", "Apple GPU (mps)"))
    choices.append(CPU_CHOICE)
    return choices


def probeDevices() -> Tuple[List[Tuple[str, str]], bool]:
    """(device choices, bf16 offered): imports torch and starts CUDA, so call it off the GUI thread."""
    return deviceChoices(), nativeCpuBf16()


def resolveDevice(value: str) -> Tuple[str, Optional[str]]:
    """(device to run on, warning for the user or None) for a device box value.

    "auto" is the first CUDA GPU, else the CPU with a warning (Apple mps only when chosen,
    as the core's ``auto`` does); a GPU below about 8 GB gets a warning. A GPU or mps that
    this computer does not have raises InputError naming the choices that exist.
    """
    name = (value or "auto").strip().lower()
    gpus = _cudaDevices()
    if name == "auto":
        if gpus:
            return "cuda:0", _memoryWarning(0, *gpus[0])
        hint = " Choose Apple GPU (mps) to try this Mac's GPU." if _mpsAvailable() else ""
        return "cpu", CPU_WARNING + hint
    if name == "cpu":
        return "cpu", None
    if name == "mps":
        if not _mpsAvailable():
            raise InputError("This computer has no Apple GPU (mps) that PyTorch can use. Choose Auto or CPU.")
        return "mps", None
    if name == "cuda" or name.startswith("cuda:"):
        index = name.partition(":")[2] or "0"
        if not index.isdigit():
            raise InputError(f"Unknown device '{value}': write cuda:N with N the GPU number, e.g. cuda:1.")
        if int(index) >= len(gpus):
            available = ", ".join(f"cuda:{i}" for i in range(len(gpus))) or "none"
            raise InputError(
                f"GPU {value} is not available: PyTorch sees {len(gpus)} CUDA GPU(s) ({available}). "
                "Choose one of them, Auto or CPU (or install a CUDA build of PyTorch, see Help)."
            )
        return f"cuda:{index}", _memoryWarning(int(index), *gpus[int(index)])
    raise InputError(f"Unknown device '{value}': choose Auto, a GPU (cuda:N), mps or CPU.")


def _memoryWarning(index: int, name: str, memory: float) -> Optional[str]:
    if memory >= MIN_GPU_MEMORY_GB:
        return None
    return (
        f"GPU {index} ({name}) has {memory:.1f} GB of memory; VoxTell needs about {MIN_GPU_MEMORY_GB:.0f} GB. "
        "If it runs out, VoxTell retries on the CPU (much slower). Choose CPU to skip the GPU."
    )


def nativeCpuBf16() -> bool:
    """True when this CPU computes bf16 natively (then the module offers bf16 arithmetic)."""
    try:
        from VoxTellCore.inference.precision import native_cpu_bf16

        return native_cpu_bf16()
    except Exception:  # no or a broken torch: the option is simply not offered
        return False
