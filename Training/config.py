"""Training configuration: a JSON file, overridable with ``--set key=value``.

Every training choice lives here so that a run is fully described by its
``config.json`` (copied into the output folder). Network sizes are the
``VoxTellConfig`` fields under ``"model"``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Training.optim import OPTIMIZERS
from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellConfig


@dataclass
class TrainingConfig:
    datasets: list[dict[str, Any]] = field(default_factory=list)  # see docs/training.md
    vocabulary: list[str] = field(default_factory=list)  # vocabulary JSON files, merged in order
    preprocessed_dir: str = "voxtell_preprocessed"
    embedding_bank: str = ""  # .npz with every prompt's embedding (``voxtell-train prompts`` lists them)
    text_encoder: str = ""  # recorded in voxtell_model.json for inference
    model: dict[str, Any] = field(default_factory=dict)  # VoxTellConfig fields; patch_size is set from below
    patch_size: list[int] = field(default_factory=lambda: [192, 192, 192])
    batch_size_per_process: int = 2  # one process per GPU: the global batch is this x world size
    num_epochs: int = 2000
    iterations_per_epoch: int = 250
    val_fraction: float = 0.05  # of the cases of each dataset, held out (deterministic split)
    val_iterations: int = 50  # batches per epoch end for the validation loss / pseudo Dice
    initial_lr: float = 1e-4
    optimizer: str = "sgd"  # the paper's SGD; "adamw" converges faster in short trainings from scratch
    momentum: float = 0.99
    weight_decay: float = 3e-5
    poly_exponent: float = 0.9
    grad_clip: float = 12.0
    positives_per_image: int = 2
    negatives_per_image: int = 1
    negatives_start_epoch: int = 0  # before it, the negative slots hold present structures (a warm-up)
    default_name_probability: float = 0.25
    balance_prompts: bool = False  # draw present structures inversely to how many cases hold them
    hard_negative_probability: float = 0.0  # a negative slot holds an absent location of a present finding
    foreground_probability: float = 0.85
    augmentation: bool = True
    mirror_axes: list[int] = field(default_factory=lambda: [0, 1])  # of (S, A, R): never 2, the left-right axis
    deep_supervision_weights: list[float] = field(default_factory=lambda: [1, 1 / 2, 1 / 4, 1 / 8, 1 / 16])
    dice_weight: float = 1.0
    bce_weight: float = 1.0
    empty_target_smooth: float = 0.0  # > 0: a negative's Dice term is V / (V + this), V its predicted voxels
    num_workers: int = 4  # background batch producers per process (0: in the training process)
    seed: int = 12345
    mixed_precision: bool = True  # on CUDA only
    channels_last: bool = False  # channels-last 3D memory format: ~2x faster convolutions on CPU
    compile: bool = False  # torch.compile the network (as nnU-Net does on GPUs)
    checkpoint_every_epochs: int = 50  # checkpoint_latest.pth (for --resume), written in the background
    checkpoint_every_minutes: float = 30.0  # and after this much wall-clock time (0: epochs only)
    stop_after_iterations: int = 0  # > 0: save and exit there (tests, preemptible queues)
    record_checksums: bool = False  # log a per-rank weight checksum every iteration (tests)
    output_dir: str = "voxtell_training"

    # ----------------------------------------------------------------- building
    @classmethod
    def from_file(cls, path: str | Path, overrides: list[str] | None = None) -> "TrainingConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"Training config {path} does not exist. Pass the path of a JSON config (see configs/).")
        except json.JSONDecodeError as exc:
            raise InputError(f"Training config {path} is not valid JSON ({exc}). Fix the file.") from exc
        if not isinstance(raw, dict):
            raise InputError(f"Training config {path} must hold a JSON object of settings (see configs/).")
        # The file's relative paths start at the file's folder (the config works from any launch
        # folder); --set values, typed at the command line, start at the launch folder.
        raw = {**raw, **resolved_paths(raw, path.resolve().parent)}
        for item in overrides or []:
            apply_override(raw, item)
        config = cls.from_dict(raw)
        config.resolve_paths(Path.cwd())
        return config

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known - {"comment"})
        if unknown:
            raise InputError(f"Unknown training config key(s) {unknown}. Known keys: {sorted(known)}.")
        config = cls(**{k: copy.deepcopy(v) for k, v in raw.items() if k in known})
        network = config.network_config()  # validates model sizes and patch size early
        checks = [
            (config.positives_per_image >= 1 and config.negatives_per_image >= 0,
             "positives_per_image must be >= 1 and negatives_per_image >= 0"),
            (min(config.num_epochs, config.iterations_per_epoch, config.batch_size_per_process) >= 1,
             "num_epochs, iterations_per_epoch and batch_size_per_process must be >= 1"),
            (config.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (0.0 <= config.hard_negative_probability <= 1.0, "hard_negative_probability must be between 0 and 1"),
            (config.checkpoint_every_epochs >= 1, "checkpoint_every_epochs must be >= 1"),
            (config.checkpoint_every_minutes >= 0, "checkpoint_every_minutes must be >= 0 (0: by epochs only)"),
            (set(config.mirror_axes) <= {0, 1},
             "mirror_axes may hold 0 (superior-inferior) and 1 (anterior-posterior); axis 2 is left-right, and "
             "mirroring it would make 'left kidney' and 'right kidney' the same target"),
            (config.empty_target_smooth >= 0,
             "empty_target_smooth must be >= 0 (0: nnU-Net's smooth for every target)"),
            (len(config.deep_supervision_weights) == network.n_stages - 1,
             f"deep_supervision_weights needs one weight per decoder scale ({network.n_stages - 1} for "
             f"{network.n_stages} stages)"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(f"Training config: {message}.")
        return config

    def resolve_paths(self, base: Path) -> None:
        """Relative paths made absolute from ``base``, so that every process (and the saved
        config) sees the same files."""
        for key, value in resolved_paths(dataclasses.asdict(self), base).items():
            setattr(self, key, value)

    def network_config(self) -> VoxTellConfig:
        known = {f.name for f in dataclasses.fields(VoxTellConfig)}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise InputError(f"Unknown model size key(s) {unknown} in 'model'. Known: {sorted(known)}.")
        values = dict(self.model, patch_size=tuple(self.patch_size))
        for key in ("features_per_stage", "n_blocks_per_stage", "n_conv_per_stage_decoder"):
            if key in values:
                values[key] = tuple(values[key])
        for key in ("kernel_sizes", "strides"):
            if key in values:
                values[key] = tuple(tuple(v) for v in values[key])
        network = VoxTellConfig(**values)
        try:
            network.validate()
        except ValueError as exc:
            raise InputError(f"{exc} Adjust 'model' or 'patch_size' in the training config.") from exc
        return network

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def total_iterations(self) -> int:
        return self.num_epochs * self.iterations_per_epoch


PATH_KEYS = ("embedding_bank", "preprocessed_dir", "output_dir")
DATASET_PATH_KEYS = ("path", "parts_dir")


def resolved_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """The path entries of a config (dict) with relative paths made absolute from ``base``."""

    def resolve(value: str) -> str:
        return str((base / value).resolve()) if value and not Path(value).is_absolute() else value

    paths: dict[str, Any] = {key: resolve(raw[key]) for key in PATH_KEYS if isinstance(raw.get(key), str)}
    if isinstance(raw.get("vocabulary"), list):
        paths["vocabulary"] = [resolve(v) for v in raw["vocabulary"]]
    if isinstance(raw.get("datasets"), list):
        paths["datasets"] = [{**d, **{k: resolve(d[k]) for k in DATASET_PATH_KEYS if isinstance(d.get(k), str)}}
                             if isinstance(d, dict) else d for d in raw["datasets"]]
    return paths


def apply_override(raw: dict[str, Any], item: str) -> None:
    """``a.b=value``: value parsed as JSON when it is JSON, else kept as a string."""
    if "=" not in item:
        raise InputError(f"--set expects key=value, got {item!r} (e.g. --set num_epochs=10).")
    key, text = item.split("=", 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    node = raw
    *parents, leaf = key.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
