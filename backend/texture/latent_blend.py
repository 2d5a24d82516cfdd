"""Inpainting by latent blending, shared by the diffusers view generators.

A pixel's mask value m in [0, 1] says for how much of the schedule it is free: m = 1
(generate) is free throughout, m = 0 (keep) never, m = 0.5 (refine) for the last half of the
steps — SDEdit at strength 0.5. After every denoising step the current texture's latents,
noised to the next timestep, are put back wherever a latent is still held (the
blended-latent scheme of RePaint / Blended Latent Diffusion, as TEXTure uses it).

The free region is grown by one latent (8 pixels) beyond the mask, as TEXTure dilates its
masks: new content is generated over a seam-wide band of what it meets and blends into it
(only the masked texels are baked, so the band changes nothing stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from .views import ViewRequest


def latent_freedom(mask: torch.Tensor, size: tuple[int, int], dilation: int = 1) -> torch.Tensor:
    """How free each latent is: the freest pixel it covers, grown by `dilation` latents.

    Args:
        mask: (H, W) pixel freedom in [0, 1]. size: (h, w) of the latents.
    Returns:
        (1, 1, h, w) float.
    """
    free = F.adaptive_max_pool2d(mask[None, None].to(torch.float32), size)
    if dilation > 0:
        free = F.max_pool2d(free, 2 * dilation + 1, stride=1, padding=dilation)
    return free


def hold_known_latents(known: torch.Tensor, noise: torch.Tensor, free: torch.Tensor,
                       on_step: Optional[Callable[[], None]] = None) -> Callable[..., dict]:
    """A `callback_on_step_end` that puts `known` back wherever a latent is not yet free.

    Args:
        known: (1, C, h, w) latents of what the texture already shows (scaled as the UNet sees them).
        noise: One noise draw (same shape) that `known` is noised with at every step, so held
            latents follow one trajectory rather than fresh noise per step.
        free: (1, 1, h, w) from `latent_freedom`.
        on_step: Called after each step (the request's `on_step`: it raises to stop).

    Returns:
        The callback, for a diffusers pipeline called with `callback_on_step_end_tensor_inputs=["latents"]`.
    """

    def blend(pipeline: Any, i: int, t: Any, kwargs: dict) -> dict:
        latents = kwargs["latents"]
        timesteps = pipeline.scheduler.timesteps
        progress = (i + 1) / len(timesteps)
        # Free for the last `free` of the steps: the next step starts from known latents
        # while the steps done so far are within the first 1 - free.
        held = free <= 1 - progress + 1e-6  # (1, 1, h, w)
        if i + 1 < len(timesteps):
            target = pipeline.scheduler.add_noise(known, noise, timesteps[i + 1 : i + 2])
        else:
            target = known
        blended = torch.where(held, target.to(latents.dtype), latents)
        if on_step is not None:
            on_step()
        return {"latents": blended}

    return blend


@dataclass
class BlendStart:
    """What a diffusers view generator starts from (see `start_blend`).

    Attributes:
        image: (1, 3, H, W) float32 in [0, 1], the current texture seen from the view.
        known: (1, C, h, w) its latents, scaled as the UNet sees them.
        free: (1, 1, h, w) how free each latent is (`latent_freedom`).
        noise: (1, C, h, w) the starting noise, drawn from the request's generator.
    """

    image: torch.Tensor
    known: torch.Tensor
    free: torch.Tensor
    noise: torch.Tensor


def start_blend(pipe: Any, request: ViewRequest, dilation: int = 1) -> BlendStart:
    """Encode the request's current image with the pipeline's VAE and draw the starting noise.

    Args:
        pipe: A Stable Diffusion pipeline (anything with `vae`, `vae_scale_factor`, `_execution_device`).
        request: The view; its size must be a multiple of the VAE's factor (8).
        dilation: Latents by which the free region grows.

    Raises:
        ValueError: the view size is not a multiple of the VAE's factor.
    """
    height, width = request.image.shape[:2]
    factor = pipe.vae_scale_factor
    if height % factor or width % factor:
        raise ValueError(f"view size {width}x{height} must be a multiple of {factor}")
    device, dtype = pipe._execution_device, pipe.vae.dtype
    image = request.image.permute(2, 0, 1)[None].to(device, torch.float32)  # (1, 3, H, W) in [0, 1]
    known = pipe.vae.encode((image * 2 - 1).to(dtype)).latent_dist.mean * pipe.vae.config.scaling_factor
    free = latent_freedom(request.mask, tuple(known.shape[-2:]), dilation).to(device)
    noise = torch.randn(known.shape, generator=request.generator, dtype=torch.float32).to(device, dtype)
    return BlendStart(image, known, free, noise)
