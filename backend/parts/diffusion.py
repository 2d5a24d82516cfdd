"""The two denoisers of the cascaded part diffusion, and the slot features they work on.

SALAD (Koo et al. 2023), after SPAGHETTI (Hertz et al. 2022): phase 1 denoises every part's
Gaussian (plus here its label, a one-hot diffused as continuous values and read by argmax);
phase 2 denoises every part's latent given the finished Gaussians. Both are transformers over a
fixed number of slots; empty slots carry weight -1. Each category has a slot template, a fixed
run of slots per label ("leg" ×5, then "wheel" ×5, …), so a slot means the same part in every
shape of its category and a count is how many slots of a run are filled; phase 1 learns one
embedding per slot. On a CPU budget this trains far faster than a pure set model, whose samples
must first break the slots' symmetry, and far more accurately than one canonical order for all
shapes, where one missing part shifts every later part into another slot.
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
    slots: int = 0  # > 0: learned per-slot embeddings for template slots (phase 1); 0: a pure set
    categories: int = 0  # > 0: also conditioned on the prompt's category (one learned embedding each, plus "none")
    count_dim: int = 0  # > 0: each token carries this many count features after its text_dim (prompt_counts.py)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (B,) timesteps → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], -1)


class CrossAttentionBlock(nn.Module):
    """Pre-norm transformer block: self-attention over the slots, cross-attention to the prompt's
    token states, MLP. Token states keep which words say what ("three" next to "legs"), which a
    single sentence vector blurs."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, h: torch.Tensor, words: torch.Tensor, words_mask: torch.Tensor) -> torch.Tensor:
        """h (B, N, W); words (B, T, W); words_mask (B, T) True where a token is real."""
        x = self.norm1(h)
        h = h + self.self_attn(x, x, x, need_weights=False)[0]
        h = h + self.cross_attn(self.norm2(h), words, words, key_padding_mask=~words_mask, need_weights=False)[0]
        return h + self.mlp(self.norm3(h))


