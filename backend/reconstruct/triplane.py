"""Density and colour from TripoSR's triplanes, at any point and on a whole grid.

Frames: the model works in its own cube [-radius, radius]³, Z up, its input camera on +X (azimuth
0 of its renderer). Everything here takes and returns glTF axes (Y up, the input's view looking
at the front, +Z), the backend's convention: glTF (X, Y, Z) = model (y, z, x), a rotation.

A point's features are the three planes sampled where it projects (xy, xz, yz in model axes),
bilinearly, zero outside, texel centres at (i + 0.5) / size as grid_sample(align_corners=False)
places them: the published renderer's choices.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .config import TripoSRConfig
from .network import TriplaneDecoder

PLANE_AXES = ((0, 1), (0, 2), (1, 2))  # model axes each plane spans, as (grid_sample x, y): xy, xz, yz
GLTF_TO_MODEL = [2, 0, 1]  # model (x, y, z) = glTF (Z, X, Y)
ROWS_PER_SLAB = 262144  # grid points decoded at once: memory stays flat however fine the grid
COARSE_SPACING = 4  # fine points between the coarse ones a surface search starts from
COARSE_MIN = 32  # below twice this many points per axis, a grid is decoded whole


class TriplaneField:
    """A decoded scene: `density(points)` and `colour(points)` in glTF axes, `density_grid(n)`.

    Args:
        planes: (3, F, H, W) one image's triplanes.
        decoder: The network's TriplaneDecoder.
        config: For the cube's radius and the density's bias.
    """

    def __init__(self, planes: torch.Tensor, decoder: TriplaneDecoder, config: TripoSRConfig):
        self.planes = planes.float()
        self.decoder = decoder.float()
        self.radius = config.radius
        self.density_bias = config.density_bias

    @torch.no_grad()
    def raw(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) glTF points -> (N, 4) the decoder's raw output (density, then colour logits)."""
        model = points.to(self.planes)[:, GLTF_TO_MODEL] / self.radius  # [-1, 1] across the cube
        grids = torch.stack([model[:, list(axes)] for axes in PLANE_AXES])[:, None]  # (3, 1, N, 2)
        sampled = F.grid_sample(self.planes, grids, mode="bilinear", padding_mode="zeros", align_corners=False)
        features = sampled[:, :, 0].permute(2, 0, 1).reshape(len(points), -1)  # (N, 3F): plane-major
        return self.decoder(features)

    def density(self, points: torch.Tensor) -> torch.Tensor:
        """(N,) density: exp(raw + bias), the published activation."""
        return torch.exp(self.raw(points)[:, 0] + self.density_bias)

    def colour(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 3) colour in [0, 1], sRGB like the images it learned from (sigmoid of the decoder's output)."""
        return torch.sigmoid(self.raw(points)[:, 1:4])

    @torch.no_grad()
    def density_grid(self, resolution: int, progress: Optional[Callable[[int, int], None]] = None,
                     near: Optional[float] = None) -> torch.Tensor:
        """Density at resolution³ points spanning the cube, indexed [X, Y, Z] in glTF axes.

        The same numbers as `density` at those points, computed faster: on a grid a plane's
        features depend on two indices only, so the planes are resampled once to the grid's
        rows and columns, and the decoder's first layer (linear over the concatenated
        features) is applied to each plane before the three are added per point. That skips
        a grid_sample and a 3F-wide matrix product for each point.

        Args:
            resolution: Points per axis.
            progress: (done, total) as the points are decoded, e.g. to check for a cancel.
            near: A surface threshold to work towards: the grid is first decoded every
                `COARSE_SPACING`-th point, and only the cells where the density crosses `near`,
                and their neighbours, are decoded in full. Elsewhere the volume holds 0 (outside)
                or 2 x near (inside): the same surface at a fraction of the cost, except for a
                feature thin enough to slip between coarse points (under about
                COARSE_SPACING / resolution of the cube). None decodes every point.
        """
        xy, xz, yz = self._projected_planes(resolution)
        if near is None or resolution < 2 * COARSE_MIN:
            return self._decode_all(xy, xz, yz, progress).permute(1, 2, 0)
        return self._decode_near(xy, xz, yz, float(near), progress).permute(1, 2, 0)  # glTF [X, Y, Z] = model [y, z, x]

    def _projected_planes(self, n: int) -> list[torch.Tensor]:
        """Each plane resampled to the grid and multiplied by its share of the first layer: (n, n, W) each."""
        line = torch.linspace(-1.0, 1.0, n, device=self.planes.device)  # grid_sample's [-1, 1] across the cube
        grid = torch.stack(torch.meshgrid(line, line, indexing="ij"), -1)  # (n, n, 2): [a, b] -> (a, b)
        first, features = self.decoder.layers[0], self.planes.shape[1]
        projected = []
        for plane in range(3):
            # grid_sample reads (x, y) = (the plane's first axis, its second): [a, b] below.
            sampled = F.grid_sample(self.planes[plane:plane + 1], grid[None], mode="bilinear", padding_mode="zeros",
                                    align_corners=False)[0]  # (F, n, n)
            weight = first.weight[:, plane * features:(plane + 1) * features]  # (W, F)
            projected.append(torch.einsum("wf,fab->abw", weight, sampled) + (first.bias if plane == 0 else 0))
        return projected

    def _decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """First-layer outputs (..., W) -> density (...)."""
        raw = self.decoder.layers[1:](hidden.reshape(-1, hidden.shape[-1]))[:, 0]
        return torch.exp(raw + self.density_bias).view(hidden.shape[:-1])

    def _decode_all(self, xy, xz, yz, progress) -> torch.Tensor:
        n = xy.shape[0]
        volume = torch.empty(n, n, n, device=xy.device)  # model axes [x, y, z]
        slab = max(1, ROWS_PER_SLAB // (n * n))
        for start in range(0, n, slab):
            stop = min(n, start + slab)
            volume[start:stop] = self._decode(xy[start:stop, :, None] + xz[start:stop, None, :] + yz[None, :, :])
            if progress:
                progress(stop, n)
        return volume

    def _decode_near(self, xy, xz, yz, near: float, progress) -> torch.Tensor:
        n, device = xy.shape[0], xy.device
        # 1. Every COARSE_SPACING-th point (and the last), decoded in full.
        coarse = torch.unique(torch.linspace(0, n - 1, (n - 2) // COARSE_SPACING + 2, device=device).round().long())
        m = len(coarse)
        values = self._decode_all(xy[coarse][:, coarse], xz[coarse][:, coarse], yz[coarse][:, coarse], None)
        # 2. Coarse cells whose corners disagree about inside, grown by one cell each way.
        inside = (values > near).float()[None, None]
        mixed = F.max_pool3d(inside, 2, stride=1) != -F.max_pool3d(-inside, 2, stride=1)
        marked = F.max_pool3d(mixed.float(), 3, stride=1, padding=1)[0, 0] > 0  # (m-1)³ cells
        cell_inside = F.max_pool3d(inside, 2, stride=1)[0, 0] > 0  # unmarked cells: all corners agree
        # 3. Each fine point's cell; the marked cells' points decoded, the rest filled by side.
        cell = (torch.searchsorted(coarse, torch.arange(n, device=device), right=True) - 1).clamp(0, m - 2)
        volume = torch.where(cell_inside[cell][:, cell][:, :, cell], 2.0 * near, 0.0)
        todo = marked[cell][:, cell][:, :, cell].nonzero()  # (P, 3) model-axis indices
        for start in range(0, len(todo), ROWS_PER_SLAB):
            i, j, k = todo[start:start + ROWS_PER_SLAB].unbind(1)
            volume[i, j, k] = self._decode(xy[i, j] + xz[i, k] + yz[j, k])
            if progress:
                progress(min(start + ROWS_PER_SLAB, len(todo)), len(todo))
        volume[coarse[:, None, None], coarse[None, :, None], coarse[None, None, :]] = values
        return volume
