"""The input image of image-to-3D distillation: cut out, centred, and held as a view the field must
reproduce (Zero-1-to-3 and Magic123 supervise the reference camera directly, besides the prior's
score from every other camera).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from .guidance.base import View
from .volume import Occupancy, RenderConfig, render

WHITE = (1.0, 1.0, 1.0)  # Zero-1-to-3's renders are on white


@dataclass
class ReferenceView:
    """A view the field must look like: the input image where its object is, and its mask.

    Attributes:
        view: The reference camera (background white).
        image: (3, H, W) in [0, 1], the object on white.
        mask: (H, W) in [0, 1], where the object is.
        rgb_weight, mask_weight: The losses' weights beside the guidance's, threestudio's Zero-1-to-3
            balance (SDS 0.1 : RGB 500 : mask 50) scaled so the guidance counts 1.
    """

    view: View
    image: torch.Tensor
    mask: torch.Tensor
    rgb_weight: float = 5000.0
    mask_weight: float = 500.0

    def loss(self, field, rendering: RenderConfig, occupancy: Optional[Occupancy],
             generator: torch.Generator) -> torch.Tensor:
        """Weighted mean squared errors of the field's render from the reference camera: its colour
        against the image, its opacity against the mask."""
        device = next(field.parameters()).device
        rendered = render(field, [self.view], rendering, occupancy, "albedo", background=torch.tensor(WHITE),
                          generator=generator)
        image, mask = self.image.to(device), self.mask.to(device)
        rgb = F.mse_loss(rendered.rgb[0], image)
        opacity = F.mse_loss(rendered.opacity[0, 0], mask)
        return self.rgb_weight * rgb + self.mask_weight * opacity


def prepare_reference(image: np.ndarray, size: int, fill: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """The object of a photo, centred and scaled to `fill` of a square frame, on white.

    The object is where the alpha channel says (an image with transparency), else what differs
    from the border's colour (a product shot on a plain background); a busy background needs
    cutting out first.

    Args:
        image: (H, W, 3|4) uint8.
        size: Side of the square result.
        fill: The object's larger side as a fraction of the frame's.

    Returns:
        ((3, size, size) in [0, 1] on white, (size, size) mask in [0, 1]).

    Raises:
        InputError: no object could be told from the background.
    """
    rgba = np.asarray(image, np.float32) / 255.0
    rgb = rgba[..., :3]
    if rgba.shape[2] == 4 and (rgba[..., 3] < 0.99).any():
        mask = rgba[..., 3]
    else:
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        background = np.median(border, axis=0)
        distance = np.abs(rgb - background).max(-1)
        mask = np.clip((distance - 0.04) / 0.08, 0, 1)  # soft around the threshold: antialiased outlines stay soft
    rows, cols = np.nonzero(mask > 0.5)
    if len(rows) < 16:
        raise InputError("could not tell the object from the background in the image: use a picture with "
                         "transparency (alpha), or of the object alone on a plain background")
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(bottom - top, right - left) / fill
    centre_row, centre_col = (top + bottom) / 2, (left + right) / 2
    composite = rgb * mask[..., None] + (1 - mask[..., None])  # on white
    stacked = torch.from_numpy(np.concatenate([composite, mask[..., None]], -1)).permute(2, 0, 1)[None]  # (1, 4, H, W)
    # Sample the square window around the object (white and empty beyond the photo's edge).
    height, width = mask.shape
    ys = (centre_row + (torch.arange(size) + 0.5 - size / 2) * side / size) / height * 2 - 1
    xs = (centre_col + (torch.arange(size) + 0.5 - size / 2) * side / size) / width * 2 - 1
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1)[None].float()  # (1, S, S, 2) as (x, y)
    window = F.grid_sample(stacked - torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 4, 1, 1), grid, mode="bilinear",
                           padding_mode="zeros", align_corners=False) + torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 4, 1, 1)
    return window[0, :3].clamp(0, 1), window[0, 3].clamp(0, 1)
