"""Variational Score Distillation (ProlificDreamer, Wang et al. 2023, arXiv:2305.16213).

SDS (DreamFusion, Poole et al. 2022) pushes each render towards a mode of the prior:
    grad = w(t) (eps_prior(x_t, t, y) - eps),   x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps.
VSD treats the 3D states as particles of a distribution q and replaces the sampled noise by
the score of q's own noised renders, learnt on the fly by a second, trainable denoiser:
    grad = w(t) (eps_prior(x_t, t, y) - eps_phi(x_t, t, c))                 (paper, Eq. 9)
    min_phi E_{t, eps} || eps_phi(sqrt(abar_t) x + sqrt(1 - abar_t) eps, t, c) - eps ||^2
                                                                             (paper, Eq. 10)
so particles stop moving where their distribution matches the prior's, not at its modes.

What the reference code does, and what this class follows:
- eps_phi is a LoRA on the prior's UNet whose camera c (the 4x4 pose, flattened) goes through
  a two-layer MLP added to the timestep embedding (paper, Sec. 4 and App. C). Here it is any
  `ParticleDenoiser`; views=None asks it for the camera-free prediction.
- One optimizer step on eps_phi per iteration (official main.py: K = K2 = 1, lr 1e-4), on the
  same renders, detached, with its own t ~ U[0, T) over the full range and fresh noise (the
  official trainer and threestudio both draw this t apart from the VSD t).
- The camera is dropped (zeroed) with probability 0.1 in that step (official `uncond_p`,
  threestudio `lora_cfg_training`), so eps_phi can also be asked without a camera; the VSD
  update itself uses the camera-conditioned prediction (threestudio's guidance_scale_lora 1).
- w(t) = 1 - abar_t = sigma_t^2 (official nerf/sd.py; DreamFusion's choice too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence

import torch
from torch import nn

from ..checkpoint import generator_states, set_generator_states
from .base import Denoiser, GuidanceOutput, View
from .schedules import RandomSchedule, RandomScheduleConfig


class ParticleDenoiser(Protocol):
    """The trainable eps_phi(x_t, t, c): an nn.Module whose `forward(x_t, t, views)` returns
    noise shaped like x_t; views=None asks for the camera-free prediction."""

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor,
                 views: Optional[Sequence[View]]) -> torch.Tensor: ...

    def parameters(self): ...


class TimestepSchedule(Protocol):
    """Chooses the diffusion timesteps of a step (DreamTime-style schedules)."""

    def timesteps(self, step: int, total_steps: int, batch: int) -> torch.Tensor: ...


@dataclass
class VSDConfig:
    """Parameters of VariationalScoreDistillation.

    Attributes:
        guidance_scale: CFG weight on the prior; VSD works at the usual 7.5 where SDS needs
            ~100 (ProlificDreamer, Sec. 5).
        particle_guidance_scale: CFG weight between eps_phi with and without camera; 1 uses
            the camera-conditioned prediction only (threestudio's guidance_scale_lora).
        t_min, t_max: The VSD timestep range as fractions of T (ProlificDreamer: U[0.02, 0.98],
            lowered to 0.5 late in training through a `schedule`).
        particle_lr: Adam's learning rate for eps_phi when no optimizer is given (official 1e-4).
        particle_steps: Optimizer steps on eps_phi per call (official K = 1).
        particle_samples: Timesteps drawn per render for eps_phi's loss (threestudio's
            lora_n_timestamp_samples, 1 by default).
        camera_dropout: Probability of training eps_phi without the camera (official 0.1).
        total_steps: The run's length, passed to a `schedule`.
        seed: Seed of the timestep and noise generator.
    """

    guidance_scale: float = 7.5
    particle_guidance_scale: float = 1.0
    t_min: float = 0.02
    t_max: float = 0.98
    particle_lr: float = 1e-4
    particle_steps: int = 1
    particle_samples: int = 1
    camera_dropout: float = 0.1
    total_steps: int = 10_000
    seed: int = 0


class VariationalScoreDistillation:
    """VSD guidance: `guidance(renders, views, prompt, step) -> GuidanceOutput`.

    Each call returns a loss whose gradient w.r.t. the renders is
    w(t) (eps_prior - eps_phi) / B, then trains the particle denoiser on the detached renders.

    Args:
        denoiser: The frozen 2D prior (any `Denoiser`).
        particle_denoiser: eps_phi, trained here (in the product a camera-conditioned LoRA).
        config: Defaults from ProlificDreamer; see VSDConfig.
        optimizer: For eps_phi; Adam(particle_lr) over its trainable parameters if None.
        schedule: Chooses timesteps; a RandomSchedule over [t_min, t_max] on this guidance's
            generator if None.
        to_model_space: Maps renders to the prior's input space, differentiably, as for
            ScoreDistillation (a latent prior passes its `to_latents`); identity if None, so
            particles that already live in the prior's space (the toys in the tests) pass as they are.
    """

    def __init__(self, denoiser: Denoiser, particle_denoiser: nn.Module,
                 config: Optional[VSDConfig] = None,
                 optimizer: Optional[torch.optim.Optimizer] = None,
                 schedule: Optional[TimestepSchedule] = None,
                 to_model_space: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        self.config = config or VSDConfig()
        self.denoiser = denoiser
        self.particle_denoiser = particle_denoiser
        params = [p for p in particle_denoiser.parameters() if p.requires_grad]
        if optimizer is None and not params:
            raise ValueError("the particle denoiser has no trainable parameters")
        self.optimizer = optimizer or torch.optim.Adam(params, lr=self.config.particle_lr)
        self.to_model_space = to_model_space
        # On the CPU whatever the device: one seed gives one run on any machine, as for SDS
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.schedule = schedule or RandomSchedule(denoiser.alphas_cumprod, RandomScheduleConfig(
            self.config.t_min, self.config.t_max), generator=self.generator)
        self._conditions: dict[Optional[str], Any] = {}

    def checkpoint_state(self) -> dict[str, Any]:
        """The particle denoiser as trained so far, its optimiser and the random draws: an
        exact resume goes on with the same eps_phi, not a fresh one."""
        return {"particles": self.particle_denoiser.state_dict(), "optimizer": self.optimizer.state_dict(),
                "random": generator_states(**self._generators())}

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        self.particle_denoiser.load_state_dict(state["particles"])
        self.optimizer.load_state_dict(state["optimizer"])
        set_generator_states(state["random"], **self._generators())

    def _generators(self) -> dict[str, Optional[torch.Generator]]:
        return {"draws": self.generator, "schedule": getattr(self.schedule, "generator", None),
                "prior": getattr(self.denoiser, "generator", None)}

    def __call__(self, renders: torch.Tensor, views: Sequence[View], prompt: str, step: int,
                 negative_prompt: Optional[str] = None) -> GuidanceOutput:
        """One VSD step and one (or `particle_steps`) update of the particle denoiser.

        Args:
            renders: (B, C, H, W) renders of the particles, with gradients.
            views: B views the renders were seen from.
            prompt: The text prompt.
            step: Optimisation step, for the schedule.
            negative_prompt: Replaces the unconditional branch of CFG if given.

        Returns:
            GuidanceOutput with the VSD loss, the (B,) timesteps used, and info
            {"grad_norm", "particle_loss"}.
        """
        # 1. Check inputs
        if renders.shape[0] != len(views):
            raise ValueError(f"{renders.shape[0]} renders but {len(views)} views")
        x0 = renders if self.to_model_space is None else self.to_model_space(renders)
        batch = x0.shape[0]

        # 2. Prepare timesteps and noise
        t = self._timesteps(step, batch)
        noise = self._randn(x0.shape, x0)
        x_t = self._add_noise(x0.detach(), noise, t)

        # 3. Scores of the prior (with CFG) and of the particles, without gradients
        with torch.no_grad():
            eps_prior = self._prior_noise(x_t, t, views, prompt, negative_prompt)
            eps_phi = self._particle_noise(x_t, t, views)
            alphas_cumprod = self.denoiser.alphas_cumprod.to(x0.device, x0.dtype)
            w = (1.0 - alphas_cumprod[t]).view(-1, *[1] * (x0.dim() - 1))  # (B, 1, ...)
            grad = torch.nan_to_num(w * (eps_prior - eps_phi))

        # 4. Loss with d loss / d x0 = grad / B
        target = (x0 - grad).detach()
        loss = 0.5 * ((x0 - target) ** 2).sum() / batch

        # 5. Train the particle denoiser on the detached renders
        particle_loss = 0.0
        for _ in range(self.config.particle_steps):
            particle_loss = self.train_particle_denoiser(x0.detach(), views)

        return GuidanceOutput(loss=loss, timesteps=t,
                              info={"grad_norm": float(grad.norm()),
                                    "particle_loss": particle_loss})

    def train_particle_denoiser(self, x0: torch.Tensor, views: Sequence[View]) -> float:
        """One optimizer step of eps_phi on the diffusion loss of particles' renders.

        Args:
            x0: (B, C, H, W) clean inputs in the prior's space (no gradient needed).
            views: Their B views; dropped with probability `camera_dropout`.

        Returns:
            The step's mean squared error, for logs.
        """
        n = self.config.particle_samples
        x0 = x0.detach().repeat(n, *[1] * (x0.dim() - 1))  # (n B, C, H, W)
        # Full range t ~ U[0, T), drawn apart from the VSD t (official trainer, threestudio)
        total = self.denoiser.alphas_cumprod.shape[0]
        t = torch.randint(0, total, (x0.shape[0],), generator=self.generator).to(x0.device)
        noise = self._randn(x0.shape, x0)
        x_t = self._add_noise(x0, noise, t)
        drop = torch.rand((), generator=self.generator)
        cond_views = None if float(drop) < self.config.camera_dropout else list(views) * n

        self.optimizer.zero_grad(set_to_none=True)
        loss = ((self.particle_denoiser(x_t, t, cond_views).float() - noise.float()) ** 2).mean()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def _timesteps(self, step: int, batch: int) -> torch.Tensor:
        t = self.schedule.timesteps(step, self.config.total_steps, batch)
        return t.to(device=self.denoiser.alphas_cumprod.device, dtype=torch.long)

    def _randn(self, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(shape, generator=self.generator)
        return noise.to(like.device, like.dtype)

    def _add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = self.denoiser.alphas_cumprod.to(x0.device, x0.dtype)[t]
        abar = abar.view(-1, *[1] * (x0.dim() - 1))
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    def _condition(self, prompt: Optional[str]) -> Any:
        # Encoded once per prompt; one prompt's condition is broadcast over the batch
        if prompt not in self._conditions:
            self._conditions[prompt] = None if prompt is None else self.denoiser.encode([prompt])
        return self._conditions[prompt]

    def _prior_noise(self, x_t: torch.Tensor, t: torch.Tensor, views: Sequence[View],
                     prompt: str, negative_prompt: Optional[str]) -> torch.Tensor:
        scale = self.config.guidance_scale
        cond = self.denoiser.predict_noise(x_t, t, self._condition(prompt), views)
        if scale == 1.0:
            return cond
        uncond = self.denoiser.predict_noise(x_t, t, self._condition(negative_prompt), views)
        return uncond + scale * (cond - uncond)

    def _particle_noise(self, x_t: torch.Tensor, t: torch.Tensor,
                        views: Sequence[View]) -> torch.Tensor:
        scale = self.config.particle_guidance_scale
        cond = self.particle_denoiser(x_t, t, list(views))
        if scale == 1.0:
            return cond
        uncond = self.particle_denoiser(x_t, t, None)
        return uncond + scale * (cond - uncond)
