"""An oracle prior for testing score distillation without weights.

If the data a diffusion model learned were concentrated on one image x0 (here: the render of a
known asset from the camera being scored), its optimal noise prediction has a closed form,

    eps_hat(x_t, t) = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t),

so SDS's update w(t) (eps_hat - eps) becomes w(t) sqrt(a_t / (1 - a_t)) (x - x0): it pulls each
render towards the asset's render from the same camera. Run through the real engine from a
blank field, distillation must then reconstruct the asset, which a test can measure from
cameras it never trained on. Its conditional and unconditional answers agree, so any
classifier-free guidance scale leaves the update as it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from .base import View


def ddpm_alphas_cumprod(steps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """alpha-bar_t of Stable Diffusion's "scaled linear" schedule (betas linear in sqrt), (steps,)."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


class OracleDenoiser:
    """The optimal denoiser for data that is the render of a known asset from the scored view.

    Args:
        render_target: View → (3, H, W) render of the asset in [0, 1], on the same background
            the field is rendered on.
        alphas_cumprod: The noise schedule (T,).
        to_model_space: What the engine noises, from a render (default [-1, 1]; a latent
            oracle passes the same map the guidance uses).
    """

    def __init__(self, render_target: Callable[[View], torch.Tensor], alphas_cumprod: torch.Tensor = None,
                 to_model_space: Callable[[torch.Tensor], torch.Tensor] = lambda x: x * 2 - 1):
        self.render_target = render_target
        self.alphas_cumprod = ddpm_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
        self.to_model_space = to_model_space
        self._last: tuple = ((), None)  # the targets of the last views: CFG asks twice a step

    def encode(self, prompts: Sequence[str]) -> Any:
        return list(prompts)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, condition: Any, views: Sequence[View]) -> torch.Tensor:
        if self._last[0] != tuple(views):
            self._last = (tuple(views), self.to_model_space(torch.stack([self.render_target(v) for v in views])))
        x0 = self._last[1].to(x_t)
        a = self.alphas_cumprod.to(x_t.device)[t].view(-1, 1, 1, 1).to(x_t.dtype)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()
