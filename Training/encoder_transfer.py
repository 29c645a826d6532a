"""Start a plain nnU-Net ResEnc U-Net from VoxTell's image encoder.

VoxTell's encoder is dynamic_network_architectures' ``ResidualEncoder`` with the sizes in
its plans.json, so a ``ResidualEncoderUNet`` of the same sizes takes its ``encoder.*``
weights key for key. The decoder stays freshly initialised. The output file has nnU-Net's
``network_weights`` entry, so ``nnUNetv2_train ... -pretrained_weights FILE`` can use it.

With the nnU-Net plans the U-Net will be trained with (``plans``), the U-Net is built from
them (nnU-Net's loader wants every decoder tensor in the plan's shapes) after checking that
its encoder is VoxTell's: the mismatches (input channels, stages, features, kernel sizes,
blocks, layer types) are named instead of failing inside nnU-Net's loader.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet
from dynamic_network_architectures.initialization.weight_init import InitWeights_He, init_last_bn_before_add_to_0

from VoxTellCore.checkpoint import load_model
from VoxTellCore.errors import InputError
from VoxTellCore.model import VoxTellModel
from VoxTellCore.model.config import VoxTellConfig, locate_class

# arch_kwargs that shape the encoder's weights, and must therefore equal VoxTell's
WEIGHT_SHAPING = ("n_stages", "features_per_stage", "kernel_sizes", "n_blocks_per_stage", "conv_op", "conv_bias",
                  "norm_op")
IMPORTED = ("conv_op", "norm_op", "dropout_op", "nonlin")


@dataclass
class TransferReport:
    copied_tensors: int
    copied_parameters: int
    encoder_keys: list[str]
    notes: list[str] = field(default_factory=list)  # differences that do not block the transfer

    def summary(self) -> str:
        text = (f"copied {self.copied_tensors} encoder tensors ({self.copied_parameters:,} values); "
                "decoder and segmentation heads are freshly initialised")
        return text + "".join(f"\nnote: {n}" for n in self.notes)


def plan_architecture(plans: dict[str, Any], configuration: str) -> tuple[str, dict[str, Any]]:
    """(network class name, arch_kwargs) of a configuration of nnU-Net plans, following ``inherits_from``."""
    configurations = plans.get("configurations", {})
    seen, entry = [], {}
    name = configuration
    while name:
        if name not in configurations or name in seen:
            raise InputError(f"The nnU-Net plans have no configuration {name!r} (they have {sorted(configurations)}).")
        seen.append(name)
        entry = {**configurations[name], **entry}
        name = configurations[name].get("inherits_from")
    architecture = entry.get("architecture")
    if not architecture or "arch_kwargs" not in architecture:
        raise InputError(f"Configuration {configuration!r} of the nnU-Net plans has no architecture.arch_kwargs "
                         "(plans of nnU-Net 2.4 or later are needed).")
    return architecture.get("network_class_name", ""), dict(architecture["arch_kwargs"])


def encoder_mismatches(voxtell: VoxTellConfig, network_class: str, arch: dict[str, Any],
                       input_channels: int) -> tuple[list[str], list[str]]:
    """(mismatches that change the encoder's weights, other differences) between VoxTell and a plan."""
    ours = voxtell.encoder_kwargs()
    errors, notes = [], []
    if not network_class.endswith("ResidualEncoderUNet"):
        errors.append(f"network: the plan builds {network_class or 'an unnamed network'}, VoxTell's encoder is a "
                      "ResidualEncoder (use residual encoder plans, e.g. nnUNetResEncUNetLPlans)")
    if input_channels != ours["input_channels"]:
        errors.append(f"input channels: the dataset has {input_channels}, VoxTell's encoder takes "
                      f"{ours['input_channels']}")
    for key in WEIGHT_SHAPING:
        theirs, mine = _normalise(key, arch.get(key)), _normalise(key, ours[key])
        if theirs != mine:
            where = ""
            if isinstance(mine, tuple) and isinstance(theirs, tuple) and len(mine) == len(theirs):
                stages = [i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
                where = f" (stage{'s' if len(stages) > 1 else ''} {', '.join(map(str, stages))})"
            errors.append(f"{key}: plan {_show(theirs)}, VoxTell {_show(mine)}{where}")
    if _normalise("strides", arch.get("strides")) != _normalise("strides", ours["strides"]):
        notes.append(f"strides differ (plan {_show(_normalise('strides', arch.get('strides')))}, VoxTell "
                     f"{_show(_normalise('strides', ours['strides']))}): the weights fit, but the encoder was "
                     "trained at other resolutions per stage")
    return errors, notes


def build_resenc_unet(voxtell: VoxTellModel, num_classes: int, deep_supervision: bool = True,
                      arch: dict[str, Any] | None = None, input_channels: int = 1) -> ResidualEncoderUNet:
    """A ResEnc U-Net of VoxTell's encoder sizes, or of a plan's ``arch`` (checked beforehand)."""
    if arch is None:
        kwargs = voxtell.config.encoder_kwargs()
        for key in ("return_skips", "disable_default_stem", "stem_channels"):
            kwargs.pop(key)
        kwargs["n_conv_per_stage_decoder"] = list(voxtell.config.n_conv_per_stage_decoder)
    else:
        kwargs = {k: locate_class(v) if k in IMPORTED and isinstance(v, str) else v for k, v in arch.items()}
        kwargs["input_channels"] = input_channels
    network = ResidualEncoderUNet(**kwargs, num_classes=num_classes, deep_supervision=deep_supervision)
    network.apply(InitWeights_He(1e-2))
    network.apply(init_last_bn_before_add_to_0)
    return network


def transfer_encoder(voxtell: VoxTellModel, unet: ResidualEncoderUNet) -> TransferReport:
    """Copy ``voxtell.encoder`` into ``unet.encoder``; strict: every key and shape must match."""
    state = voxtell.encoder.state_dict()
    unet.encoder.load_state_dict(state, strict=True)
    return TransferReport(len(state), sum(v.numel() for v in state.values()), sorted(state))


def export_encoder_transfer(voxtell_dir: str | os.PathLike, out_path: str | os.PathLike, num_classes: int = 2,
                            plans: str | os.PathLike | None = None, configuration: str = "3d_fullres",
                            input_channels: int = 1) -> TransferReport:
    voxtell = load_model(voxtell_dir)
    arch, notes = None, []
    if plans is not None:
        try:
            plan = json.loads(Path(plans).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read the nnU-Net plans {plans}: {exc}") from exc
        network_class, arch = plan_architecture(plan, configuration)
        errors, notes = encoder_mismatches(voxtell.config, network_class, arch, input_channels)
        if errors:
            raise InputError(
                f"The nnU-Net plans {plans} ({configuration}) do not fit VoxTell's encoder: " + "; ".join(errors)
                + ". Plan the nnU-Net dataset with VoxTell's encoder sizes (its plans.json), or train without "
                  "the transferred weights."
            )
    unet = build_resenc_unet(voxtell, num_classes, arch=arch, input_channels=input_channels)
    report = transfer_encoder(voxtell, unet)
    report.notes = notes
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network_weights": unet.state_dict(),
                "transfer": {"source": str(voxtell_dir), "encoder_keys": report.encoder_keys,
                             "architecture": voxtell.config.to_plans()["configurations"]}}, out_path)
    return report


def _normalise(key: str, value: Any) -> Any:
    """Plans hold lists and dotted class names; compare tuples and resolved classes."""
    if key in IMPORTED and isinstance(value, str):
        return locate_class(value)
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(key, v) for v in value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)
