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

from ..cutout import cut_out
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
    """The object of a photo (backend/cutout.py), centred and scaled to `fill` of a square frame, on white.

    Args:
        image: (H, W, 3|4) uint8.
        size: Side of the square result.
        fill: The object's larger side as a fraction of the frame's.

    Returns:
        ((3, size, size) in [0, 1] on white, (size, size) mask in [0, 1]).

    Raises:
        InputError: no object could be told from the background.
    """
    rgb, mask, _ = cut_out(image, size, fill, WHITE)
    return rgb, mask
