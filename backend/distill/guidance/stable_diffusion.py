"""Stable Diffusion as the 2D prior of score distillation: a `Denoiser` over SD's latents.

    prior = StableDiffusionPrior.from_pretrained(options=LoadOptions(device="cuda", dtype=torch.float16))
    guidance = ScoreDistillation(prior, SDSConfig(), to_model_space=prior.to_latents)

Renders go through the VAE encoder (with gradients: SDS's update reaches the field through
it), the UNet predicts the noise of the noised latents, and the CLIP text encoder gives its
condition. Stable-dreamfusion and threestudio do the same: renders resized bilinearly to the
model's size (512²), a sample of the VAE posterior times the VAE's scaling factor.

Models: any diffusers folder of SD 1.x or 2.x (unet/, vae/, text_encoder/, tokenizer/,
scheduler/), as a hub id or a local folder, safetensors only. The default
stabilityai/stable-diffusion-2-1-base predicts epsilon at 512²; v-prediction models
(stabilityai/stable-diffusion-2-1, at its own 768²) are converted to epsilon.

Memory, from the published parameter counts (not measured here): in fp16, which CUDA gets,
the weights of SD 2.1-base take about 2.6 GB (UNet 865 M parameters, OpenCLIP-H text encoder
354 M, VAE 84 M); SD 1.5 about 2.1 GB (its CLIP-L text encoder is 123 M). fp32 doubles that.
Backpropagating through the VAE encoder at 512² adds its activations for each view of a step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from .base import View

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1-base"


@dataclass
class PriorConfig:
    """Parameters of StableDiffusionPrior.

    Attributes:
        image_size: Side the renders are resized to before the VAE; None: the model's own
            training size, as diffusers' pipelines derive it (UNet sample size x the VAE's
            downscaling: 512 for SD 1.x and 2.x-base, 768 for SD 2.x).
        sample_latents: Encode to a sample of the VAE posterior (stable-dreamfusion,
            threestudio) rather than its mean; SD's posterior is narrow, so they differ little.
    """

    image_size: Optional[int] = None
    sample_latents: bool = True


class StableDiffusionPrior:
    """Stable Diffusion's UNet, VAE and text encoder as a `Denoiser`, weights frozen.

    Args:
        unet, vae, text_encoder, tokenizer: Loaded diffusers / transformers components.
        alphas_cumprod: The model's noise schedule (T,).
        prediction_type: "epsilon" or "v_prediction", from the model's scheduler config.
        config: See PriorConfig.
        generator: Draws the VAE posterior samples (reproducible runs).
    """

    def __init__(self, unet: Any, vae: Any, text_encoder: Any, tokenizer: Any, alphas_cumprod: torch.Tensor,
                 prediction_type: str = "epsilon", config: PriorConfig = PriorConfig(),
                 generator: Optional[torch.Generator] = None):
        if prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        for model in (unet, vae, text_encoder):
            model.requires_grad_(False).eval()
        self.device = unet.device
        self.alphas_cumprod = alphas_cumprod.to(self.device)
        self.prediction_type, self.config, self.generator = prediction_type, config, generator
        self._unconditional: Optional[torch.Tensor] = None  # embedding of "", asked for every step
        # The model's training size, as diffusers' pipelines derive their default height.
        self.image_size = unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_MODEL, options: Any = None, config: PriorConfig = PriorConfig(),
                        generator: Optional[torch.Generator] = None) -> "StableDiffusionPrior":
        """Load an SD 1.x / 2.x model from the Hugging Face cache or a local folder.

        Args:
            source: Hub id or local diffusers folder with unet/, vae/, text_encoder/,
                tokenizer/ and scheduler/.
            options: backend.models.LoadOptions: device, dtype (float16 on CUDA; None =
                float32), allow_downloads, cache_dir. Default: CPU, float32, offline.
            config: See PriorConfig.
            generator: Draws the VAE posterior samples.

        Returns:
            The prior, on `options.device`.

        Raises:
            ModelUnavailable: not on this machine and downloads are off, or without
                safetensors weights (the message names the model and the fix).
        """
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        from ...hub import resolve_model_source, weights_variant
        from ...models import LoadOptions

        options = options or LoadOptions()
        dtype = options.dtype or torch.float32
        folder = resolve_model_source(source, options.allow_downloads, options.cache_dir)
        weights = dict(dtype=dtype, use_safetensors=True, variant=weights_variant(folder))
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **weights)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", **weights)
        text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **weights)
        tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
        # Every SD scheduler (PNDM, DDIM, Euler) derives alpha-bar from the same betas; DDPM reads them.
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
        device = options.device
        return cls(unet.to(device), vae.to(device), text_encoder.to(device), tokenizer,
                   scheduler.alphas_cumprod.float(), scheduler.config.prediction_type, config, generator)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """CLIP text embeddings of `prompts`, as the SD pipelines compute them.

        Args:
            prompts: B prompts.

        Returns:
            (B, 77, D) in the UNet's dtype (D = 768 for SD 1.x, 1024 for SD 2.x).
        """
        ids = self.tokenizer(list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.unet.dtype)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, condition: Optional[torch.Tensor],
                      views: Sequence[View]) -> torch.Tensor:
        """The UNet's noise prediction epsilon(x_t, t, condition).

        Args:
            x_t: (B, 4, h, w) noised latents.
            t: (B,) integer timesteps.
            condition: (B or 1, 77, D) from `encode`; None = unconditional (the empty prompt).
            views: Unused: SD does not condition on the camera.

        Returns:
            (B, 4, h, w) epsilon, in x_t's dtype.
        """
        if condition is None:
            if self._unconditional is None:
                self._unconditional = self.encode([""])
            condition = self._unconditional
        condition = condition.to(self.device, self.unet.dtype).expand(len(x_t), -1, -1)  # one prompt: every view
        out = self.unet(x_t.to(self.unet.dtype), t.to(self.device), encoder_hidden_states=condition).sample
        out = out.to(x_t.dtype)
        if self.prediction_type == "v_prediction":
            # v = sqrt(a) eps - sqrt(1 - a) x0 and x_t = sqrt(a) x0 + sqrt(1 - a) eps
            # give eps = sqrt(a) v + sqrt(1 - a) x_t (Salimans & Ho 2022, "Progressive Distillation").
            a = self.alphas_cumprod[t.to(self.device)].view(-1, 1, 1, 1).to(x_t.dtype)
            out = a.sqrt() * out + (1 - a).sqrt() * x_t
        return out

    def to_latents(self, renders: torch.Tensor) -> torch.Tensor:
        """Renders to SD latents, differentiably: SDS's `to_model_space` for this prior.

        Args:
            renders: (B, 3, H, W) in [0, 1], with gradients.

        Returns:
            (B, 4, image_size / 8, image_size / 8) latents (scaled by the VAE's scaling factor),
            in the renders' dtype; gradients flow back through the VAE encoder.
        """
        size = self.config.image_size or self.image_size
        x = F.interpolate(renders, (size, size), mode="bilinear", align_corners=False) * 2 - 1  # (B, 3, S, S)
        posterior = self.vae.encode(x.to(self.vae.dtype)).latent_dist
        latents = posterior.sample(self.generator) if self.config.sample_latents else posterior.mean
        return (latents * self.vae.config.scaling_factor).to(renders.dtype)
