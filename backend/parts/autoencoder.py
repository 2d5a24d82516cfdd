"""Part occupancy autoencoder: a part's local occupancy grid ↔ a small latent.

The intrinsic half of the SPAGHETTI/SALAD part representation (Hertz et al. 2022; Koo et al.
2023): each part lives in its own normalised frame [-1, 1]^3 (the Gaussian supplies where it
is, how it is turned and how big), and a latent says what shape fills that frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AutoencoderConfig:
    grid: int = 16  # encoder input: occupancy at the centres of a grid^3 lattice over [-1, 1]^3
    latent_dim: int = 8
    hidden: int = 96
    layers: int = 3  # decoder MLP depth
    frequencies: int = 5  # Fourier features of the query point (NeRF-style)


def lattice(n: int, extent: float = 1.0) -> torch.Tensor:
    """Cell centres of an n^3 lattice over [-extent, extent]^3. Returns (n^3, 3), x fastest last."""
    axis = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 * extent - extent
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


class PartAutoencoder(nn.Module):
    """Encoder: (B, G, G, G) occupancy → (B, latent). Decoder: (latent, local xyz) → occupancy logit."""

    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()):
        super().__init__()
        self.config = config
        c = config
        self.encoder = nn.Sequential(  # an MLP on the flattened grid: far cheaper than 3D convolutions on a CPU
            nn.Flatten(), nn.Linear(c.grid**3, 2 * c.hidden), nn.SiLU(),
            nn.Linear(2 * c.hidden, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.latent_dim),
        )
        in_dim = c.latent_dim + 3 + 6 * c.frequencies
        dims = [in_dim] + [c.hidden] * c.layers
        blocks = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        self.decoder = nn.Sequential(*blocks, nn.Linear(c.hidden, 1))
        self.register_buffer("freqs", (2.0 ** torch.arange(c.frequencies)) * math.pi / 2, persistent=False)

    def encode(self, grid: torch.Tensor) -> torch.Tensor:
        """Args: grid (B, G, G, G) occupancy in {0, 1}. Returns (B, latent)."""
        return self.encoder(grid.float() * 2 - 1)

    def decode(self, latent: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Args: latent (B, L); points (B, N, 3) local coordinates. Returns logits (B, N)."""
        angles = points.unsqueeze(-1) * self.freqs  # (B, N, 3, F)
        feats = torch.cat([points, angles.sin().flatten(-2), angles.cos().flatten(-2)], -1)
        z = latent.unsqueeze(1).expand(-1, points.shape[1], -1)  # (B, N, L)
        return self.decoder(torch.cat([z, feats], -1)).squeeze(-1)

    def forward(self, grid: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encode(grid)
        return self.decode(latent, points), latent
