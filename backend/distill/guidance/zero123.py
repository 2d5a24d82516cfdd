"""Zero-1-to-3 as the prior for image to 3D (Liu et al. 2023, "Zero-1-to-3: Zero-shot One Image to
3D Object"): a Stable Diffusion UNet fine-tuned to draw the object of a reference image from
another camera, told the camera relative to the reference's.

Conditioning, as the released model takes it (and threestudio feeds it):
- the UNet's input is the noisy latent concatenated with the reference image's VAE latent
  (the posterior's mode, unscaled): 8 channels;
- cross-attention reads one token: `cc_projection` of [CLIP image embedding of the reference,
  relative camera], the camera being (polar change in radians, sin and cos of the azimuth
  change, distance change), polar = 90° - elevation;
- classifier-free guidance drops both (zeros), at a scale of about 3.

Weights: the diffusers layout of `ashawkey/zero123-xl-diffusers` (the default), e.g. also
`bennyguo/zero123-xl-diffusers` or a Stable Zero123 conversion in that layout: unet/, vae/,
image_encoder/ (CLIPVisionModelWithProjection), feature_extractor/, cc_projection/ (a linear
layer, safetensors) and scheduler/. Safetensors only, never remote code.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from .base import View

DEFAULT_MODEL = "ashawkey/zero123-xl-diffusers"
IMAGE_SIZE = 256  # Zero-1-to-3's training resolution


class Zero123Prior:
    """A `Denoiser` drawing the reference's object from each view's camera.

    `set_reference` must be called before the first prediction. `encode` ignores its prompts:
    the condition is the reference image, and None asks for the unconditional prediction.

    Args:
        unet, vae, image_encoder: The loaded components; cc_projection: the linear layer.
        alphas_cumprod: The noise schedule (T,).
        clip_mean, clip_std: The image encoder's pixel normalisation.
        generator: Draws the VAE posterior samples of renders.
    """

    def __init__(self, unet: Any, vae: Any, image_encoder: Any, cc_projection: torch.nn.Linear,
                 alphas_cumprod: torch.Tensor, clip_mean: Sequence[float], clip_std: Sequence[float],
                 generator: Optional[torch.Generator] = None):
        for model in (unet, vae, image_encoder, cc_projection):
            model.requires_grad_(False).eval()
        self.unet, self.vae, self.image_encoder, self.cc_projection = unet, vae, image_encoder, cc_projection
        self.device = unet.device
        self.alphas_cumprod = alphas_cumprod.to(self.device)
        self.clip_mean = torch.tensor(clip_mean, device=self.device).view(1, 3, 1, 1)
        self.clip_std = torch.tensor(clip_std, device=self.device).view(1, 3, 1, 1)
        self.generator = generator
        self.reference: Optional[tuple[torch.Tensor, torch.Tensor, View]] = None  # (clip embedding, latent, view)

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_MODEL, options: Any = None,
                        generator: Optional[torch.Generator] = None) -> "Zero123Prior":
        """Load the diffusers-layout folder (hub id or local), safetensors only.

        Raises:
            ModelUnavailable: not here and downloads are off, or a part missing (the message says which).
        """
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from safetensors.torch import load_file
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        from ...errors import ModelUnavailable
        from ...hub import resolve_model_source, weights_variant
        from ...models import LoadOptions

        options = options or LoadOptions()
        dtype = options.dtype or torch.float32
        folder = resolve_model_source(source, options.allow_downloads, options.cache_dir)
        weights = dict(dtype=dtype, use_safetensors=True, variant=weights_variant(folder))
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **weights)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", **weights)
        encoder = CLIPVisionModelWithProjection.from_pretrained(folder, subfolder="image_encoder", **weights)
        processor = CLIPImageProcessor.from_pretrained(folder, subfolder="feature_extractor")
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
        try:
            state = load_file(f"{folder}/cc_projection/diffusion_pytorch_model.safetensors")
        except (OSError, RuntimeError) as e:
            raise ModelUnavailable(f"{source} has no cc_projection/diffusion_pytorch_model.safetensors (the camera "
                                   f"projection of Zero-1-to-3's diffusers layout): {e}") from None
        weight, bias = (state.get(f"projection.{k}", state.get(k)) for k in ("weight", "bias"))
        if weight is None or bias is None or weight.ndim != 2 or weight.shape[1] != encoder.config.projection_dim + 4:
            raise ModelUnavailable(f"{source}: cc_projection must map the image embedding and 4 camera numbers "
                                   f"({encoder.config.projection_dim + 4} inputs) to the UNet's cross-attention width")
        projection = torch.nn.Linear(weight.shape[1], weight.shape[0])
        projection.load_state_dict({"weight": weight, "bias": bias})
        device = options.device
        return cls(unet.to(device), vae.to(device), encoder.to(device), projection.to(device, dtype),
                   scheduler.alphas_cumprod.float(), processor.image_mean, processor.image_std, generator)

    @torch.no_grad()
    def set_reference(self, image: torch.Tensor, view: View) -> None:
        """The image every prediction draws from another camera.

        Args:
            image: (3, H, W) in [0, 1], the object centred on a white background.
            view: The camera it was seen from (its elevation, azimuth and distance).
        """
        dtype = self.unet.dtype
        x = image[None].to(self.device, torch.float32)
        size = int(self.image_encoder.config.image_size)
        clip_input = (F.interpolate(x, (size, size), mode="bilinear", antialias=True) - self.clip_mean) / self.clip_std
        embedding = self.image_encoder(clip_input.to(dtype)).image_embeds[:, None]  # (1, 1, D)
        latent_size = self._image_size()
        latent = self.vae.encode((F.interpolate(x, (latent_size, latent_size), mode="bilinear", antialias=True) * 2 - 1
                                  ).to(dtype)).latent_dist.mode()  # unscaled, as Zero-1-to-3 was trained
        self.reference = (embedding, latent, view)

    def encode(self, prompts: Sequence[str]) -> str:
        return "reference"  # conditioned on the image, not on text

    def relative_cameras(self, views: Sequence[View]) -> torch.Tensor:
        """(B, 4): polar change (radians), sin and cos of the azimuth change, distance change."""
        if self.reference is None:
            raise RuntimeError("set_reference first: Zero-1-to-3 draws a reference image from other cameras")
        ref = self.reference[2]
        rows = [((90 - v.elevation) - (90 - ref.elevation), v.azimuth - ref.azimuth, v.distance - ref.distance)
                for v in views]
        return torch.tensor([[math.radians(p), math.sin(math.radians(a)), math.cos(math.radians(a)), d]
                             for p, a, d in rows], dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, condition: Any, views: Sequence[View]) -> torch.Tensor:
        if self.reference is None:
            raise RuntimeError("set_reference first: Zero-1-to-3 draws a reference image from other cameras")
        embedding, latent, _ = self.reference
        dtype, batch = self.unet.dtype, len(x_t)
        tokens = torch.cat([embedding.expand(batch, -1, -1),
                            self.relative_cameras(views)[:, None].to(embedding.dtype)], -1)
        tokens = self.cc_projection(tokens.to(self.cc_projection.weight.dtype)).to(dtype)  # (B, 1, width)
        concat = latent.expand(batch, -1, -1, -1)
        if condition is None:  # classifier-free guidance's unconditional branch: both conditions dropped
            tokens, concat = torch.zeros_like(tokens), torch.zeros_like(concat)
        x = torch.cat([x_t.to(dtype), concat.to(dtype)], 1)
        return self.unet(x, t.to(self.device), encoder_hidden_states=tokens).sample.to(x_t.dtype)

    def to_latents(self, renders: torch.Tensor) -> torch.Tensor:
        """Renders (B, 3, H, W) in [0, 1] -> scaled latents at Zero-1-to-3's size, differentiably."""
        size = self._image_size()
        x = F.interpolate(renders, (size, size), mode="bilinear", align_corners=False) * 2 - 1
        posterior = self.vae.encode(x.to(self.vae.dtype)).latent_dist
        return (posterior.mean * self.vae.config.scaling_factor).to(renders.dtype)

    def _image_size(self) -> int:
        """The image size the UNet was trained for: its sample size times the VAE's downsampling."""
        return int(self.unet.config.sample_size) * 2 ** (len(self.vae.config.block_out_channels) - 1)
