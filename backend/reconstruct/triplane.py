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

PLANE_AXES = ((0, 1), (0, 2), (1, 2))  # model axes each plane spans, as (grid x, grid y)
GLTF_TO_MODEL = [2, 0, 1]  # model (x, y, z) = glTF (Z, X, Y)
ROWS_PER_SLAB = 262144  # grid points decoded at once: memory stays flat however fine the grid


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
    def density_grid(self, resolution: int, progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
        """Density at resolution³ points spanning the cube, indexed [X, Y, Z] in glTF axes.

        The same numbers as `density` at those points, computed faster: on a grid a plane's
        features depend on two indices only, so the planes are resampled once to the grid's
        rows and columns, and the decoder's first layer (linear over the concatenated
        features) is applied to each plane before the three are added per point. That skips
        a grid_sample and a 3F-wide matrix product for each of resolution³ points.

        Args:
            resolution: Points per axis.
            progress: (done, total) after each slab of points, e.g. to check for a cancel.
        """
        n, device = resolution, self.planes.device
        # Texel-space coordinates of the grid's points along one axis, in grid_sample's [-1, 1].
        line = torch.linspace(-1.0, 1.0, n, device=device)
        grid = torch.stack(torch.meshgrid(line, line, indexing="ij"), -1)  # (n, n, 2): [a, b] -> (a, b)
        first, rest = self.decoder.layers[0], self.decoder.layers[1:]
        features = self.planes.shape[1]
        projected = []
        for plane, (axis_a, axis_b) in enumerate(PLANE_AXES):
            # grid_sample reads (x, y) = (axis a, axis b): x runs along the plane's width.
            sampled = F.grid_sample(self.planes[plane:plane + 1], grid[None], mode="bilinear", padding_mode="zeros",
                                    align_corners=False)[0]  # (F, n, n) indexed [a, b]
            weight = first.weight[:, plane * features:(plane + 1) * features]  # (W, F)
            projected.append(torch.einsum("wf,fab->abw", weight, sampled))  # (n, n, W)
        xy, xz, yz = projected
        volume = torch.empty(n, n, n, device=device)  # model axes [x, y, z]
        slab = max(1, ROWS_PER_SLAB // (n * n))
        for start in range(0, n, slab):
            stop = min(n, start + slab)
            hidden = (xy[start:stop, :, None] + xz[start:stop, None, :] + yz[None, :, :] + first.bias)  # (s, n, n, W)
            raw = rest(hidden.view(-1, hidden.shape[-1]))[:, 0]
            volume[start:stop] = torch.exp(raw + self.density_bias).view(stop - start, n, n)
            if progress:
                progress(stop, n)
        return volume.permute(1, 2, 0)  # glTF [X, Y, Z] = model [y, z, x]
