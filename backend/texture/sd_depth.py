"""Stable Diffusion 2 depth as a view generator, with inpainting by latent blending.

`StableDiffusionDepth2ImgPipeline` (stabilityai/stable-diffusion-2-depth) conditions on a
depth map; we pass our rendered depth (as MiDaS-like disparity) instead of estimating it,
so the generated view lines up with the mesh exactly.

Inpainting, honestly: the depth model has no mask input. We start from noise everywhere
and hold what must stay by latent blending (`latent_blend`), with graded freedom for
refined regions and a one-latent band around what is generated.

VRAM, measured on an H100 with the published SD2-depth component sizes (random weights),
one 512 x 512 view with classifier-free guidance, rasterizer and bake included
(torch.cuda.max_memory_allocated / reserved): fp16 3.1 / 3.5 GB; fp16 + attention slicing
the same (PyTorch 2's scaled-dot-product attention is already memory-efficient, so slicing is
off by default); fp16 + model CPU offload 2.0 / 2.1 GB (3 steps took 1.1 s instead of 0.3 s).
fp32 is estimated at 6.0 GB allocated (bench/estimate_texture_vram.py, which gives 3.03 and
2.08 GB for the measured two). All within the 8 GB target. Speed: 30 steps for one view took
2.2 s on the H100 in fp16.
bench/bench_texture_memory.py repeats the measurement.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..devices import place_pipeline
from .latent_blend import hold_known_latents, start_blend
from .views import ViewRequest

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-depth"


class DepthViewGenerator:
    """Paints views with a `StableDiffusionDepth2ImgPipeline`.

    Args:
        pipe: A loaded depth-to-image pipeline (any size; tests use tiny random ones).
        mask_dilation: Latents by which the free region grows (see the module's note).
    """

    def __init__(self, pipe: Any, mask_dilation: int = 1):
        self.pipe, self.mask_dilation = pipe, mask_dilation

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_MODEL, device: str = "cpu", dtype: Optional[torch.dtype] = None,
                        allow_downloads: bool = False, cache_dir: Optional[str] = None,
                        attention_slicing: bool = False, cpu_offload: bool = False) -> "DepthViewGenerator":
        """Load the depth pipeline from the Hugging Face cache or a local folder.

        Args:
            source: Hub id or local diffusers folder.
            device: "cuda", "mps" or "cpu".
            dtype: torch.float16 on CUDA saves half the memory; None = float32.
            allow_downloads: Fetch the weights when they are not cached.
            cache_dir: Hugging Face cache folder (None = default).
            attention_slicing: Compute attention in slices (saves memory only without
                PyTorch 2's memory-efficient attention, e.g. on older GPUs or MPS).
            cpu_offload: Keep modules on the CPU and move each to the GPU only while it runs
                (CUDA only; needs accelerate).

        Returns:
            The generator.

        Raises:
            ModelUnavailable: not on this machine and downloads are off (the message says how to fix it).
        """
        from diffusers import StableDiffusionDepth2ImgPipeline

        from ..hub import resolve_model_source

        folder = resolve_model_source(source, allow_downloads, cache_dir)
        # Depth comes from our renderer: skip loading the DPT depth estimator (~0.5 GB).
        pipe = StableDiffusionDepth2ImgPipeline.from_pretrained(
            folder, dtype=dtype or torch.float32, depth_estimator=None, feature_extractor=None)
        return cls(place_pipeline(pipe, device, attention_slicing, cpu_offload))

    @torch.no_grad()
    def __call__(self, request: ViewRequest) -> torch.Tensor:
        """Paint one view (see `ViewGenerator`).

        Args:
            request: The view; its size must be a multiple of 8 (the VAE's factor).

        Returns:
            (H, W, 3) float image in [0, 1].
        """
        pipe = self.pipe
        # 1. Latents of what the texture already shows, and how free each latent is
        #    (held latents are put back after every step: see latent_blend)
        begin = start_blend(pipe, request, self.mask_dilation)
        device = pipe._execution_device

        # 2. Depth-conditioned denoising from noise (strength 1), our disparity as the depth map
        output = pipe(
            prompt=request.prompt, negative_prompt=request.negative_prompt or None, image=begin.image,
            depth_map=request.disparity[None].to(device, torch.float32), strength=1.0,
            num_inference_steps=request.num_inference_steps, guidance_scale=request.guidance_scale,
            generator=request.generator, output_type="pt",
            callback_on_step_end=hold_known_latents(begin.known, begin.noise, begin.free, request.on_step),
            callback_on_step_end_tensor_inputs=["latents"],
        )
        return output.images[0].permute(1, 2, 0).float().clamp(0, 1)  # (H, W, 3)
