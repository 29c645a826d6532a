"""Start a plain nnU-Net ResEnc-L from VoxTell's image encoder.

VoxTell's encoder is dynamic_network_architectures' ``ResidualEncoder`` with the sizes in
its plans.json, so a ``ResidualEncoderUNet`` of the same sizes takes its ``encoder.*``
weights key for key. The decoder stays freshly initialised. The output file has nnU-Net's
``network_weights`` entry, so ``nnUNetv2_train ... -pretrained_weights FILE`` can use it
(with a plans file of the same encoder sizes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet
from dynamic_network_architectures.initialization.weight_init import InitWeights_He, init_last_bn_before_add_to_0

from VoxTellCore.checkpoint import load_model
from VoxTellCore.model import VoxTellModel


@dataclass
class TransferReport:
    copied_tensors: int
    copied_parameters: int
    encoder_keys: list[str]

    def summary(self) -> str:
        return (f"copied {self.copied_tensors} encoder tensors ({self.copied_parameters:,} values); "
                "decoder and segmentation heads are freshly initialised")


def build_resenc_unet(voxtell: VoxTellModel, num_classes: int, deep_supervision: bool = True) -> ResidualEncoderUNet:
    kwargs = voxtell.config.encoder_kwargs()
    for key in ("return_skips", "disable_default_stem", "stem_channels"):
        kwargs.pop(key)
    network = ResidualEncoderUNet(**kwargs, num_classes=num_classes,
                                  n_conv_per_stage_decoder=list(voxtell.config.n_conv_per_stage_decoder),
                                  deep_supervision=deep_supervision)
    network.apply(InitWeights_He(1e-2))
    network.apply(init_last_bn_before_add_to_0)
    return network


def transfer_encoder(voxtell: VoxTellModel, unet: ResidualEncoderUNet) -> TransferReport:
    """Copy ``voxtell.encoder`` into ``unet.encoder``; strict: every key and shape must match."""
    state = voxtell.encoder.state_dict()
    unet.encoder.load_state_dict(state, strict=True)
    return TransferReport(len(state), sum(v.numel() for v in state.values()), sorted(state))


def export_encoder_transfer(voxtell_dir: str | os.PathLike, out_path: str | os.PathLike,
                            num_classes: int = 2) -> TransferReport:
    voxtell = load_model(voxtell_dir)
    unet = build_resenc_unet(voxtell, num_classes)
    report = transfer_encoder(voxtell, unet)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"network_weights": unet.state_dict(),
                "transfer": {"source": str(voxtell_dir), "encoder_keys": report.encoder_keys,
                             "architecture": voxtell.config.to_plans()["configurations"]}}, out_path)
    return report
