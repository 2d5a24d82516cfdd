"""`dreamfusion-sd`: text to 3D by score distillation from Stable Diffusion (DreamFusion's method
with an open prior, as stable-dreamfusion and threestudio run it).

A radiance field is optimised from a blank start so that its renders from random cameras score
well under SD (backend/distill/), then its surface becomes a mesh, unwrapped, with the field's
albedo baked into a texture. Minutes on a
GPU per thousand steps, far longer on a CPU: the job's progress shows the shape forming.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..distill import checkpoint as checkpoints
from ..distill.bake import particles_result
from ..distill.cameras import CameraConfig
from ..distill.field import RadianceField
from ..distill.guidance.schedules import SCHEDULES
from ..distill.guidance.sds import ScoreDistillation, SDSConfig
from ..distill.guidance.stable_diffusion import DEFAULT_MODEL, StableDiffusionPrior
from ..distill.init import Placement, fit_to_upload
from ..distill.trainer import DistillConfig, distill
from ..errors import InputError
from ..params import SEED_LIMITS, Limits, draw_seed
from ..results import MeshResult, StepCallback

PARAMS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": None,
    "num_inference_steps": 5000,  # optimisation steps (DreamFusion: 15,000 at batch 1 on Imagen)
    "guidance_scale": 100.0,  # DreamFusion's CFG: SDS needs it high
    "render_resolution": 64,  # DreamFusion and Magic3D's coarse stage
    "schedule": "random",  # timesteps: "random", "annealed" or "dreamtime"
    "perp_neg": False,  # Perp-Neg against the Janus problem (two more prior calls a step)
    "grid_size": 128,  # marching-cubes resolution of the extracted mesh
    "texture_size": 1024,  # texels per side of the baked albedo
}
LIMITS: Limits = {"num_inference_steps": (1, 100_000), "guidance_scale": (1.0, 200.0), "render_resolution": (16, 512),
                  "grid_size": (32, 256), "texture_size": (256, 4096), **SEED_LIMITS}


def check_request(params: dict[str, Any], files: dict[str, bytes], model: str = "dreamfusion-sd") -> None:
    """What is refused when the job is submitted: no prompt, an unknown schedule (every
    prompt-driven distillation model checks these)."""
    if not str(params.get("prompt") or "").strip():
        raise InputError(f"{model} needs a prompt: describe the object, e.g. 'a ceramic teapot'")
    if params.get("schedule", "random") not in SCHEDULES:
        raise InputError(f"schedule must be one of {', '.join(SCHEDULES)}, got {params.get('schedule')!r}")


def load(options: Any, source: str = DEFAULT_MODEL) -> StableDiffusionPrior:
    """The Stable Diffusion prior (hub id or local folder, safetensors only)."""
    return StableDiffusionPrior.from_pretrained(source, options)


def run(prior: StableDiffusionPrior, params: dict[str, Any], files: dict[str, bytes],
        callback: StepCallback, resume: Optional[dict[str, Any]] = None) -> MeshResult:
    """Distil a mesh for `params["prompt"]`.

    Args:
        prior: From `load`.
        params: Keys of PARAMS plus `seed`.
        files: Optional "mesh": a draft (GLB) to start from instead of a blob, as Magic3D and
            Fantasia3D start from a coarse shape; the result is put back at its place and size.
        callback: ("init", step, total) while fitting a draft, ("distill", step, total, preview)
            each step, then ("mesh", 1 and 2, 2) for the extraction and the bake; raises
            JobCancelled to stop. Each step offers its current state and its checkpoint.
        resume: A checkpoint this model made, with the same params and files: the run goes on
            from the step after it and ends as an uninterrupted run would.

    Returns:
        One part "mesh" with UVs and its baked albedo texture, in glTF axes.
    """
    # 1. Check inputs
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    check_request(p, files)
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    steps = int(p["num_inference_steps"])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the field's initial features

    # 2. The guidance: SDS through the VAE, on the chosen timestep schedule
    schedule = SCHEDULES[p["schedule"]](prior.alphas_cumprod.cpu(), generator=generator)
    sds = SDSConfig(guidance_scale=float(p["guidance_scale"]), perp_neg=bool(p["perp_neg"]))
    guidance = ScoreDistillation(prior, sds, total_steps=steps,
                                 schedule=schedule, to_model_space=prior.to_latents, generator=generator)

    # 3. Optimise the field (from the uploaded draft's shape when there is one), make it a mesh
    metadata = {"model": "dreamfusion-sd", "prompt": p["prompt"], "seed": seed, "steps": steps,
                "schedule": p["schedule"], "perp_neg": bool(p["perp_neg"])}
    return distil_to_mesh(prior.device, p, files, guidance, seed, metadata, callback, resume)


def distil_to_mesh(device, p: dict[str, Any], files: dict[str, bytes], guidance, seed: int,
                   metadata: dict[str, Any], callback: StepCallback, resume: Optional[dict[str, Any]] = None,
                   **config: Any) -> MeshResult:
    """What the field-based models share: a radiance field on `device` (fitted to the `mesh`
    upload first, when there is one) optimised under `guidance` for p["num_inference_steps"]
    steps at p["render_resolution"], offering its current state and checkpoint on the way (or
    going on from `resume`, one of those checkpoints); then its surface, unwrapped, with its
    albedo baked, at the draft's place and size. p["particles"] (default 1) fields are
    optimised together, and come out side by side (bake.particles_result). `config`: further
    DistillConfig fields (DreamFields' transmittance target, its shading)."""
    steps = int(p["num_inference_steps"])
    fields = [RadianceField().to(device) for _ in range(int(p.get("particles", 1)))]  # VSD may have several
    if checkpoints.stage_of(resume, ("distill",)):  # the draft was fitted before: where it was placed is kept
        placement = checkpoints.restore("placement", lambda: Placement.from_checkpoint(resume["placement"]))
    else:
        placement = fit_to_upload(fields[0], files["mesh"], seed, callback).placement if files.get("mesh") else None
        for other in fields[1:] if placement else ():  # every particle starts from the draft
            other.load_state_dict(fields[0].state_dict())
    config = DistillConfig(**{"steps": steps, "cameras": CameraConfig(resolution=int(p["render_resolution"])),
                              "albedo_steps": min(1000, steps // 5), "seed": seed, **config})
    metadata = {**metadata, "initialised": placement is not None}

    def relay(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        # the job may ask where it stands, and keeps checkpoints to go on from
        callback(phase, step, total, preview, within, state=lambda: particles_result(fields, placement, p, metadata),
                 checkpoint=checkpoint and (lambda: checkpoints.pipeline_state("distill", checkpoint(), placement)))

    distill(fields if len(fields) > 1 else fields[0], guidance, p["prompt"].strip(), config, relay,
            p.get("negative_prompt"), resume=resume and resume["distill"])
    return particles_result(fields, placement, p, metadata, callback)
