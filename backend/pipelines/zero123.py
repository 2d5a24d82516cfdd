"""`zero123-sds`: image to 3D by score distillation from Zero-1-to-3 (as threestudio and Magic123
run it): a radiance field whose renders from random cameras Zero-1-to-3 finds plausible as the
input image's object seen from there, while its render from the input's own camera must match
the image and its cut-out (backend/distill/guidance/zero123.py, reference.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from ..distill.cameras import CameraConfig, view_at
from ..distill.guidance.sds import ScoreDistillation, SDSConfig
from ..distill.guidance.zero123 import DEFAULT_MODEL, IMAGE_SIZE, Zero123Prior
from ..distill.reference import WHITE, ReferenceView, prepare_reference
from ..images import read_image
from ..params import SEED_LIMITS, Limits, draw_seed
from ..results import MeshResult, StepCallback
from . import dreamfusion

PARAMS: dict[str, Any] = {
    "num_inference_steps": 2000,  # optimisation steps
    "guidance_scale": 3.0,  # Zero-1-to-3's classifier-free guidance (threestudio: 3)
    "render_resolution": 64,
    "reference_elevation": 0.0,  # degrees above the horizon the photo was taken from
    "grid_size": 128,
    "texture_size": 1024,
}
LIMITS: Limits = {"num_inference_steps": (1, 100_000), "guidance_scale": (1.0, 50.0), "render_resolution": (16, 512),
                  "reference_elevation": (-60.0, 60.0), "grid_size": (32, 256), "texture_size": (256, 4096),
                  **SEED_LIMITS}
DISTANCE, FOV = 3.1, 40.0  # the reference camera: the middle of the random cameras' ranges


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """Refused when the job is submitted: an image whose object cannot be told from its background."""
    photo = read_image(files["image"], "the image")
    photo.thumbnail((128, 128))
    prepare_reference(np.asarray(photo), 32)


def load(options: Any, source: str = DEFAULT_MODEL) -> Zero123Prior:
    """Zero-1-to-3 in the diffusers layout (hub id or local folder, safetensors only)."""
    return Zero123Prior.from_pretrained(source, options)


def run(prior: Zero123Prior, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback,
        resume: Optional[dict[str, Any]] = None) -> MeshResult:
    """Distil a mesh of the object in `files["image"]`.

    Args:
        prior: From `load`.
        params: Keys of PARAMS plus `seed`.
        files: "image": a PNG or JPEG of one object, with transparency or on a plain background.
        callback, resume: As dreamfusion.run's.

    Returns:
        One part "mesh" with UVs and its baked albedo; the input's camera looks at its front (+Z).
    """
    # 1. The reference: the object cut out and centred, from a camera at the given elevation
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    steps, resolution = int(p["num_inference_steps"]), int(p["render_resolution"])
    photo = read_image(files["image"], "the image")
    photo.thumbnail((2 * IMAGE_SIZE, 2 * IMAGE_SIZE), Image.Resampling.LANCZOS)  # no more than the model reads
    image, _ = prepare_reference(np.asarray(photo), IMAGE_SIZE)
    elevation = float(p["reference_elevation"])
    prior.set_reference(image, view_at(elevation, 0.0, DISTANCE, FOV, IMAGE_SIZE))
    small, mask = prepare_reference(np.asarray(photo), resolution)
    view = view_at(elevation, 0.0, DISTANCE, FOV, resolution)
    reference = ReferenceView(view=replace(view, background=WHITE), image=small, mask=mask)

    # 2. SDS from Zero-1-to-3 at random cameras, the reference view supervised directly
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    guidance = ScoreDistillation(prior, SDSConfig(guidance_scale=float(p["guidance_scale"]), view_dependent=False),
                                 total_steps=steps, to_model_space=prior.to_latents, generator=generator)
    metadata = {"model": "zero123-sds", "seed": seed, "steps": steps, "reference_elevation": elevation}
    cameras = CameraConfig(resolution=resolution, distance=(DISTANCE - 0.3, DISTANCE + 0.3), fov_y=(FOV - 4, FOV + 4))
    return dreamfusion.distil_to_mesh(prior.device, {**p, "prompt": "", "negative_prompt": None}, {}, guidance, seed,
                                      metadata, callback, resume, reference=reference, cameras=cameras)
