"""Text to candidate images with Stable Diffusion, made to be lifted to 3D: one whole object,
centred, on a plain background (what a reconstruction model learned from), several seeds at once.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ModelUnavailable
from ..results import StepCallback

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1-base"
# Steer the image towards what a reconstruction model can lift: the object alone, whole, lit evenly.
PROMPT_TEMPLATE = "{prompt}, a single whole object, centered, full view, on a plain white background, product photo"
NEGATIVE_PROMPT = ("several objects, cluttered background, scenery, cropped, cut off, partial view, text, watermark, "
                   "frame, dark shadows, blurry")


def load_text_to_image(options: Any, source: str = DEFAULT_MODEL):
    """An SD 1.x / 2.x text-to-image pipeline (hub id or local folder, safetensors only) with a
    DPM-Solver++ scheduler, so 25 steps make a clean image."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    from ..hub import resolve_model_source, weights_variant

    folder = resolve_model_source(source, options.allow_downloads, options.cache_dir)
    device = torch.device(options.device)
    dtype = options.dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False, dtype=dtype,
            use_safetensors=True, variant=weights_variant(folder))
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"Model {source} could not be loaded from {folder}: {error}. Fix: point it at a "
                               "complete Stable Diffusion 1.x or 2.x folder (safetensors), or download it again.") from error
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)  # progress goes through the job's callback
    return pipe.to(device)


@torch.no_grad()
def generate_candidates(pipe, prompt: str, negative_prompt: str | None, seeds: Sequence[int], steps: int,
                        guidance_scale: float, size: int, callback: StepCallback) -> list[np.ndarray]:
    """One image per seed, in one batch.

    Args:
        pipe: From `load_text_to_image`.
        prompt: The artist's words; the template around them asks for an object alone.
        negative_prompt: Added to the template's own.
        seeds: One per candidate; a seed gives the same image again, alone or in another batch (to
            a level or two of rounding).
        callback: ("images", step, steps) after each denoising step; may raise JobCancelled.

    Returns:
        (size, size, 3) uint8 images, in the order of `seeds`.
    """
    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]

    def on_step(_pipe, index: int, _timestep, _tensors: dict) -> dict:
        callback("images", index + 1, steps)
        return {}

    negative = NEGATIVE_PROMPT + (f", {negative_prompt}" if negative_prompt else "")
    images = pipe(prompt=PROMPT_TEMPLATE.format(prompt=prompt), negative_prompt=negative,
                  num_images_per_prompt=len(seeds), generator=generators, num_inference_steps=steps,
                  guidance_scale=guidance_scale, height=size, width=size, output_type="np",
                  callback_on_step_end=on_step).images
    return [np.round(np.clip(image, 0, 1) * 255).astype(np.uint8) for image in images]


def gallery(images: Sequence[np.ndarray], tile: int = 192) -> np.ndarray:
    """The candidates side by side (two rows from five on), each numbered as `pick` names it."""
    from PIL import Image, ImageDraw

    columns = len(images) if len(images) <= 4 else (len(images) + 1) // 2
    rows = (len(images) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * tile), (40, 40, 40))
    for index, image in enumerate(images):
        thumb = Image.fromarray(image).resize((tile, tile), Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(thumb)
        draw.rectangle((0, 0, 18, 16), fill=(0, 0, 0))
        draw.text((5, 2), str(index), fill=(255, 255, 255))
        sheet.paste(thumb, ((index % columns) * tile, (index // columns) * tile))
    return np.asarray(sheet)
