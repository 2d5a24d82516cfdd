"""The one interface between texture painting and an image model.

A view generator turns a request — a camera, its depth, what the texture already shows
from there and which pixels still need paint — into an RGB image of the object from that
camera. Stable Diffusion with depth conditioning (`sd_depth.DepthViewGenerator`) is one;
a test oracle that renders a known texture is another. The pipeline never needs to know
which it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

import torch

from ..render.camera import Camera


@dataclass
class ViewRequest:
    """Everything a generator may use to paint one view.

    Attributes:
        prompt: Text for this view (the pipeline may add a view direction, e.g. ", back view").
        negative_prompt: What to steer away from ("" for nothing).
        camera: The camera; image size is camera.height x camera.width.
        depth: (H, W) distance along the view axis, +inf off the object.
        disparity: (H, W) in [0, 1]: 1 nearest, 0 farthest point of the object and the
            background — the MiDaS-like map depth-conditioned models are trained on.
        object_mask: (H, W) bool, pixels that show the object.
        image: (H, W, 3) float in [0, 1], the current texture rendered from this camera
            (grey where nothing is painted yet).
        mask: (H, W) float in [0, 1], how free each pixel is to change: 1 = generate
            (empty), in between = refine (painted before from a worse angle), 0 = keep.
        shows_paint: (H, W) bool, pixels where `image` shows texture earlier views painted
            (elsewhere it is the grey background); None = not known.
        view_index: Position of this view in the painting order (0-based).
        generator: torch.Generator seeded for this view (reproducible results).
        num_inference_steps: Denoising steps.
        guidance_scale: Classifier-free guidance weight.
        on_step: Called after every denoising step; raises to stop the view (a cancelled job).
    """

    prompt: str
    negative_prompt: str
    camera: Camera
    depth: torch.Tensor
    disparity: torch.Tensor
    object_mask: torch.Tensor
    image: torch.Tensor
    mask: torch.Tensor
    shows_paint: Optional[torch.Tensor] = None
    view_index: int = 0
    generator: Optional[torch.Generator] = None
    num_inference_steps: int = 30
    guidance_scale: float = 7.5
    on_step: Optional[Callable[[], None]] = None


@runtime_checkable
class ViewGenerator(Protocol):
    """Paints one view of the object.

    Implementations must return an image of the requested size and should not change
    pixels where `request.mask` is 0 by more than their model's reconstruction error: the
    painter bakes a texel painted before only where all the pixels around it are free, and an
    empty texel only where each of them is free or shows earlier paint. One that takes a while calls `request.on_step()`
    (when set) after each of its steps, so a cancelled job stops within a step.
    """

    def __call__(self, request: ViewRequest) -> torch.Tensor:
        """Args:
            request: What to paint.

        Returns:
            (H, W, 3) float tensor in [0, 1] on any device.
        """
        ...
