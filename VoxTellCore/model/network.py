"""VoxTell: ResEnc-L image encoder, transformer prompt decoder, fused U-Net decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from dynamic_network_architectures.building_blocks.residual_encoders import ResidualEncoder
from dynamic_network_architectures.initialization.weight_init import InitWeights_He, init_last_bn_before_add_to_0
from torch import nn

from VoxTellCore.model.config import VoxTellConfig
from VoxTellCore.model.image_decoder import VoxTellDecoder
from VoxTellCore.model.positional import sinusoidal_encoding_3d
from VoxTellCore.model.prompt_decoder import PromptDecoder


class GroupwiseInstanceNorm3d(nn.InstanceNorm3d):
    """An affine InstanceNorm3d computed as GroupNorm with one channel per group: the same
    normalisation, but PyTorch's CPU kernel keeps channels-last tensors channels-last, where
    InstanceNorm makes them contiguous (and the next convolution converts them back)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)


class WindowFeatures(NamedTuple):
    """What every prompt of one window is decoded from (``VoxTellModel.window_features``).

    The encoder's skips enter the image decoder only through the skip half of each stage's
    first convolution, so those convolutions (``skip_terms``) are kept in place of the skips:
    the same memory, and a prompt decoded from them skips that half of the decoder's work.
    """

    bottleneck: torch.Tensor
    memory: torch.Tensor  # the encoder stage whose tokens the prompt decoder attends to
    skip_terms: list[torch.Tensor]

    def tensors(self) -> list[torch.Tensor]:
        return [self.bottleneck, self.memory, *self.skip_terms]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors())


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))


class VoxTellModel(nn.Module):
    """Module names and shapes follow the released checkpoints, so they load key for key."""

    def __init__(self, config: VoxTellConfig, deep_supervision: bool = False) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.deep_supervision = deep_supervision
        self.channels_last = False
        self.encoder = ResidualEncoder(**config.encoder_kwargs())
        self.decoder = VoxTellDecoder(self.encoder, config.n_conv_per_stage_decoder, config.fusion_channels)
        channels = config.features_per_stage
        self.project_bottleneck_embed = _mlp(channels[config.memory_stage], config.query_dim, config.query_dim)
        self.project_text_embed = _mlp(config.text_embedding_dim, config.text_hidden_dim, config.query_dim)
        self.project_to_decoder_channels = nn.ModuleList(
            _mlp(config.query_dim, config.mask_projection_hidden_dim, c * (config.fusion_channels if k else 1))
            for k, c in enumerate(channels[:-1])
        )
        # Memory tokens are flattened in array-axis order (1, 2, 0), as the release does.
        d, h, w = config.memory_grid()
        pos = sinusoidal_encoding_3d((h, w, d), config.query_dim)
        self.register_buffer("pos_embed", pos.reshape(h * w * d, 1, config.query_dim))
        self.transformer_decoder = PromptDecoder(
            config.query_dim, config.prompt_decoder_heads, config.prompt_decoder_ffn_dim, config.prompt_decoder_layers
        )

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encoder skips for a (B, 1, *patch) image; shared by every prompt."""
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last_3d)
        return self.encoder(image)

    def window_features(self, image: torch.Tensor) -> WindowFeatures:
        """The prompt-independent features of a (B, 1, *patch) image, shared by every prompt."""
        return self._window_features(self.encode(image))

    def _window_features(self, skips: list[torch.Tensor]) -> WindowFeatures:
        return WindowFeatures(skips[-1], skips[self.config.memory_stage], self.decoder.skip_terms(skips))

    def mask_embeddings(self, memory: torch.Tensor, text_embeddings: torch.Tensor) -> list[torch.Tensor]:
        """Per-scale mask embeddings (B, N, width_k) for (B, N, text_dim) prompt embeddings;
        ``memory`` is the encoder's output at ``config.memory_stage``."""
        memory = memory.permute(3, 4, 2, 0, 1).flatten(0, 2)  # (h w d), B, C
        memory = self.project_bottleneck_embed(memory)
        queries = self.project_text_embed(text_embeddings.transpose(0, 1))  # N, B, query_dim
        decoded = self.transformer_decoder(queries, memory, self.pos_embed).transpose(0, 1)
        return [projection(decoded) for projection in self.project_to_decoder_channels]

    def decode_prompt(self, features: WindowFeatures, embeddings: list[torch.Tensor], prompt: int) -> list[torch.Tensor]:
        """Logits (B, 1, ...) of one prompt, full resolution first (see ``VoxTellDecoder``)."""
        prompt_embeddings = [e[:, prompt : prompt + 1] for e in embeddings]
        return self.decoder([features.bottleneck], prompt_embeddings, self.deep_supervision, features.skip_terms)

    def forward(self, image: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits (B, N, *patch) for N prompts; a list of 5 scales with deep supervision."""
        if text_embeddings.ndim == 4:  # the release's (B, N, 1, D) layout
            text_embeddings = text_embeddings.squeeze(2)
        skips = self.encode(image)
        embeddings = self.mask_embeddings(skips[self.config.memory_stage], text_embeddings)
        n_prompts = text_embeddings.shape[1]
        if n_prompts == 1:  # as the release computes it (and trains it)
            per_prompt = [self.decoder(skips, embeddings, self.deep_supervision)]
        else:
            features = self._window_features(skips)
            per_prompt = [self.decode_prompt(features, embeddings, n) for n in range(n_prompts)]
        scales = [torch.cat(outputs, dim=1) for outputs in zip(*per_prompt)]
        return scales if self.deep_supervision else scales[0]

    def set_channels_last(self, enabled: bool) -> None:
        """Runs the network in channels-last 3D layout (with ``GroupwiseInstanceNorm3d``) or in
        the default one. Same weights and operations, but oneDNN picks other convolution
        kernels, so the rounding differs: in fp32 by more than the release-parity tolerance
        (on random weights), in bf16 by far less than bf16 itself, where it decodes a prompt
        ~20 % faster. So the predictor uses it for bf16 on the CPU only (bench/README.md)."""
        if enabled == self.channels_last:
            return
        self.to(memory_format=torch.channels_last_3d if enabled else torch.contiguous_format)
        for module in self.modules():
            if isinstance(module, nn.InstanceNorm3d) and module.affine and not module.track_running_stats:
                module.__class__ = GroupwiseInstanceNorm3d if enabled else nn.InstanceNorm3d
        self.channels_last = enabled

    def drop_unused_weights(self) -> VoxTellModel:
        """Frees the prompt decoder's never-used self-attention and norm1 (~100 M weights) for
        inference; returns self. Do it after loading: the state dict no longer has those keys."""
        for layer in self.transformer_decoder.layers:
            layer.drop_unused_weights()
        return self

    def initialize_weights(self) -> None:
        """nnU-Net's initialisation (He for convolutions, zero last norm before a residual add)."""
        self.apply(InitWeights_He(1e-2))
        self.apply(init_last_bn_before_add_to_0)
