"""`prolificdreamer-sd`: text to 3D by variational score distillation (ProlificDreamer, Wang et al.
2023) from Stable Diffusion: the field's renders are pulled towards the prior by the difference
of the prior's score and their own, learnt on the fly by a camera-conditioned LoRA on the
prior's UNet (backend/distill/guidance/vsd.py, camera_lora.py). Works at the usual guidance 7.5
where SDS needs ~100: less saturated, more detailed, and slower (the LoRA trains every step).
With `particles` > 1 several fields are optimised together against the one LoRA, as the paper's
particles are, and delivered side by side: variations of the prompt in one job.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..distill.guidance.camera_lora import CameraLoRA
from ..distill.guidance.schedules import SCHEDULES
from ..distill.guidance.stable_diffusion import StableDiffusionPrior
from ..distill.guidance.vsd import VariationalScoreDistillation, VSDConfig
from ..params import Limits, draw_seed
from ..results import MeshResult, StepCallback
from . import dreamfusion

PARAMS: dict[str, Any] = {
    **{k: v for k, v in dreamfusion.PARAMS.items() if k != "perp_neg"},
    "guidance_scale": 7.5,  # VSD's: the usual sampling scale (ProlificDreamer, Sec. 5)
    "lora_rank": 4,  # of the particles' denoiser (ProlificDreamer: 4)
    "lora_lr": 1e-4,  # its Adam step (the authors': 1e-4)
    "particles": 1,  # fields optimised together, one LoRA learning from all: variations side by side
}
LIMITS: Limits = {**dreamfusion.LIMITS, "lora_rank": (1, 64), "lora_lr": (1e-6, 1e-2), "particles": (1, 4)}


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    dreamfusion.check_request(params, files, "prolificdreamer-sd")


def run(prior: StableDiffusionPrior, params: dict[str, Any], files: dict[str, bytes],
        callback: StepCallback, resume: Optional[dict[str, Any]] = None) -> MeshResult:
    """Distil a mesh for `params["prompt"]` with VSD; arguments and result as dreamfusion.run."""
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    check_request(p, files)
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    steps = int(p["num_inference_steps"])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the field's and the LoRA's initial weights
    particles = CameraLoRA(prior, p["prompt"].strip(), rank=int(p["lora_rank"]))
    schedule = SCHEDULES[p["schedule"]](prior.alphas_cumprod.cpu(), generator=generator)
    config = VSDConfig(guidance_scale=float(p["guidance_scale"]), particle_lr=float(p["lora_lr"]),
                       total_steps=steps, seed=seed)
    guidance = VariationalScoreDistillation(prior, particles, config, schedule=schedule, to_model_space=prior.to_latents)
    metadata = {"model": "prolificdreamer-sd", "prompt": p["prompt"], "seed": seed, "steps": steps,
                "schedule": p["schedule"], "particles": int(p["particles"])}
    return dreamfusion.distil_to_mesh(prior.device, p, files, guidance, seed, metadata, callback, resume)
