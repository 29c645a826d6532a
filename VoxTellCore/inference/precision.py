"""The arithmetic the network runs in: fp32, or autocast to bf16 / fp16.

``auto`` is what the release does: fp16 autocast on CUDA, fp32 elsewhere, so CPU masks are
the release's on every machine. ``bf16`` on a CPU with native bf16 dot products (AVX512-BF16
or AMX) runs the network about 2x faster, but its masks differ from fp32 at the borders
(measured Dice 0.97-0.996 on random-weight models, see bench/README.md), so it is opt-in.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import torch

from VoxTellCore.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_PRECISION = "auto"
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(name: str) -> str:
    """``name`` lower-cased, or an InputError listing the choices."""
    key = str(name).strip().lower()
    if key not in PRECISIONS:
        raise InputError(f"Unknown precision {name!r}: use one of {', '.join(PRECISIONS)}.")
    return key


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The compute dtype of ``name`` on ``device`` (``auto`` decided per device)."""
    key = check_precision(name)
    if key == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if key == "fp16" and device.type == "cpu":
        raise InputError("Precision fp16 runs on a GPU only; on the CPU use bf16, fp32 or auto.")
    if key == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("Precision bf16: this GPU has no bf16 (NVIDIA GPUs before Ampere); use --precision auto "
                         "(fp16, as the release) or fp32.")
    if key == "bf16" and device.type == "cpu" and not native_cpu_bf16():
        warnings.warn("Precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 is emulated and "
                      "slower than fp32. Use --precision auto.", RuntimeWarning, stacklevel=2)
    return _DTYPES[key]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@functools.lru_cache(maxsize=1)
def native_cpu_bf16() -> bool:
    """True when this CPU computes bf16 dot products natively (AVX512-BF16 or AMX-BF16).

    oneDNN also "supports" bf16 on any AVX-512 CPU by emulation, which is slower than fp32,
    so its own flag is not enough.
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.3
    if capabilities is not None:
        try:
            found = capabilities()
            return bool(found.get("avx512_bf16") or found.get("amx_bf16"))
        except Exception:  # noqa: BLE001 - a probe: fall back to the kernel's flags
            pass
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))
