"""A deterministic view generator for tests and offline demos: each side gets its own colour.

`DirectionColourGenerator` paints every free pixel with a colour taken from the direction
the camera looks from (object -> eye mapped to RGB, like a normal map), shaded by the
request's disparity so a preview still shows the shape. Opposite sides get clearly
different colours, and the same seed, mesh and views always give the same texture, so the
whole painting pipeline — views, keep/refine/generate masks, bake, padding, the add-on's
write-back — can be checked end to end without model weights.
"""

from __future__ import annotations

import numpy as np
import torch

from .views import ViewRequest


class DirectionColourGenerator:
    """Paints each view in the colour of its viewing direction (a `ViewGenerator`).

    Args:
        shading: How much the disparity darkens far pixels (0 = flat colour per view).
    """

    def __init__(self, shading: float = 0.3):
        self.shading = shading

    def __call__(self, request: ViewRequest) -> torch.Tensor:
        """Args:
            request: The view to paint.

        Returns:
            (H, W, 3) float in [0, 1]: the direction colour where `request.mask` > 0,
            blended with `request.image` by the mask (keep pixels stay as they were).
        """
        camera = request.camera
        direction = np.asarray(camera.eye, np.float64) - np.asarray(camera.target, np.float64)
        direction /= max(np.linalg.norm(direction), 1e-12)  # object -> eye, unit
        colour = torch.tensor(0.1 + 0.8 * (0.5 + 0.5 * direction), dtype=torch.float32,
                              device=request.image.device)  # (3,) never pure black or white
        shade = 1.0 - self.shading * (1.0 - request.disparity.to(torch.float32))  # (H, W) nearer = brighter
        painted = shade[..., None] * colour  # (H, W, 3)
        mask = request.mask.to(torch.float32)[..., None]
        return (mask * painted + (1 - mask) * request.image.to(torch.float32)).clamp(0, 1)
