"""U-Net decoder with vision-text fusion at every scale.

At each decoder stage the features ``x`` (C channels) are projected onto the prompt's
mask embedding for that scale, viewed as ``fusion_channels`` vectors of length C; the
``fusion_channels`` resulting maps are appended to ``x`` before the next upsampling. The
last stage's 32 output channels are projected onto a single vector: that is the logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from dynamic_network_architectures.building_blocks.residual_encoders import ResidualEncoder
from dynamic_network_architectures.building_blocks.simple_conv_blocks import StackedConvBlocks
from torch import nn


class VoxTellDecoder(nn.Module):
    def __init__(self, encoder: ResidualEncoder, n_conv_per_stage: tuple[int, ...], fusion_channels: int) -> None:
        super().__init__()
        # The release keeps the encoder as a submodule here too, so checkpoints carry every
        # encoder tensor twice under ``decoder.encoder.*``; we mirror it to load them strictly.
        self.encoder = encoder
        self.fusion_channels = fusion_channels
        channels = encoder.output_channels
        n_stages = len(channels)
        transpconv_op = nn.ConvTranspose3d
        stages, transpconvs, seg_layers = [], [], []
        for s in range(1, n_stages):
            below = channels[-s] + (fusion_channels if s > 1 else 0)
            skip = channels[-(s + 1)]
            stride = encoder.strides[-s]
            transpconvs.append(transpconv_op(below, skip, stride, stride, bias=encoder.conv_bias))
            stages.append(
                StackedConvBlocks(
                    n_conv_per_stage[s - 1], encoder.conv_op, 2 * skip, skip, encoder.kernel_sizes[-(s + 1)], 1,
                    encoder.conv_bias, encoder.norm_op, encoder.norm_op_kwargs, encoder.dropout_op,
                    encoder.dropout_op_kwargs, encoder.nonlin, encoder.nonlin_kwargs, False,
                )
            )
            # deep-supervision heads; the last one is unused (the final logit is a projection)
            seg_layers.append(encoder.conv_op(skip + fusion_channels, 1, 1, 1, 0, bias=True))
        self.stages = nn.ModuleList(stages)
        self.transpconvs = nn.ModuleList(transpconvs)
        self.seg_layers = nn.ModuleList(seg_layers)

    def skip_terms(self, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        """The prompt-independent half of each stage's first convolution.

        A stage convolves ``cat(upsampled, skip)``; by linearity that is
        ``conv_up(upsampled) + conv_skip(skip)``, and ``conv_skip(skip)`` (with the bias) is
        the same for every prompt. Computed once per window (and kept with the window's
        features), it roughly halves the decoder's cost of every prompt.
        """
        terms = []
        for s, stage in enumerate(self.stages):
            conv = stage.convs[0].conv
            half = conv.in_channels // 2
            terms.append(F.conv3d(skips[-(s + 2)], conv.weight[:, half:], conv.bias, conv.stride, conv.padding))
        return terms

    def forward(
        self,
        skips: list[torch.Tensor],
        mask_embeddings: list[torch.Tensor],
        deep_supervision: bool = False,
        skip_terms: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Decode one prompt.

        ``mask_embeddings[k]`` is the prompt's (B, 1, width_k) embedding for resolution k
        (0 = full resolution). Returns logits (B, 1, ...) from full resolution down; only
        the full-resolution one unless ``deep_supervision``. ``skip_terms`` (from
        :meth:`skip_terms`) lets prompts share the skip half of each convolution; with them,
        only ``skips[-1]`` (the bottleneck) is read.
        """
        x = skips[-1]
        outputs = []
        last = len(self.stages) - 1
        for s, (transpconv, stage) in enumerate(zip(self.transpconvs, self.stages)):
            if skip_terms is None:
                x = stage(torch.cat((transpconv(x), skips[-(s + 2)]), dim=1))
            else:
                x = self._stage_with_skip_term(stage, transpconv(x), skip_terms[s])
            embedding = mask_embeddings[last - s]
            if s == last:
                outputs.append(_project(x, embedding))
                break
            batch = embedding.shape[0]
            fused = _project(x, embedding.view(batch, self.fusion_channels, -1))
            x = torch.cat((x, fused), dim=1)
            if deep_supervision:
                outputs.append(self.seg_layers[s](x))
        return outputs[::-1]

    @staticmethod
    def _stage_with_skip_term(stage: StackedConvBlocks, upsampled: torch.Tensor, skip_term: torch.Tensor) -> torch.Tensor:
        first = stage.convs[0]
        conv = first.conv
        x = F.conv3d(upsampled, conv.weight[:, : conv.in_channels // 2], None, conv.stride, conv.padding) + skip_term
        x = first.all_modules[1:](x)  # dropout / norm / nonlinearity after the convolution
        return stage.convs[1:](x)


def _project(x: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Maps (B, N, ...) of x's (B, C, ...) voxels projected onto (B, N, C) vectors.

    For channels-last x the product is taken in channels-last order, so the maps and x's
    gradient stay channels-last: the channels-first einsum returns channels-first tensors,
    and converting them back for the next convolution cost more than the projection itself.
    """
    if x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
        return torch.einsum("bhwdc,bnc->bhwdn", x.permute(0, 2, 3, 4, 1), vectors).permute(0, 4, 1, 2, 3)
    return torch.einsum("bchwd,bnc->bnhwd", x, vectors)
