"""`dreamfields-clip`: text to 3D with CLIP as the guide (DreamFields, Jain et al. 2022): a
radiance field whose renders CLIP finds closest to the prompt, kept sparse by a transmittance
target (backend/distill/guidance/clip.py, trainer.TransmittanceTarget). CLIP is small (600 MB)
and fast, so this is the lightest open-domain model; its shapes are rougher than those a
diffusion prior gives. Renders are plain colour (no shading), as DreamFields renders them.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..distill.guidance.clip import DEFAULT_MODEL, ClipGuidance
from ..distill.trainer import TransmittanceTarget
from ..errors import InputError
from ..params import SEED_LIMITS, Limits, draw_seed
from ..results import MeshResult, StepCallback
from . import dreamfusion

PARAMS: dict[str, Any] = {
    "prompt": "",
    "num_inference_steps": 5000,  # optimisation steps (DreamFields: 10,000)
    "render_resolution": 128,  # resized to CLIP's 224 for scoring
    "transmittance": 0.88,  # target mean transmittance of the renders (DreamFields: 88%)
    "grid_size": 128,  # marching-cubes resolution of the extracted mesh
    "texture_size": 1024,  # texels per side of the baked albedo
}
LIMITS: Limits = {"num_inference_steps": (1, 100_000), "render_resolution": (16, 512), "transmittance": (0.0, 0.99),
                  "grid_size": (32, 256), "texture_size": (256, 4096), **SEED_LIMITS}


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    if not str(params.get("prompt") or "").strip():
        raise InputError("dreamfields-clip needs a prompt: describe the object, e.g. 'a bouquet of flowers'")


def load(options: Any, source: str = DEFAULT_MODEL) -> ClipGuidance:
    """CLIP (hub id or local folder, safetensors only)."""
    return ClipGuidance.from_pretrained(source, options)


def run(clip: ClipGuidance, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback,
        resume: Optional[dict[str, Any]] = None) -> MeshResult:
    """Distil a mesh for `params["prompt"]` under CLIP; arguments and result as dreamfusion.run."""
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    check_request(p, files)
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    steps = int(p["num_inference_steps"])
    torch.manual_seed(seed)
    clip.generator.manual_seed(seed)
    target = TransmittanceTarget(end=float(p["transmittance"]), start=min(0.4, float(p["transmittance"])))
    metadata = {"model": "dreamfields-clip", "prompt": p["prompt"], "seed": seed, "steps": steps}
    return dreamfusion.distil_to_mesh(clip.device, p, files, clip, seed, metadata, callback, resume,
                                      transmittance=target, albedo_steps=steps)  # plain colour throughout
