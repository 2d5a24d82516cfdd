"""Score Distillation Sampling (Poole et al. 2022, "DreamFusion: Text-to-3D using 2D Diffusion").

For a render x of the current 3D state, noise it to x_t = sqrt(a_t) x + sqrt(1 - a_t) eps at a
random t, ask the prior for its noise estimate eps_hat(x_t, t, y) with classifier-free guidance,
and push x along w(t) (eps_hat - eps): the gradient of the diffusion loss with the UNet's
Jacobian left out. DreamFusion's defaults: t ~ U[0.02, 0.98] T, w(t) = 1 - a_t, guidance 100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from ..checkpoint import generator_states, set_generator_states
from .base import Denoiser, GuidanceOutput, View
from .perp_neg import combine_perp_neg, perp_neg_prompts
from .perp_neg import view_prompt as default_view_prompt
from .schedules import WEIGHTINGS, RandomSchedule, RandomScheduleConfig


@dataclass
class SDSConfig:
    """Parameters of ScoreDistillation.

    Attributes:
        guidance_scale: Classifier-free guidance (DreamFusion: 100; lower is less saturated and
            less sharp).
        t_range: Fractions of T the random timesteps are drawn from when no schedule is given.
        weighting: A name in schedules.WEIGHTINGS: "sds" (w(t) = 1 - a_t, DreamFusion) or "uniform".
        view_dependent: Append DreamFusion's view suffix ("front view", ...) to the prompt.
        perp_neg: Guide with Perp-Neg instead (Armandpour et al. 2023): the positive prompt
            interpolated between the views around the camera, and the other views' prompts as
            negatives whose components along the positive direction are removed, against the
            Janus problem (a face on every side). Two more prior calls per step.
        grad_clip: Clamp each element of the update to this size (None: no clamp); high
            guidance scales make rare huge updates that a clamp tames.
    """

    guidance_scale: float = 100.0
    t_range: tuple[float, float] = (0.02, 0.98)
    weighting: str = "sds"
    view_dependent: bool = True
    perp_neg: bool = False
    grad_clip: Optional[float] = None


class ScoreDistillation:
    """SDS against any `Denoiser` (Stable Diffusion in the product, an oracle in tests).

    Args:
        denoiser: The 2D prior.
        config: See SDSConfig.
        total_steps: The optimisation's length, for schedules.
        schedule: Any of schedules.SCHEDULES (DreamTime's, an annealed range), or an object
            with the same `timesteps(step, total_steps, batch)`; None draws from `config.t_range`.
        to_model_space: Renders (B, 3, H, W) in [0, 1] → what the denoiser noises: the default
            maps to [-1, 1] (a pixel-space prior); a latent prior passes its VAE encoder.
        view_prompt: (prompt, view) → prompt with its view suffix (used when view_dependent;
            default DreamFusion's "front / side / back / overhead view").
        generator: Draws timesteps and noise (reproducible runs).
    """

    def __init__(self, denoiser: Denoiser, config: SDSConfig = SDSConfig(), total_steps: int = 1,
                 schedule: Any = None, to_model_space: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 view_prompt: Optional[Callable[[str, View], str]] = None, generator: Optional[torch.Generator] = None):
        if getattr(config, "weighting", "sds") not in WEIGHTINGS:  # (PDS weighs by its posterior instead)
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {config.weighting!r}")
        low, high = config.t_range
        self.schedule = schedule or RandomSchedule(denoiser.alphas_cumprod, RandomScheduleConfig(low, high),
                                                   generator=generator)
        self.denoiser, self.config, self.total_steps = denoiser, config, total_steps
        self.to_model_space = to_model_space or (lambda x: x * 2 - 1)
        self.view_prompt = view_prompt or default_view_prompt
        self.generator = generator
        self._conditions: dict[tuple, Any] = {}  # prompt encodings of this run (a handful of view suffixes)

    def _perp_neg(self, x_t: torch.Tensor, t: torch.Tensor, unconditional: torch.Tensor, views: Sequence[View],
                  prompt: str) -> torch.Tensor:
        """Perp-Neg's guided prediction: the positive condition mixed per view from the view
        prompts' embeddings, two negatives per view with the paper's view-dependent weights."""
        per_view = [perp_neg_prompts(prompt, v) for v in views]
        positive = torch.cat([sum(w * self._condition([p]) for p, w in pv.positive) for pv in per_view])
        eps_pos = self.denoiser.predict_noise(x_t, t, positive, views)
        eps_negs, weights = [], []
        for k in range(2):  # perp_neg_prompts gives every view two negatives
            eps_negs.append(self.denoiser.predict_noise(
                x_t, t, self._condition([pv.negatives[k][0] for pv in per_view]), views))
            weights.append(torch.tensor([pv.negatives[k][1] for pv in per_view]))
        return combine_perp_neg(unconditional, eps_pos, eps_negs, weights, self.config.guidance_scale)

    def checkpoint_state(self) -> dict[str, Any]:
        """Its random draws' state (noise, timesteps, the prior's latent samples), for an exact resume."""
        return generator_states(**self._generators())

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        set_generator_states(state, **self._generators())

    def _generators(self) -> dict[str, Optional[torch.Generator]]:
        return {"noise": self.generator, "schedule": getattr(self.schedule, "generator", None),
                "prior": getattr(self.denoiser, "generator", None)}

    def _condition(self, prompts: Sequence[str]) -> Any:
        key = tuple(prompts)
        if key not in self._conditions:
            if len(self._conditions) >= 64:  # bounded: prompts come from users
                self._conditions.clear()
            self._conditions[key] = self.denoiser.encode(list(prompts))
        return self._conditions[key]

    def __call__(self, renders: torch.Tensor, views: Sequence[View], prompt: str, step: int,
                 negative_prompt: Optional[str] = None) -> GuidanceOutput:
        x = self.to_model_space(renders)
        device = x.device
        t = self.schedule.timesteps(step, self.total_steps, len(x)).to(device)
        noise = torch.randn(x.shape, generator=self.generator, device="cpu").to(device, x.dtype)
        alphas_cumprod = self.denoiser.alphas_cumprod.to(device)
        a = alphas_cumprod[t].view(-1, 1, 1, 1).to(x.dtype)
        prompts = [self.view_prompt(prompt, v) if self.config.view_dependent else prompt for v in views]
        with torch.no_grad():
            x_t = a.sqrt() * x.detach() + (1 - a).sqrt() * noise
            negative = None if not negative_prompt else self._condition([negative_prompt] * len(views))
            if self.config.perp_neg:
                unconditional = self.denoiser.predict_noise(x_t, t, negative, views)
                eps = self._perp_neg(x_t, t, unconditional, views, prompt)
            else:
                eps = self.denoiser.predict_noise(x_t, t, self._condition(prompts), views)
                if self.config.guidance_scale != 1.0:
                    unconditional = self.denoiser.predict_noise(x_t, t, negative, views)
                    eps = unconditional + self.config.guidance_scale * (eps - unconditional)
            grad = WEIGHTINGS[self.config.weighting](alphas_cumprod, t).view(-1, 1, 1, 1).to(x.dtype) * (eps - noise)
            if self.config.grad_clip is not None:
                grad = grad.clamp(-self.config.grad_clip, self.config.grad_clip)
            grad = torch.nan_to_num(grad)
        # d loss / d x = grad / B (the batch's mean): the UNet's Jacobian is left out, as SDS prescribes.
        loss = 0.5 * ((x - (x - grad).detach()) ** 2).sum() / len(x)
        return GuidanceOutput(loss, t, {"grad_norm": float(grad.norm() / len(x))})
