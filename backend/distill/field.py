"""A radiance field in plain PyTorch: density and albedo from a multi-resolution dense grid.

Instant-NGP's idea without its CUDA hash table: feature grids at several resolutions, each
read by trilinear interpolation (`grid_sample`), concatenated, and decoded by a small MLP.
Dense grids cost more memory than a hash table (128³ x 4 features is 33 MB) but run on CUDA,
MPS and CPU alike, and every lookup is differentiable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FieldConfig:
    """Parameters of a RadianceField.

    Attributes:
        bound: The field lives in the cube [-bound, bound]³ (object-centred, glTF axes).
        resolutions: Side of each feature grid, coarse to fine.
        features: Features per grid cell and level.
        hidden: Width of the decoding MLP.
        blob_density, blob_radius: A bias on the density's logit, lambda (1 - |x| / r): dense
            at the centre, thinning out past r (DreamFusion's density blob in Magic3D's form,
            as threestudio writes it), so the first renders show an object to carve instead of
            fog to clear; being a logit bias, training can still carve it away.
        init_std: Standard deviation of the grids' initial features.
    """

    bound: float = 1.0
    resolutions: tuple[int, ...] = (16, 32, 64, 128)
    features: int = 4
    hidden: int = 64
    blob_density: float = 10.0
    blob_radius: float = 0.5
    init_std: float = 1e-2


class RadianceField(nn.Module):
    """Density (>= 0) and albedo (in [0, 1]) at points, from multi-resolution feature grids.

    Args:
        config: See FieldConfig.
    """

    def __init__(self, config: FieldConfig = FieldConfig()):
        super().__init__()
        self.config = config
        self.grids = nn.ParameterList(
            nn.Parameter(torch.randn(1, config.features, r, r, r) * config.init_std) for r in config.resolutions)
        inputs = config.features * len(config.resolutions)
        self.mlp = nn.Sequential(nn.Linear(inputs, config.hidden), nn.ReLU(), nn.Linear(config.hidden, config.hidden),
                                 nn.ReLU(), nn.Linear(config.hidden, 4))

    def features(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) points → (N, features x levels), trilinear in each grid; zeros outside the cube."""
        # grid_sample's coordinates: x indexes the last axis (W), z the first (D), all in [-1, 1].
        coords = (points / self.config.bound).view(1, -1, 1, 1, 3)
        out = [F.grid_sample(g, coords, mode="bilinear", padding_mode="zeros", align_corners=True).view(g.shape[1], -1)
               for g in self.grids]
        return torch.cat(out, dim=0).t()

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3) points → density (N,) and albedo (N, 3)."""
        raw = self.mlp(self.features(points))
        blob = self.config.blob_density * (1 - points.norm(dim=-1) / self.config.blob_radius)
        return _trunc_exp(raw[:, 0] + blob), torch.sigmoid(raw[:, 1:])

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return self.forward(points)[0]


class _TruncExp(torch.autograd.Function):
    """exp with its gradient clamped (Instant-NGP's "trunc_exp"): density's exp activation
    keeps large values reachable without exploding gradients early in training."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x.clamp(max=15))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15))


def _trunc_exp(x: torch.Tensor) -> torch.Tensor:
    return _TruncExp.apply(x)
