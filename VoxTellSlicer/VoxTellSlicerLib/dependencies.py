"""First-use setup: VoxTellCore's Python packages inside Slicer's own Python.

Each step either succeeds or raises ``DependencyError`` naming that step and what to do,
so the module can tell the user exactly what failed. PyTorch is installed through the
PyTorch extension when available (it picks the CUDA build for the installed driver);
torch 2.9.x is refused because its 3D convolutions need several times more memory.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
from collections.abc import Callable

TORCH_REQUIREMENT = ">=2.1.2,!=2.9.*"
RECOMMENDED_TORCH = "2.8.0"
# (import name, pip requirement); versions as in the project's requirements/runtime.txt.
REQUIREMENTS = [
    ("numpy", "numpy>=1.24"),
    ("scipy", "scipy"),
    ("SimpleITK", "SimpleITK>=2.2.1"),
    ("nibabel", "nibabel>=5"),
    ("transformers", "transformers>=4.56,<6"),
    ("tokenizers", "tokenizers"),
    ("safetensors", "safetensors"),
    ("huggingface_hub", "huggingface_hub"),
    ("tqdm", "tqdm"),
]
# Installed without dependencies: it asks for timm -> torchvision, which would make pip
# replace Slicer's torch by another build. VoxTell never imports timm.
NO_DEPS_REQUIREMENTS = [("dynamic_network_architectures", "dynamic-network-architectures==0.4.4")]

TORCH_ADVICE = f"""\
Install PyTorch into Slicer's Python in one of these ways, then restart Slicer:
  * Recommended: install the "PyTorch" extension from the Extensions Manager, open its module
    (Utilities > PyTorch Utils) and install torch {RECOMMENDED_TORCH}; it picks the CUDA build that
    matches your NVIDIA driver, or the CPU build when there is no NVIDIA GPU.
  * Or, in Slicer's Python console:
      NVIDIA GPU: slicer.util.pip_install("torch=={RECOMMENDED_TORCH} --index-url https://download.pytorch.org/whl/cu128")
      CPU only:   slicer.util.pip_install("torch=={RECOMMENDED_TORCH} --index-url https://download.pytorch.org/whl/cpu")
  (macOS: slicer.util.pip_install("torch=={RECOMMENDED_TORCH}") uses the Apple build.)
Do not use torch 2.9.x: its 3D convolutions need several times more memory (a known regression)."""


class DependencyError(RuntimeError):
    """A setup step failed; ``step`` names it, the message says what to do."""

    def __init__(self, step: str, message: str):
        super().__init__(f"Setting up VoxTell failed at step '{step}': {message}")
        self.step = step


def installedVersion(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def torchProblem(version: str | None) -> str | None:
    """Why this torch version cannot be used (None when it can)."""
    if version is None:
        return "PyTorch is not installed.\n" + TORCH_ADVICE
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if (major, minor) == (2, 9):
        return (
            f"torch {version} is installed, but torch 2.9.x has a conv3d memory regression that makes VoxTell run "
            f"out of memory. Install torch {RECOMMENDED_TORCH} (or 2.10 or newer) instead.\n" + TORCH_ADVICE
        )
    if (major, minor) < (2, 1):
        return f"torch {version} is too old: VoxTell needs torch {TORCH_REQUIREMENT}.\n" + TORCH_ADVICE
    return None


def missingRequirements() -> list[tuple[str, str]]:
    """(import name, requirement) of the packages that cannot be imported yet."""
    return [item for item in REQUIREMENTS + NO_DEPS_REQUIREMENTS if importlib.util.find_spec(item[0]) is None]


def cudaDevice() -> tuple[str, float] | None:
    """(name, memory in GiB) of the first CUDA GPU that PyTorch sees, without installing anything."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    return properties.name, properties.total_memory / 2**30


def _installTorchWithExtension(log: Callable[[str], object]) -> bool:
    """Use the PyTorch extension's installer; False when that extension is not installed."""
    try:
        import PyTorchUtils
    except ImportError:
        return False
    log("Installing PyTorch with the PyTorch extension (this can take several minutes)...")
    torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True, torchVersionRequirement=TORCH_REQUIREMENT)
    return torch is not None


def setupDependencies(
    pipInstall: Callable[[str], object] | None = None,
    log: Callable[[str], object] = print,
    installTorch: Callable[[Callable[[str], object]], bool] = _installTorchWithExtension,
) -> list[str]:
    """Check and install everything VoxTell needs; returns the requirements it installed.

    ``pipInstall`` defaults to ``slicer.util.pip_install``. Raises ``DependencyError``.
    """
    if pipInstall is None:
        import slicer

        pipInstall = slicer.util.pip_install

    version = installedVersion("torch")
    if version is None and installTorch(log):
        importlib.invalidate_caches()
        version = installedVersion("torch")
    problem = torchProblem(version)
    if problem:
        raise DependencyError("PyTorch", problem)

    installed = []
    for importName, requirement in missingRequirements():
        noDeps = (importName, requirement) in NO_DEPS_REQUIREMENTS
        log(f"Installing {requirement}...")
        try:
            pipInstall(f"{requirement} --no-deps" if noDeps else requirement)
        except Exception as exc:
            raise DependencyError(
                f"pip install {requirement}",
                f"{exc}. Check the internet connection (or proxy settings) and that Slicer's folder is writable, "
                f'then retry; or run slicer.util.pip_install("{requirement}") in the Python console to see the details.',
            ) from exc
        installed.append(requirement)
    importlib.invalidate_caches()

    try:
        importlib.import_module("VoxTellCore.inference.predictor")
    except Exception as exc:
        raise DependencyError(
            "import VoxTellCore",
            f"{type(exc).__name__}: {exc}. Restart Slicer (newly installed packages are sometimes only visible "
            "after a restart); if it persists, reinstall the VoxTell extension.",
        ) from exc
    return installed
