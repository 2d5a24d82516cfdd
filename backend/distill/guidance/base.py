"""The one interface every guidance method implements, and the denoiser it consults.

A method is a callable `guidance(renders, views, prompt, step) -> GuidanceOutput`: given the
renders of the current 3D state from `views`, it returns a loss whose gradient with respect
to the renders is the method's update direction (for SDS, w(t) (eps_hat - eps)). A `Denoiser`
stands for the 2D prior: Stable Diffusion's UNet in practice, an oracle with a closed-form
answer in tests, so every method runs unchanged against either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

import torch


@dataclass(frozen=True)
class View:
    """Where a render was seen from, as the guidance needs it.

    Attributes:
        elevation: Degrees above the horizon.
        azimuth: Degrees, 0 = the front (+Z), positive towards +X; in [-180, 180).
        distance: Camera distance from the object's centre.
        fov_y: Vertical field of view in degrees.
        camera: The full camera (backend.render.camera.Camera), for guidance that conditions on
            it (VSD's camera-conditioned LoRA, Zero-1-to-3's relative pose, oracles).
        background: The (r, g, b) the render was composited on, when the guidance must know it
            (an oracle renders its target on the same); None when not recorded.
        shading: How the render was shaded ("albedo", "lambertian", "textureless"), likewise.
    """

    elevation: float
    azimuth: float
    distance: float
    fov_y: float
    camera: Any = None
    background: Optional[tuple[float, float, float]] = None
    shading: Optional[str] = None


@dataclass
class GuidanceOutput:
    """What one guidance step returns.

    Attributes:
        loss: Scalar whose gradient w.r.t. the renders is the method's update (backward it).
        timesteps: (B,) the diffusion timesteps used, for logs and schedules' tests.
        info: Figures for progress and benches (e.g. {"grad_norm": ...}).
    """

    loss: torch.Tensor
    timesteps: torch.Tensor
    info: dict[str, float] = field(default_factory=dict)


class Denoiser(Protocol):
    """The 2D prior's noise prediction, epsilon_theta(x_t, t, condition).

    `alphas_cumprod` is its noise schedule (T,), alpha-bar_t of DDPM, on the model's device.
    `condition` is whatever `encode` returned for a prompt (text embeddings for SD; the view
    for an oracle), and None asks for the unconditional prediction.
    """

    alphas_cumprod: torch.Tensor

    def encode(self, prompts: Sequence[str]) -> Any: ...

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, condition: Any,
                      views: Sequence[View]) -> torch.Tensor: ...


class Guidance(Protocol):
    """`guidance(renders, views, prompt, step)`: renders (B, 3, H, W) in [0, 1] with gradients,
    their views, the prompt, and the optimisation step (for schedules).

    A method with state of its own (random generators, a denoiser it trains) also has
    `checkpoint_state() -> dict` and `load_checkpoint_state(state)`, so a stopped run can go on
    exactly where it stood (backend/distill/checkpoint.py).
    """

    def __call__(self, renders: torch.Tensor, views: Sequence[View], prompt: str, step: int,
                 negative_prompt: Optional[str] = None) -> GuidanceOutput: ...
