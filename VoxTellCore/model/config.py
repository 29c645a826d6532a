"""Network sizes as data: read from and written to an nnU-Net style ``plans.json``.

The released ``plans.json`` only carries the image-encoder sizes (``arch_kwargs``); the
release hard-codes the text side (query dim 2048, Qwen3 width 2560, 32 fusion channels).
Those release values are our defaults, and models of other sizes (the demo model, test
models) store them under ``architecture.voxtell_kwargs`` so that one code path builds all.
"""

from __future__ import annotations

import dataclasses
import pydoc
from dataclasses import dataclass, field
from typing import Any

PLANS_CONFIGURATION = "3d_fullres"
ENCODER_CLASS = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
_IMPORTED_KWARGS = ("conv_op", "norm_op", "dropout_op", "nonlin")


@dataclass
class VoxTellConfig:
    """Every size the network needs. Defaults are those of the released VoxTell v1.x."""

    patch_size: tuple[int, ...] = (192, 192, 192)
    # image encoder (ResEnc-L), exactly the release's ``arch_kwargs``
    features_per_stage: tuple[int, ...] = (32, 64, 128, 256, 320, 320)
    n_blocks_per_stage: tuple[int, ...] = (1, 3, 4, 6, 6, 6)
    n_conv_per_stage_decoder: tuple[int, ...] = (1, 1, 1, 1, 1)
    kernel_sizes: tuple[tuple[int, ...], ...] = ((3, 3, 3),) * 6
    strides: tuple[tuple[int, ...], ...] = ((1, 1, 1),) + ((2, 2, 2),) * 5
    conv_bias: bool = True
    conv_op: str = "torch.nn.modules.conv.Conv3d"
    norm_op: str = "torch.nn.modules.instancenorm.InstanceNorm3d"
    nonlin: str = "torch.nn.LeakyReLU"
    norm_op_kwargs: dict = field(default_factory=lambda: {"eps": 1e-5, "affine": True})
    nonlin_kwargs: dict = field(default_factory=lambda: {"inplace": True})
    # text side and fusion
    text_embedding_dim: int = 2560
    text_hidden_dim: int = 2048
    query_dim: int = 2048
    prompt_decoder_layers: int = 6
    prompt_decoder_heads: int = 8
    prompt_decoder_ffn_dim: int = 2048
    memory_stage: int = 4
    fusion_channels: int = 32
    mask_projection_hidden_dim: int = 2048

    @property
    def n_stages(self) -> int:
        return len(self.features_per_stage)

    @property
    def total_stride(self) -> tuple[int, ...]:
        """Downsampling of the deepest stage per axis: the patch must be a multiple of it."""
        out = [1] * len(self.patch_size)
        for stride in self.strides:
            out = [o * s for o, s in zip(out, stride)]
        return tuple(out)

    def memory_grid(self) -> tuple[int, ...]:
        """Shape of the encoder feature map that the prompt decoder attends to."""
        grid = list(self.patch_size)
        for stride in self.strides[: self.memory_stage + 1]:
            grid = [g // s for g, s in zip(grid, stride)]
        return tuple(grid)

    def validate(self) -> None:
        n = self.n_stages
        checks = [
            (len(self.n_blocks_per_stage) == n, "n_blocks_per_stage needs one entry per stage"),
            (len(self.n_conv_per_stage_decoder) == n - 1, "n_conv_per_stage_decoder needs n_stages-1 entries"),
            (len(self.strides) == n and len(self.kernel_sizes) == n, "strides/kernel_sizes need one entry per stage"),
            (0 <= self.memory_stage < n, f"memory_stage must be in [0, {n})"),
            (self.query_dim % self.prompt_decoder_heads == 0, "query_dim must be divisible by prompt_decoder_heads"),
            (
                all(p % s == 0 for p, s in zip(self.patch_size, self.total_stride)),
                f"patch_size {tuple(self.patch_size)} must be divisible by the total stride {self.total_stride}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"Invalid VoxTell configuration: {message}.")

    # ----------------------------------------------------------------- plans I/O
    @classmethod
    def from_plans(cls, plans: dict[str, Any]) -> "VoxTellConfig":
        try:
            configuration = plans["configurations"][PLANS_CONFIGURATION]
            architecture = configuration["architecture"]
            arch = architecture["arch_kwargs"]
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"plans.json has no configurations.{PLANS_CONFIGURATION}.architecture.arch_kwargs ({exc!r})"
            ) from exc
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {"patch_size": tuple(configuration["patch_size"])}
        for key in ("features_per_stage", "n_blocks_per_stage", "n_conv_per_stage_decoder", "conv_bias",
                    "conv_op", "norm_op", "nonlin", "norm_op_kwargs", "nonlin_kwargs"):
            if key in arch and arch[key] is not None:
                values[key] = arch[key]
        for key in ("kernel_sizes", "strides"):
            if key in arch:
                values[key] = tuple(tuple(int(v) for v in entry) for entry in arch[key])
        extra = architecture.get("voxtell_kwargs", {}) or {}
        unknown = set(extra) - known
        if unknown:
            raise ValueError(f"plans.json voxtell_kwargs has unknown keys: {sorted(unknown)}")
        values.update(extra)
        for key in ("features_per_stage", "n_blocks_per_stage", "n_conv_per_stage_decoder", "patch_size"):
            values[key] = tuple(int(v) for v in values[key])
        config = cls(**values)
        config.validate()
        return config

    def to_plans(self, name: str = "VoxTell") -> dict[str, Any]:
        arch_kwargs = {
            "n_stages": self.n_stages,
            "features_per_stage": list(self.features_per_stage),
            "conv_op": self.conv_op,
            "kernel_sizes": [list(k) for k in self.kernel_sizes],
            "strides": [list(s) for s in self.strides],
            "n_blocks_per_stage": list(self.n_blocks_per_stage),
            "n_conv_per_stage_decoder": list(self.n_conv_per_stage_decoder),
            "conv_bias": self.conv_bias,
            "norm_op": self.norm_op,
            "norm_op_kwargs": dict(self.norm_op_kwargs),
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": self.nonlin,
            "nonlin_kwargs": dict(self.nonlin_kwargs),
        }
        text_side = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in arch_kwargs and f.name != "patch_size"
        }
        return {
            "dataset_name": name,
            "plans_name": "nnUNetResEncUNetLPlans",
            "configurations": {
                PLANS_CONFIGURATION: {
                    "patch_size": list(self.patch_size),
                    "architecture": {
                        "network_class_name": ENCODER_CLASS,
                        "arch_kwargs": arch_kwargs,
                        "_kw_requires_import": list(_IMPORTED_KWARGS),
                        "voxtell_kwargs": text_side,
                    },
                }
            },
        }

    def encoder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for dynamic_network_architectures' ``ResidualEncoder``."""
        return dict(
            input_channels=1,
            n_stages=self.n_stages,
            features_per_stage=list(self.features_per_stage),
            conv_op=locate_class(self.conv_op),
            kernel_sizes=[list(k) for k in self.kernel_sizes],
            strides=[list(s) for s in self.strides],
            n_blocks_per_stage=list(self.n_blocks_per_stage),
            conv_bias=self.conv_bias,
            norm_op=locate_class(self.norm_op),
            norm_op_kwargs=dict(self.norm_op_kwargs),
            dropout_op=None,
            dropout_op_kwargs=None,
            nonlin=locate_class(self.nonlin),
            nonlin_kwargs=dict(self.nonlin_kwargs),
            return_skips=True,
            disable_default_stem=False,
            stem_channels=None,
        )


def locate_class(name: str | None) -> type | None:
    """Resolve a dotted class name from plans.json (the release uses ``pydoc.locate``)."""
    if name is None:
        return None
    cls = pydoc.locate(name)
    if cls is None:
        raise ValueError(f"plans.json names an unknown class {name!r}")
    return cls  # type: ignore[return-value]

