"""TripoSR (Tochilkin et al. 2024, arXiv:2403.02151): an image to triplanes in one forward pass.

Our implementation of the published architecture. DINO ViT-B/16 turns the image into 1025 tokens;
3 x 32 x 32 learned triplane tokens go through a 16-layer transformer that attends to them; a 2x
transposed convolution makes three 64 x 64 planes of 40 features; an MLP decodes the three
features a point projects to into density and colour.

Submodule names follow the published checkpoint's keys (`image_tokenizer.model...`,
`tokenizer.embeddings`, `backbone.transformer_blocks.N...`, `post_processor.upsample`,
`decoder.layers.N`), so its state dict maps onto ours with renames only inside the ViT, whose
names changed between transformers versions (`checkpoint.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .config import TripoSRConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # DINO's input normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageTokenizer(nn.Module):
    """DINO ViT-B/16 (transformers' ViTModel, pooler kept so every published key has a home):
    (B, 3, H, W) in [0, 1] -> (B, 1 + (H/16)(W/16), 768) tokens."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        self.model = ViTModel(ViTConfig(
            hidden_size=config.vit_hidden, num_hidden_layers=config.vit_layers, num_attention_heads=config.vit_heads,
            intermediate_size=config.vit_intermediate, patch_size=config.vit_patch, image_size=config.vit_image_size,
            hidden_act="gelu", layer_norm_eps=1e-12, qkv_bias=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Constants, not buffers: the model is built on the meta device and its weights assigned.
        mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        # The position embeddings were learned at 224²; interpolated to the 512² input, as trained.
        return self.model((images - mean) / std, interpolate_pos_encoding=True).last_hidden_state


class TriplaneTokens(nn.Module):
    """The learned queries: three planes of `plane_size`² tokens, `channels` wide."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        self.plane_size = config.plane_size
        self.embeddings = nn.Parameter(
            torch.randn(3, config.channels, config.plane_size, config.plane_size) / math.sqrt(config.channels))

    def forward(self, batch: int) -> torch.Tensor:
        """(B, C, 3 * P * P): plane-major, then rows, then columns."""
        return self.embeddings.flatten(2).permute(1, 0, 2).reshape(1, self.embeddings.shape[1], -1).expand(batch, -1, -1)

    def to_planes(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, 3 * P * P) -> (B, 3, C, P, P)."""
        batch, channels, _ = tokens.shape
        return tokens.view(batch, channels, 3, self.plane_size, self.plane_size).permute(0, 2, 1, 3, 4)


class TriplaneTransformer(nn.Module):
    """GroupNorm, a linear in, pre-norm blocks (self-attention, cross-attention to the image tokens,
    GEGLU feed-forward: diffusers' BasicTransformerBlock), a linear out, and a residual around it all."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        from diffusers.models.attention import BasicTransformerBlock

        inner = config.heads * config.head_dim
        self.norm = nn.GroupNorm(config.norm_groups, config.channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(config.channels, inner)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, config.heads, config.head_dim, cross_attention_dim=config.vit_hidden,
                                  activation_fn="geglu", attention_bias=False, norm_type="layer_norm")
            for _ in range(config.layers))
        self.proj_out = nn.Linear(inner, config.channels)

    def forward(self, tokens: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """(B, C, L) triplane tokens, (B, T, D) image tokens -> (B, C, L)."""
        hidden = self.proj_in(self.norm(tokens).transpose(1, 2))
        for block in self.transformer_blocks:
            hidden = block(hidden, encoder_hidden_states=image_tokens)
        return self.proj_out(hidden).transpose(1, 2) + tokens


class TriplaneUpsample(nn.Module):
    """A 2x2, stride-2 transposed convolution on each plane: (B, 3, C, P, P) -> (B, 3, F, 2P, 2P)."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        self.upsample = nn.ConvTranspose2d(config.channels, config.triplane_channels, kernel_size=2, stride=2)

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        batch = planes.shape[0]
        up = self.upsample(planes.flatten(0, 1))
        return up.view(batch, 3, *up.shape[1:])


class TriplaneDecoder(nn.Module):
    """The NeRF MLP: 3F features -> (raw density, 3 raw colour channels); Linear and SiLU alternate,
    so the linears sit at even indices of `layers` as in the published keys."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        width = config.decoder_width
        modules: list[nn.Module] = [nn.Linear(3 * config.triplane_channels, width), nn.SiLU()]
        for _ in range(config.decoder_hidden_layers - 1):
            modules += [nn.Linear(width, width), nn.SiLU()]
        modules.append(nn.Linear(width, 4))
        self.layers = nn.Sequential(*modules)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class TripoSR(nn.Module):
    """The whole network: `forward(images)` gives the triplanes; `decoder` reads them (triplane.py)."""

    def __init__(self, config: TripoSRConfig):
        super().__init__()
        self.config = config
        self.image_tokenizer = ImageTokenizer(config)
        self.tokenizer = TriplaneTokens(config)
        self.backbone = TriplaneTransformer(config)
        self.post_processor = TriplaneUpsample(config)
        self.decoder = TriplaneDecoder(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images in [0, 1], S = config.image_size -> (B, 3, F, 2P, 2P) triplanes (xy, xz, yz)."""
        image_tokens = self.image_tokenizer(images)
        tokens = self.backbone(self.tokenizer(images.shape[0]), image_tokens)
        return self.post_processor(self.tokenizer.to_planes(tokens))
