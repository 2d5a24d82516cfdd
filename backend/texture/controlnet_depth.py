"""Stable Diffusion 1.5 inpainting steered by a depth ControlNet, as a view generator.

The route Text2Tex and SyncMVD take: `lllyasviel/control_v11f1p_sd15_depth` makes an SD 1.5
model follow a depth map (our rendered disparity, so the view lines up with the mesh), and
SD 1.5's inpainting UNet (9 input channels: latents, mask, latents of the masked image)
sees what the texture already shows around a hole, so new paint continues it rather than
being blended in afterwards. A plain SD 1.5 base (4 channels) also works: then only latent
blending joins old and new.

Either way the graded keep / refine / generate freedom of `ViewRequest.mask` comes from
`latent_blend`: the pipeline is told to generate wherever a latent is free at some point,
and held latents are put back after every step.

VRAM, not yet measured on a GPU: estimated without one by bench/estimate_texture_vram.py
(PyTorch's peak allocation for one 512 x 512 view into a 1024² texture): fp16 3.3 GB,
fp16 + model CPU offload 2.8 GB (the ControlNet stays on the GPU beside the UNet), fp32
6.6 GB. Counted from the architecture: UNet 859.5 M parameters, ControlNet 361.3 M, text
encoder 123.1 M, VAE 83.7 M: 2.86 GB of fp16 weights, 0.28 GB more than SD2-depth's.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from ..devices import place_pipeline
from .latent_blend import hold_known_latents, start_blend
from .views import ViewRequest

DEFAULT_BASE = "stable-diffusion-v1-5/stable-diffusion-inpainting"
DEFAULT_CONTROLNET = "lllyasviel/control_v11f1p_sd15_depth"


class ControlNetDepthViewGenerator:
    """Paints views with a `StableDiffusionControlNetInpaintPipeline`.

    Args:
        pipe: The loaded pipeline with its depth ControlNet (tests use tiny random ones).
        mask_dilation: Latents by which the free region grows (see `latent_blend`).
        conditioning_scale: Weight of the ControlNet's residuals; 1.0 follows the depth as
            trained (diffusers' default for inpainting, 0.5, lets shapes drift off the mesh).
    """

    def __init__(self, pipe: Any, mask_dilation: int = 1, conditioning_scale: float = 1.0):
        self.pipe, self.mask_dilation, self.conditioning_scale = pipe, mask_dilation, conditioning_scale

    @classmethod
    def from_pretrained(cls, base: str = DEFAULT_BASE, controlnet: str = DEFAULT_CONTROLNET, device: str = "cpu",
                        dtype: Optional[torch.dtype] = None, allow_downloads: bool = False,
                        cache_dir: Optional[str] = None, attention_slicing: bool = False,
                        cpu_offload: bool = False) -> "ControlNetDepthViewGenerator":
        """Load the base model and the ControlNet from the Hugging Face cache or local folders.

        Args:
            base: Hub id or local diffusers folder of an SD 1.5 model (inpainting or plain).
            controlnet: Hub id or local folder of a depth ControlNet for SD 1.5.
            device, dtype, allow_downloads, cache_dir, attention_slicing, cpu_offload: As for
                `sd_depth.DepthViewGenerator.from_pretrained`.

        Returns:
            The generator.

        Raises:
            ModelUnavailable: either model is not on this machine and downloads are off (the
                message names it and says how to fix it).
        """
        from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline

        from ..hub import resolve_model_source, weights_variant

        dtype = dtype or torch.float32
        control_folder = resolve_model_source(controlnet, allow_downloads, cache_dir)
        base_folder = resolve_model_source(base, allow_downloads, cache_dir)
        net = ControlNetModel.from_pretrained(control_folder, dtype=dtype, variant=weights_variant(control_folder))
        # Views are of the artist's own mesh: no safety checker (it would black out whole views).
        pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
            base_folder, controlnet=net, dtype=dtype, variant=weights_variant(base_folder),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        return cls(place_pipeline(pipe, device, attention_slicing, cpu_offload))

    @torch.no_grad()
    def __call__(self, request: ViewRequest) -> torch.Tensor:
        """Paint one view: (H, W, 3) in [0, 1] (see `ViewGenerator`; H and W multiples of 8)."""
        pipe = self.pipe
        height, width = request.image.shape[:2]
        # 1. What the texture shows, how free each latent is, and the mask the pipeline sees:
        #    every pixel whose latent is free at some point of the schedule.
        begin = start_blend(pipe, request, self.mask_dilation)
        device = pipe._execution_device
        inpaint = F.interpolate((begin.free > 0).float(), size=(height, width), mode="nearest")  # (1, 1, H, W)
        depth = request.disparity.to(device, torch.float32)[None, None].expand(1, 3, height, width)

        # 2. Depth-steered denoising from our noise (strength 1); held latents put back each step
        output = pipe(
            prompt=request.prompt, negative_prompt=request.negative_prompt or None, image=begin.image,
            mask_image=inpaint, control_image=depth, height=height, width=width, strength=1.0,
            num_inference_steps=request.num_inference_steps, guidance_scale=request.guidance_scale,
            generator=request.generator, latents=begin.noise, controlnet_conditioning_scale=self.conditioning_scale,
            output_type="pt", callback_on_step_end=hold_known_latents(begin.known, begin.noise, begin.free, request.on_step),
            callback_on_step_end_tensor_inputs=["latents"],
        )
        return output.images[0].permute(1, 2, 0).float().clamp(0, 1)  # (H, W, 3)
