"""Loading and saving VoxTell model folders.

A model folder is the release's layout: ``plans.json`` and ``fold_0/checkpoint_final.pth``
(a dict whose ``network_weights`` is the state dict), or ``fold_0/model.safetensors``.
Checkpoints are read with ``torch.load(weights_only=True)``: a pickle that needs arbitrary
code to load is refused instead of being executed.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable, Hashable, Union

import torch

from VoxTellCore.atomic import atomic_write
from VoxTellCore.errors import ModelError
from VoxTellCore.model import VoxTellConfig, VoxTellModel

PLANS_FILE = "plans.json"
CHECKPOINT_FILE = Path("fold_0") / "checkpoint_final.pth"
SAFETENSORS_FILE = Path("fold_0") / "model.safetensors"
MODEL_INFO_FILE = "voxtell_model.json"  # optional: description, text encoder, bank
MODEL_INFO_PATHS = ("text_encoder", "embedding_bank")  # relative to the model folder when inside it


def read_plans(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / PLANS_FILE
    if not path.is_file():
        raise ModelError(
            f"The model folder {model_dir} has no {PLANS_FILE}. Point -m/--model at the folder that "
            f"contains {PLANS_FILE} and fold_0/ (for the official model: the voxtell_v1.1 folder)."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}). Re-download or re-export the model.") from exc


def read_model_info(model_dir: Path) -> dict[str, Any]:
    """Optional metadata of our own model folders (the official ones have none)."""
    path = Path(model_dir) / MODEL_INFO_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_state_dict(model_dir: Path) -> dict[str, torch.Tensor]:
    model_dir = Path(model_dir)
    safetensors_path = model_dir / SAFETENSORS_FILE
    checkpoint_path = model_dir / CHECKPOINT_FILE
    if safetensors_path.is_file():
        return _read_safetensors(safetensors_path)
    if not checkpoint_path.is_file():
        raise ModelError(
            f"The model folder {model_dir} has no {CHECKPOINT_FILE} (nor {SAFETENSORS_FILE}). "
            "The download may be incomplete: download the model folder again."
        )
    try:
        # mmap: the weights are read from the page cache as used, not copied into memory first.
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True,
                                mmap=zipfile.is_zipfile(checkpoint_path))
    except pickle.UnpicklingError as exc:
        if not zipfile.is_zipfile(checkpoint_path):
            # torch.save writes zip archives: anything else is a damaged file, not a dangerous one.
            raise _unreadable(checkpoint_path, "not the zip archive torch.save writes") from exc
        raise ModelError(
            f"{checkpoint_path} refuses to load safely: it contains objects other than tensors and plain "
            f"data ({str(exc).splitlines()[0]}). Such a file can run arbitrary code, so VoxTell does not "
            "load it. Use a checkpoint from a trusted source, or export its weights to safetensors."
        ) from exc
    except Exception as exc:  # damaged bytes make the unpickler fail in any way (KeyError, EOFError, ...)
        raise _unreadable(checkpoint_path, exc) from exc
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ModelError(f"{checkpoint_path} has no 'network_weights' entry: it is not a VoxTell checkpoint.")
    return checkpoint["network_weights"]


def _unreadable(path: Path, reason: Union[Exception, str]) -> ModelError:
    if isinstance(reason, Exception):
        detail = str(reason).strip().splitlines()[0] if str(reason).strip() else "truncated"
        reason = f"{type(reason).__name__}: {detail}"
    return ModelError(f"{path} is not a readable PyTorch checkpoint ({reason}). "
                      "The file is corrupt or truncated: download or copy it again.")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a readable safetensors file ({exc}). Export or download it again.") from exc


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> VoxTellModel:
    """Build the network from ``plans.json`` and load its weights strictly, key for key."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"The model folder {model_dir} does not exist. Check the -m/--model path.")
    try:
        config = VoxTellConfig.from_plans(read_plans(model_dir))
    except ValueError as exc:
        raise ModelError(f"{model_dir / PLANS_FILE}: {exc}") from exc
    with torch.device("meta"):  # no random initialisation of 440 M weights that are replaced at once
        model = VoxTellModel(config)
    state = read_state_dict(model_dir)
    own = model.state_dict(keep_vars=True)
    expected = set(own)
    # safetensors stores each tensor once: restore the keys that alias it in the module tree
    # (grouped by object: the meta tensors have no data to compare).
    for group in _grouped(own, id):
        present = [k for k in group if k in state]
        for key in group:
            if key not in state and present:
                state[key] = state[present[0]]
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelError(
            f"The weights in {model_dir} do not match the architecture in its plans.json: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected keys "
            f"(e.g. {unexpected[:3]}). The plans.json and fold_0 checkpoint come from different models."
        )
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelError(
            f"The weights in {model_dir} have the wrong shapes for its plans.json: {str(exc).splitlines()[-1].strip()}"
        ) from exc
    return model.float().eval().to(device)  # assign keeps the file's dtype; the release copies into fp32


