"""The two denoisers of the cascaded part diffusion, and the slot features they work on.

SALAD (Koo et al. 2023), after SPAGHETTI (Hertz et al. 2022): phase 1 denoises every part's
Gaussian (plus here its label, a one-hot diffused as continuous values and read by argmax);
phase 2 denoises every part's latent given the finished Gaussians. Both are transformers over a
fixed number of MAX_PARTS slots; empty slots carry weight -1. Parts sit in a canonical order
(by label, then position) and phase 1 learns one embedding per slot: on a CPU budget this trains
far faster than a pure set model, whose samples must first break the slots' symmetry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .representation import CENTER, GAUSSIAN_DIM, ROT6D, SCALE, PartShape, rotation_from_6d, rotation_to_6d


@dataclass
class DenoiserConfig:
    token_dim: int = 40  # features diffused per slot
    cond_dim: int = 0  # clean per-slot features it is conditioned on (phase 2: the layout)
    text_dim: int = 384
    width: int = 128
    depth: int = 4
    heads: int = 4
    slots: int = 0  # > 0: learned per-slot embeddings for canonically ordered slots (phase 1); 0: a pure set


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (B,) timesteps → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], -1)


class PartDenoiser(nn.Module):
    """Predicts v (Salimans & Ho 2022) for every slot, given the noisy slots, t, text and conditions."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = c = config
        self.null_text = nn.Parameter(torch.zeros(c.text_dim))  # classifier-free guidance's "no prompt"
        self.time_mlp = nn.Sequential(nn.Linear(c.width, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        self.text_proj = nn.Linear(c.text_dim, c.width)
        self.in_proj = nn.Linear(c.token_dim + c.cond_dim, c.width)
        self.slot_embed = nn.Parameter(torch.zeros(c.slots, c.width)) if c.slots else None
        layer = nn.TransformerEncoderLayer(c.width, c.heads, 4 * c.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, c.depth, enable_nested_tensor=False)
        self.out_norm = nn.LayerNorm(c.width)
        self.out_proj = nn.Linear(c.width, c.token_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x (B, S, D) noisy slots; t (B,); text (B, 384); cond (B, S, C) or None. Returns (B, S, D)."""
        if cond is not None:
            x = torch.cat([x, cond], -1)
        context = self.time_mlp(timestep_embedding(t, self.config.width)) + self.text_proj(text)  # (B, W)
        h = self.in_proj(x) + context[:, None]  # (B, S, W)
        if self.slot_embed is not None:
            h = h + self.slot_embed[: h.shape[1]]
        h = torch.cat([context[:, None], h], 1)  # a context token the slots attend to, (B, 1+S, W)
        h = self.blocks(h)[:, 1:]
        return self.out_proj(self.out_norm(h))


class SlotCodec:
    """PartShape ↔ normalised slot tensors for the denoisers.

    Layout features per slot, (13 + V,): centre | rot6D | log half extents | weight ±1 | label one-hot as ±1,
    each continuous dim standardised by training statistics. Latent features: (L,) standardised.
    """

    def __init__(self, vocabulary: list[str], max_parts: int, stats: dict[str, torch.Tensor]):
        self.vocabulary = list(vocabulary)
        self.max_parts = max_parts
        self.stats = stats  # "layout_mean"/"layout_std" (12,), "latent_mean"/"latent_std" (L,)

    @property
    def layout_dim(self) -> int:
        return GAUSSIAN_DIM + len(self.vocabulary)

    @staticmethod
    def raw_layout(gaussians: torch.Tensor) -> torch.Tensor:
        """(N, 13) Gaussians → (N, 12) the continuous features before standardising."""
        return torch.cat([gaussians[:, CENTER], gaussians[:, ROT6D], gaussians[:, SCALE].clamp(min=1e-4).log()], -1)

    def slot_order(self, shape: PartShape) -> list[int]:
        """Canonical order of the parts: by vocabulary label, then x, z, y of the centre."""
        c = shape.centers
        return sorted(range(len(shape)), key=lambda i: (self.vocabulary.index(shape.labels[i]), round(float(c[i, 0]), 2),
                                                         round(float(c[i, 2]), 2), round(float(c[i, 1]), 2)))

    def encode(self, shape: PartShape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
        """Returns layout (S, 13+V), latents (S, L), exists (S,) bool and the slot of each part
        (parts fill the first slots in canonical order)."""
        order = self.slot_order(shape)
        slot_of = [0] * len(shape)
        for k, i in enumerate(order):
            slot_of[i] = k
        shape = shape.select(order) if len(shape) else shape
        n, S, V = len(shape), self.max_parts, len(self.vocabulary)
        if n > S:
            raise ValueError(f"a shape has at most {S} parts, got {n}")
        L = self.stats["latent_mean"].shape[0]
        layout = torch.zeros(S, GAUSSIAN_DIM + V)
        layout[:, 12] = -1.0
        layout[:, 13:] = -1.0
        latents = torch.zeros(S, L)
        if n:
            raw = self.raw_layout(shape.gaussians)
            layout[:n, :12] = (raw - self.stats["layout_mean"]) / self.stats["layout_std"]
            layout[:n, 12] = 1.0
            idx = torch.tensor([self.vocabulary.index(l) for l in shape.labels])
            layout[torch.arange(n), 13 + idx] = 1.0
            latents[:n] = (shape.latents - self.stats["latent_mean"]) / self.stats["latent_std"]
        exists = torch.arange(S) < n
        return layout, latents, exists, slot_of

    def snap_layout(self, layout: torch.Tensor) -> torch.Tensor:
        """Clean up a sampled layout (…, S, 13+V): weight and label become exact ±1, empty slots zero."""
        out = layout.clone()
        exists = layout[..., 12] > 0
        onehot = torch.nn.functional.one_hot(layout[..., 13:].argmax(-1), len(self.vocabulary)).float() * 2 - 1
        out[..., 13:] = onehot
        out[..., 12] = exists.float() * 2 - 1
        out[..., :12] = torch.where(exists[..., None], out[..., :12], torch.zeros_like(out[..., :12]))
        out[..., 13:] = torch.where(exists[..., None], out[..., 13:], -torch.ones_like(out[..., 13:]))
        return out

    def decode(self, layout: torch.Tensor, latents: torch.Tensor) -> tuple[list[str], torch.Tensor, torch.Tensor, list[int]]:
        """(S, 13+V), (S, L) → labels, gaussians (N, 13), latents (N, L) and the slots used, for existing slots."""
        slots = [int(i) for i in torch.nonzero(layout[:, 12] > 0).flatten()]
        raw = layout[slots, :12] * self.stats["layout_std"] + self.stats["layout_mean"]  # (N, 12)
        rot6 = rotation_to_6d(rotation_from_6d(raw[:, 3:9]))  # orthonormal columns
        gaussians = torch.cat([raw[:, 0:3], rot6, raw[:, 9:12].exp(), layout[slots, 12:13]], -1)  # (N, 13)
        labels = [self.vocabulary[int(i)] for i in layout[slots, 13:].argmax(-1)]
        lat = latents[slots] * self.stats["latent_std"] + self.stats["latent_mean"]  # (N, L)
        return labels, gaussians.contiguous(), lat.contiguous(), slots