@dataclass
class TextCondition:
    """A batch of prompts as the denoisers see them.

    Attributes:
        pooled: (B, 384) standardised sentence embeddings.
        tokens: (B, T, 384 [+ COUNT_DIM]) token states, then one token per count the prompt states.
        mask: (B, T) bool, True where `tokens` holds a real token.
        category: (B,) long index of the category each prompt names (the nearest known one), or None.
    """

    pooled: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor
    category: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.pooled.shape[0]

    def to(self, device) -> "TextCondition":
        category = None if self.category is None else self.category.to(device)
        return TextCondition(self.pooled.to(device), self.tokens.to(device), self.mask.to(device), category)

    def select(self, index: torch.Tensor, dtype: torch.dtype = torch.float32) -> "TextCondition":
        """Rows at `index`, token states cast to `dtype`."""
        category = None if self.category is None else self.category[index]
        return TextCondition(self.pooled[index], self.tokens[index].to(dtype), self.mask[index], category)

    def trimmed(self) -> "TextCondition":
        """The same prompts with token columns no prompt uses cut off (attention ignores them)."""
        used = torch.nonzero(self.mask.any(0)).flatten()
        T = int(used.max()) + 1 if len(used) else 1
        return TextCondition(self.pooled, self.tokens[:, :T], self.mask[:, :T], self.category)

    @staticmethod
    def cat(conditions: list["TextCondition"]) -> "TextCondition":
        """Stack batches, padding token sequences to the longest."""
        pooled = torch.cat([c.pooled for c in conditions])
        category = None if any(c.category is None for c in conditions) else torch.cat([c.category for c in conditions])
        T = max(c.tokens.shape[1] for c in conditions)
        pad = lambda x, v: torch.nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (0, T - x.shape[1]), value=v)  # noqa: E731
        return TextCondition(pooled, torch.cat([pad(c.tokens, 0.0) for c in conditions]),
                             torch.cat([pad(c.mask, False) for c in conditions]), category)


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
        if c.categories:  # the last row is "no category", for guidance and unknown prompts
            self.category_embed = nn.Embedding(c.categories + 1, c.width)
            nn.init.zeros_(self.category_embed.weight)
            if c.slots:  # what each slot of each category's template holds
                self.category_slot_embed = nn.Parameter(torch.zeros(c.categories + 1, c.slots, c.width))
        self.null_token = nn.Parameter(torch.zeros(c.text_dim + c.count_dim))  # the one token of "no prompt"
        self.words_in = nn.Sequential(nn.LayerNorm(c.text_dim), nn.Linear(c.text_dim, c.width))
        self.count_in = nn.Linear(c.count_dim, c.width, bias=False) if c.count_dim else None  # a learned code per count
        self.blocks = nn.ModuleList(CrossAttentionBlock(c.width, c.heads) for _ in range(c.depth))
        self.out_norm = nn.LayerNorm(c.width)
        self.out_proj = nn.Linear(c.width, c.token_dim)

    def unconditional(self, like: TextCondition, drop: torch.Tensor | None = None) -> TextCondition:
        """`like` with the rows where `drop` (B,) is True (all rows by default) replaced by "no prompt"."""
        B = len(like)
        drop = torch.ones(B, dtype=torch.bool, device=like.pooled.device) if drop is None else drop
        pooled = torch.where(drop[:, None], self.null_text.expand(B, -1), like.pooled)
        category = None if like.category is None else torch.where(drop, self.config.categories, like.category)
        first = torch.zeros_like(like.mask)
        first[:, 0] = True
        tokens = like.tokens.clone()
        tokens[:, 0] = torch.where(drop[:, None], self.null_token.expand(B, -1), tokens[:, 0])
        return TextCondition(pooled, tokens, torch.where(drop[:, None], first, like.mask), category)

    def forward(self, x: torch.Tensor, t: torch.Tensor, text: TextCondition, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x (B, S, D) noisy slots; t (B,); text; cond (B, S, C) or None. Returns (B, S, D)."""
        if cond is not None:
            x = torch.cat([x, cond], -1)
        context = self.time_mlp(timestep_embedding(t, self.config.width)) + self.text_proj(text.pooled)  # (B, W)
        if self.config.categories:
            if text.category is None:
                raise ValueError("this denoiser is conditioned on the category: pass TextCondition.category")
            context = context + self.category_embed(text.category)
        h = self.in_proj(x) + context[:, None]  # (B, S, W)
        if self.slot_embed is not None:
            h = h + self.slot_embed[: h.shape[1]]
            if self.config.categories:
                h = h + self.category_slot_embed[text.category, : h.shape[1]]
        h = torch.cat([context[:, None], h], 1)  # a context token the slots attend to, (B, 1+S, W)
        words = self.words_in(text.tokens[..., : self.config.text_dim])
        if self.count_in is not None:
            words = words + self.count_in(text.tokens[..., self.config.text_dim :])
        for block in self.blocks:
            h = block(h, words, text.mask)
        return self.out_proj(self.out_norm(h[:, 1:]))


class SlotCodec:
    """PartShape ↔ normalised slot tensors for the denoisers.

    Layout features per slot, (13 + V,): centre | rot6D | log half extents | weight ±1 | label one-hot as ±1,
    each continuous dim standardised by training statistics. Latent features: (L,) standardised.

    Args:
        templates: category → the label of each slot of its template (runs of equal labels); a shape
            of another category, or a part its template has no free slot for, takes the free slots
            left over (in canonical order).
    """

    def __init__(self, vocabulary: list[str], max_parts: int, stats: dict[str, torch.Tensor],
                 templates: dict[str, list[str]] | None = None):
        self.vocabulary = list(vocabulary)
        self.max_parts = max_parts
        self.stats = stats  # "layout_mean"/"layout_std" (12,), "latent_mean"/"latent_std" (L,)
        self.templates = dict(templates or {})

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

    def assign_slots(self, shape: PartShape) -> list[int]:
        """The slot of each part: its label's run in the category template, in canonical order
        within the run; parts left over fill the free slots in canonical order."""
        if len(shape) > self.max_parts:
            raise ValueError(f"a shape has at most {self.max_parts} parts, got {len(shape)}")
        template = self.templates.get(shape.category, [])
        slot_of: list[int | None] = [None] * len(shape)
        order = self.slot_order(shape)
        for i in order:
            run = [k for k, label in enumerate(template) if label == shape.labels[i] and k not in slot_of]
            if run:
                slot_of[i] = run[0]
        free = iter(k for k in range(self.max_parts) if k not in slot_of)
        for i in order:
            if slot_of[i] is None:
                slot_of[i] = next(free)
        return slot_of  # type: ignore[return-value]

    def encode(self, shape: PartShape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
        """Returns layout (S, 13+V), latents (S, L), exists (S,) bool and the slot of each part."""
        slot_of = self.assign_slots(shape)
        S, V = self.max_parts, len(self.vocabulary)
        L = self.stats["latent_mean"].shape[0]
        layout = torch.zeros(S, GAUSSIAN_DIM + V)
        layout[:, 12] = -1.0
        layout[:, 13:] = -1.0
        latents = torch.zeros(S, L)
        if len(shape):
            slots = torch.tensor(slot_of)
            raw = self.raw_layout(shape.gaussians)
            layout[slots, :12] = (raw - self.stats["layout_mean"]) / self.stats["layout_std"]
            layout[slots, 12] = 1.0
            idx = torch.tensor([self.vocabulary.index(l) for l in shape.labels])
            layout[slots, 13 + idx] = 1.0
            latents[slots] = (shape.latents - self.stats["latent_mean"]) / self.stats["latent_std"]
        exists = layout[:, 12] > 0
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
