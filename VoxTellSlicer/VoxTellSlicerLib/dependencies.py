"""First-use setup: VoxTellCore's Python packages inside Slicer's own Python.

``installPlan`` says what is missing from the installed packages' metadata alone (no import,
no network, so the GUI thread can call it) and ``installQuestion`` puts it to the user with
the download sizes; only after a yes does ``setupDependencies`` run, in a worker thread (no Qt,
no dialogs). pip and the PyTorch extension's light-the-torch run as child processes
of PythonSlicer whose output goes to ``log`` line by line, with socket timeouts, and Cancel
stops them. Installed versions are checked against the requirements, not only presence: a
version outside its range (or outside what another of these packages declares, e.g. the
huggingface_hub range that transformers accepts at import) is reported and replaced.

The pins hold for Slicer 5.6/5.8 (Python 3.9) and 5.10+ (Python 3.12): transformers 5 needs
Python 3.10, and transformers 4.x refuses huggingface_hub 1.x at import, hence the markers.
Each step succeeds or raises ``DependencyError`` naming the step and what to do.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # Slicer ships packaging; pip's vendored copy is the same library
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

from VoxTellCore.child_process import ChildProcess
from VoxTellCore.errors import Cancelled
from VoxTellCore.progress import CancelCheck, is_cancelled

Log = Callable[[str], object]

TORCH_REQUIREMENT = ">=2.1.2,!=2.9.*"
RECOMMENDED_TORCH = "2.8.0"
REQUIREMENTS = [
    "numpy>=1.24",
    "scipy",
    "SimpleITK>=2.2.1",
    "nibabel>=5",
    'transformers>=4.56,<5; python_version < "3.10"',
    'transformers>=4.56,<6; python_version >= "3.10"',
    'huggingface_hub>=0.34,<1; python_version < "3.10"',
    'huggingface_hub>=0.34; python_version >= "3.10"',
    "tokenizers",
    "safetensors",
    "tqdm",
    "psutil",  # free memory before loading the 8 GB text encoder (Windows, macOS)
    "slicerio>=1.4",  # batch mode's .seg.nrrd output
    'highdicom==0.28.2; python_version >= "3.10"',  # DICOM SEG output; highdicom 0.28 needs Python 3.10+
    'highdicom==0.22.0; python_version < "3.10"',  # the last for Python 3.9 (Slicer 5.6, 5.8; with pydicom 2.4)
]
# Installed without dependencies: it asks for timm -> torchvision, which would make pip
# replace Slicer's torch by another build. VoxTell never imports timm.
NO_DEPS_REQUIREMENTS = ["dynamic-network-architectures>=0.4.1,<0.5"]
# Slicer's own build (its SimpleITK has Slicer's IO classes): checked, never replaced.
NEVER_REPLACE = {"simpleitk"}
LIGHT_THE_TORCH = "light-the-torch>=0.5"  # as the PyTorch extension installs it
PIP_OPTIONS = ["--timeout", "30", "--retries", "2", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]

#: About what each package downloads (its wheel for 64-bit Windows/Linux, late 2025; its own
#: dependencies add a little), for the install question.
DOWNLOAD_MB = {
    "numpy": 16, "scipy": 38, "simpleitk": 52, "nibabel": 3, "transformers": 12, "huggingface-hub": 1,
    "tokenizers": 3, "safetensors": 1, "tqdm": 1, "psutil": 1, "slicerio": 1, "highdicom": 1,
    "dynamic-network-architectures": 1,
}
TORCH_DOWNLOAD = "about 0.2 GB for the CPU build, up to 3 GB for a CUDA build with its NVIDIA libraries"

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


def installedVersion(distribution: str) -> Optional[str]:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def installedRequires(distribution: str) -> List[str]:
    """The requirements an installed distribution declares (``Requires-Dist``)."""
    try:
        return importlib.metadata.requires(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        return []


def torchProblem(version: Optional[str]) -> Optional[str]:
    """Why this torch version cannot be used (None when it can)."""
    if version is None:
        return "PyTorch is not installed.\n" + TORCH_ADVICE
    if Requirement("torch" + TORCH_REQUIREMENT).specifier.contains(version, prereleases=True):
        return None
    if version.startswith("2.9."):
        return (
            f"torch {version} is installed, but torch 2.9.x has a conv3d memory regression that makes VoxTell run "
            f"out of memory. Install torch {RECOMMENDED_TORCH} (or 2.10 or newer) instead.\n" + TORCH_ADVICE
        )
    return f"torch {version} is too old: VoxTell needs torch {TORCH_REQUIREMENT}.\n" + TORCH_ADVICE


def applicableRequirements(requirements: List[str], environment: Optional[dict] = None) -> List[Requirement]:
    """The requirements whose environment marker holds (for this Python, or ``environment``)."""
    parsed = [Requirement(text) for text in requirements]
    return [r for r in parsed if r.marker is None or r.marker.evaluate(environment)]


def versionProblem(requirement: Requirement, neededBy: str = "VoxTell") -> Optional[str]:
    """Why the installed package does not meet ``requirement`` (missing or out of range), else None."""
    version = installedVersion(requirement.name)
    if version is None:
        return f"{requirement.name} is not installed"
    if not requirement.specifier.contains(version, prereleases=True):
        return f"{requirement.name} {version} is installed, but {neededBy} needs {requirement.name}{requirement.specifier}"
    return None


def unmetRequirements(requirements: List[str]) -> List[tuple]:
    """(requirement, problem) for each of ``requirements`` not met, then for what the installed
    ones declare about each other (transformers checks its huggingface_hub range at import)."""
    ours = applicableRequirements(requirements)
    unmet = [(r, p) for r in ours for p in [versionProblem(r)] if p]
    if unmet:
        return unmet
    names = {canonicalize_name(r.name) for r in ours}
    for requirement in ours:
        for text in installedRequires(requirement.name):
            dependency = Requirement(text)
            if canonicalize_name(dependency.name) not in names:
                continue
            if dependency.marker is not None and not dependency.marker.evaluate({"extra": ""}):
                continue
            problem = versionProblem(dependency, f"{requirement.name} {installedVersion(requirement.name)}")
            if problem:
                unmet.append((dependency, problem))
    return unmet


@dataclass(frozen=True)
class PlannedInstall:
    """One package that setup would install: why, and about how much it downloads."""

    name: str
    reason: str
    size: str


def installPlan(installTorch: bool = True) -> List[PlannedInstall]:
    """What ``setupDependencies`` would install now, from the installed packages' metadata only.

    Empty when everything is there, and when setup would stop before installing anything
    (a torch it refuses, or no torch and no PyTorch extension to install it: its error says what to do).
    """
    torchVersion = installedVersion("torch")
    plan = []
    if torchVersion is None:
        if not installTorch or importlib.util.find_spec("PyTorchUtils") is None:
            return []
        plan.append(PlannedInstall("PyTorch (torch)", "not installed", TORCH_DOWNLOAD))
    elif torchProblem(torchVersion):
        return []
    for requirement, problem in unmetRequirements(REQUIREMENTS + NO_DEPS_REQUIREMENTS):
        name = canonicalize_name(requirement.name)
        if name in NEVER_REPLACE and installedVersion(requirement.name) is not None:
            continue  # refused with an error, never installed
        size = DOWNLOAD_MB.get(name)
        plan.append(PlannedInstall(requirement.name, problem, f"about {size} MB" if size else "size unknown"))
    return plan


def installQuestion(plan: List[PlannedInstall]) -> str:
    """The question the GUI asks before installing ``plan`` (names, reasons, sizes)."""
    lines = "\n".join(f"  \u2022 {item.name}: {item.reason} ({item.size})" for item in plan)
    return (
        "Before its first run VoxTell needs these Python packages in Slicer's Python:\n"
        f"{lines}\n\nDownload and install them now? This takes a few minutes and may ask for a restart of "
        "Slicer. No leaves Slicer's Python unchanged (VoxTell then does not run)."
    )


def pythonExecutable() -> str:
    """The Python that runs pip and downloads: PythonSlicer inside Slicer, where
    ``sys.executable`` is the Slicer application itself."""
    return shutil.which("PythonSlicer") or sys.executable


def runPython(arguments: List[str], log: Log, cancel: CancelCheck = None) -> None:
    """``python ARGUMENTS`` as a child process; each output line goes to ``log``; Cancel kills it.

    Raises ``subprocess.CalledProcessError`` (with the last lines of output) when it fails.
    """
    with ChildProcess([pythonExecutable(), *arguments], env=dict(os.environ, PYTHONIOENCODING="utf-8"),
                      on_line=log, name="VoxTell setup output") as process:
        while process.running:
            if is_cancelled(cancel):
                raise Cancelled(
                    "Setup cancelled. If a package was being replaced, press Run again: setup checks every "
                    "version and reinstalls what is missing."
                )
            time.sleep(0.1)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, arguments, output="\n".join(process.lines[-15:]))


def installTorchWithExtension(log: Log, cancel: CancelCheck = None, run=runPython) -> bool:
    """Install torch as the PyTorch extension does (light-the-torch picks the build for the
    NVIDIA driver), but as a child process; False when that extension is not installed."""
    try:
        import PyTorchUtils
    except ImportError:
        return False
    try:  # private helper of the extension: the same arguments its own Install button uses
        arguments = PyTorchUtils.PyTorchUtilsLogic._getPipInstallArguments(None, TORCH_REQUIREMENT, None)
    except Exception:
        arguments = ["install", "torch" + TORCH_REQUIREMENT]
    log("Installing PyTorch with the PyTorch extension's installer (several GB; this can take several minutes)...")
    if importlib.util.find_spec("light_the_torch") is None:
        run(["-m", "pip", "install", *PIP_OPTIONS, LIGHT_THE_TORCH], log, cancel)
    run(["-m", "light_the_torch", *arguments], log, cancel)
    return True


def setupDependencies(
    log: Log = print,
    cancel: CancelCheck = None,
    installTorch: bool = True,
    run: Callable[[List[str], Log, CancelCheck], object] = runPython,
) -> List[str]:
    """Check and install everything VoxTell needs (call it from a worker thread, after the user
    agreed); returns the requirements it installed. Raises ``DependencyError`` or ``Cancelled``.

    ``installTorch=False`` (batch mode) reports a missing torch instead of installing it.
    ``run`` runs ``python ARGS`` (tests replace it).
    """
    version = installedVersion("torch")
    if version is None and installTorch:
        try:
            installed = installTorchWithExtension(log, cancel, run)
        except subprocess.CalledProcessError as error:
            raise DependencyError("PyTorch", f"the PyTorch installer failed:\n{error.output}\n\n{TORCH_ADVICE}") from error
        if installed:
            importlib.invalidate_caches()
            version = installedVersion("torch")
    problem = torchProblem(version)
    if problem:
        raise DependencyError("PyTorch", problem)

    unmet = unmetRequirements(REQUIREMENTS + NO_DEPS_REQUIREMENTS)
    for requirement, problem in unmet:
        if canonicalize_name(requirement.name) in NEVER_REPLACE and installedVersion(requirement.name) is not None:
            raise DependencyError(
                requirement.name, f"{problem}. It comes with Slicer and is not replaced: install a newer Slicer (5.6 or later)."
            )
        log(f"{problem}: installing {requirement.name}{requirement.specifier}")
    noDeps = {canonicalize_name(Requirement(text).name) for text in NO_DEPS_REQUIREMENTS}
    upgraded = [r.name for r, _ in unmet if installedVersion(r.name) is not None]
    withDeps = [f"{r.name}{r.specifier}" for r, _ in unmet if canonicalize_name(r.name) not in noDeps]
    withoutDeps = [f"{r.name}{r.specifier}" for r, _ in unmet if canonicalize_name(r.name) in noDeps]
    if withDeps:
        _pipInstall(withDeps, [], log, cancel, run)
    if withoutDeps:
        _pipInstall(withoutDeps, ["--no-deps"], log, cancel, run)
    importlib.invalidate_caches()

    still = unmetRequirements(REQUIREMENTS + NO_DEPS_REQUIREMENTS)
    if still:
        raise DependencyError(
            "check versions",
            "; ".join(problem for _, problem in still) + ". pip did not install what VoxTell needs: run "
            f'slicer.util.pip_install("{still[0][0].name}{still[0][0].specifier}") in the Python console to see why.',
        )
    inUse = [name for name in upgraded if name.replace("-", "_") in sys.modules]
    if inUse:
        raise DependencyError(
            "restart Slicer",
            f"upgraded while Slicer had the old version loaded: {', '.join(inUse)}. Restart Slicer, then run VoxTell again.",
        )
    try:
        importlib.import_module("VoxTellCore.inference.predictor")
    except Exception as exc:
        raise DependencyError(
            "import VoxTellCore",
            f"{type(exc).__name__}: {exc}. Restart Slicer (newly installed packages are sometimes only visible "
            "after a restart); if it persists, reinstall the VoxTell extension.",
        ) from exc
    return withDeps + withoutDeps


def _pipInstall(requirements: List[str], options: List[str], log: Log, cancel: CancelCheck, run) -> None:
    step = "pip install " + " ".join(requirements)
    try:
        run(["-m", "pip", "install", *PIP_OPTIONS, *options, *requirements], log, cancel)
    except (subprocess.CalledProcessError, OSError) as error:
        details = getattr(error, "output", None) or str(error)
        quoted = " ".join(requirements)
        raise DependencyError(
            step,
            f"{details}\nCheck the internet connection (or proxy settings) and that Slicer's folder is writable, "
            f'then retry; or run slicer.util.pip_install("{quoted}") in the Python console to see the details.',
        ) from error