def alias_groups(state: dict[str, torch.Tensor]) -> list[list[str]]:
    """Keys that name the same tensor, each group in canonical order (the plain name first).

    The release's module tree reaches every encoder tensor twice (``encoder.*`` and
    ``decoder.encoder.*``) and every conv block's tensors twice (``conv``/``norm`` and
    ``all_modules.0``/``all_modules.1``).
    """
    return _grouped(state, lambda tensor: (tensor.data_ptr(), tensor.shape, tensor.stride()))


def _grouped(state: dict[str, torch.Tensor], identity: Callable[[torch.Tensor], Hashable]) -> list[list[str]]:
    groups: dict[Hashable, list[str]] = {}
    for key, tensor in state.items():
        groups.setdefault(identity(tensor), []).append(key)
    canonical = lambda k: (k.startswith("decoder.encoder."), "all_modules" in k, k)  # noqa: E731
    return [sorted(keys, key=canonical) for keys in groups.values() if len(keys) > 1]


def cpu_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict on the CPU in the default memory format (a channels-last training run
    stores the same checkpoint); aliased tensors stay one tensor, so the file holds them once."""
    weights, done = {}, {}
    for key, value in model.state_dict().items():
        identity = (value.data_ptr(), tuple(value.shape), value.stride())
        if identity not in done:
            done[identity] = value.detach().cpu().contiguous()
        weights[key] = done[identity]
    return weights


def save_model_folder(
    model: VoxTellModel, out_dir: str | os.PathLike, info: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``plans.json`` and ``fold_0/checkpoint_final.pth`` in the release's layout.

    ``extra`` entries (e.g. optimizer state, epoch) go into the checkpoint beside
    ``network_weights``; they must be plain data and tensors so it loads safely.
    """
    out_dir = Path(out_dir)
    plans = model.config.to_plans()
    atomic_write(out_dir / PLANS_FILE, lambda p: Path(p).write_text(json.dumps(plans, indent=2)))
    checkpoint = {"network_weights": cpu_weights(model), **(extra or {})}
    atomic_write(out_dir / CHECKPOINT_FILE, lambda p: torch.save(checkpoint, p))
    if info is not None:
        info = {**info, **{key: portable_path(info[key], out_dir) for key in MODEL_INFO_PATHS if info.get(key)}}
        atomic_write(out_dir / MODEL_INFO_FILE, lambda p: Path(p).write_text(json.dumps(info, indent=2)))
    return out_dir


def portable_path(value: str, model_dir: Path) -> str:
    """How ``voxtell_model.json`` records a path: relative when it lies in the model folder (so
    a moved or copied folder still loads), absolute when it lies elsewhere (so it does not
    depend on the current folder), unchanged when it names no local file (a Hugging Face id)."""
    if not Path(value).is_absolute() and (model_dir / value).exists():
        return str(value)
    path = Path(value).expanduser()
    if not path.exists():
        return str(value)
    path, folder = path.resolve(), model_dir.resolve()
    return path.relative_to(folder).as_posix() if folder in path.parents else str(path)


def export_safetensors(model_dir: str | os.PathLike, out_path: str | os.PathLike | None = None) -> Path:
    """Write the folder's weights as safetensors, each aliased tensor once (see ``alias_groups``)."""
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    state = read_state_dict(model_dir)
    duplicates = {key for group in alias_groups(state) for key in group[1:]}
    unique = {k: v.contiguous() for k, v in state.items() if k not in duplicates}
    out = Path(out_path) if out_path else model_dir / SAFETENSORS_FILE
    atomic_write(out, lambda p: save_file(unique, p))
    return out
