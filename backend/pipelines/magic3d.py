"""`magic3d-sd`: text to 3D coarse to fine, as Magic3D (Lin et al. 2023) runs it with an open
prior: a radiance field distilled at 64² (as `dreamfusion-sd`), then its surface as a textured
mesh refined at 512² with SDS on Stable Diffusion's latents (backend/distill/mesh_stage.py).

With a draft (a `mesh` upload: a builtin, Shap-E or distilled result, or the artist's mesh) the
coarse stage starts from it; with `num_inference_steps` 0 there is no coarse stage at all and
the draft itself is refined: its shape moves smoothly and its colours (fitted into the texture
field) become painted detail. That is the sidebar's Refine.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ..distill import checkpoint as checkpoints
from ..distill.bake import surface_result, textured_result
from ..distill.cameras import CameraConfig
from ..distill.field import RadianceField
from ..distill.guidance.schedules import SCHEDULES
from ..distill.guidance.sds import ScoreDistillation, SDSConfig
from ..distill.guidance.stable_diffusion import StableDiffusionPrior
from ..distill.init import Placement, fit_to_upload
from ..distill.mesh import extract_mesh
from ..distill.mesh_stage import MeshStageConfig, TexturedMesh, refine_mesh
from ..distill.trainer import DistillConfig, distill
from ..errors import InputError
from ..params import SEED_LIMITS, Limits, draw_seed
from ..results import MeshResult, StepCallback
from . import dreamfusion

PARAMS: dict[str, Any] = {
    **dreamfusion.PARAMS,
    "num_inference_steps": 5000,  # coarse-stage steps (0: refine the uploaded draft directly)
    "fine_steps": 2000,  # mesh-stage steps
    "fine_resolution": 512,  # mesh-stage render size (Magic3D: 512)
}
LIMITS: Limits = {**dreamfusion.LIMITS, "num_inference_steps": (0, 100_000), "fine_steps": (1, 100_000),
                  "fine_resolution": (64, 1024), **SEED_LIMITS}
FINE_T_RANGE = (0.02, 0.5)  # Magic3D's fine stage: detail, not the overall shape


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """What is refused when the job is submitted."""
    dreamfusion.check_request(params, files, "magic3d-sd")
    if params.get("num_inference_steps", PARAMS["num_inference_steps"]) == 0 and not files.get("mesh"):
        raise InputError("num_inference_steps 0 refines a draft: upload it as `mesh` (or give coarse steps)")
    if int(params.get("fine_resolution", PARAMS["fine_resolution"])) % 8:
        raise InputError("fine_resolution must be a multiple of 8 (Stable Diffusion's latent grid)")



def run(prior: StableDiffusionPrior, params: dict[str, Any], files: dict[str, bytes],
        callback: StepCallback, resume: Optional[dict[str, Any]] = None) -> MeshResult:
    """Coarse field, then fine mesh, for `params["prompt"]`.

    Args:
        prior: From `load`.
        params: Keys of PARAMS plus `seed`.
        files: Optional "mesh": a draft to start from (GLB).
        callback: ("init", ...) while fitting a draft, ("distill", ...) in the coarse stage,
            ("refine", step, total, preview) in the mesh stage, then ("mesh", 1 and 2, 2) for
            the bake; raises JobCancelled to stop. Both stages offer their current state and
            their checkpoint.
        resume: A checkpoint this model made, with the same params and files: the run goes on
            in the stage and from the step it stopped at, and ends as an uninterrupted run would.

    Returns:
        One part "mesh" with UVs and its baked albedo, at the draft's place and size when given.
    """
    # 1. Check inputs
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    check_request(p, files)
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    coarse_steps, fine_steps, device = int(p["num_inference_steps"]), int(p["fine_steps"]), prior.device
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    prompt = p["prompt"].strip()
    metadata = {"model": "magic3d-sd", "prompt": p["prompt"], "seed": seed, "steps": coarse_steps,
                "fine_steps": fine_steps, "schedule": p["schedule"], "initialised": bool(files.get("mesh"))}

    # 2. Coarse: a field, from the draft when there is one
    field = RadianceField().to(device)
    stage = checkpoints.stage_of(resume, ("distill", "refine"))
    if stage:  # the draft was fitted before: where it was placed is kept
        draft, placement = None, checkpoints.restore("placement", lambda: Placement.from_checkpoint(resume["placement"]))
    else:
        draft = fit_to_upload(field, files["mesh"], seed, callback) if files.get("mesh") else None
        placement = draft.placement if draft else None

    if stage == "refine":  # the coarse stage had ended: its mesh is in the checkpoint
        vertices, faces = checkpoints.restore("mesh", lambda: _kept_mesh(resume["mesh"]))
    elif coarse_steps:
        schedule = SCHEDULES[p["schedule"]](prior.alphas_cumprod.cpu(), generator=generator)
        coarse = ScoreDistillation(prior, SDSConfig(guidance_scale=float(p["guidance_scale"]), perp_neg=bool(p["perp_neg"])),
                                   total_steps=coarse_steps, schedule=schedule, to_model_space=prior.to_latents,
                                   generator=generator)
        config = DistillConfig(steps=coarse_steps, cameras=CameraConfig(resolution=int(p["render_resolution"])),
                               albedo_steps=min(1000, coarse_steps // 5), seed=seed)

        def coarse_relay(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
            callback(phase, step, total, preview, within, state=lambda: surface_result(field, placement, p, metadata),
                     checkpoint=checkpoint and (lambda: checkpoints.pipeline_state("distill", checkpoint(), placement)))

        distill(field, coarse, prompt, config, coarse_relay, p["negative_prompt"],
                resume=resume["distill"] if stage == "distill" else None)
        vertices, faces, _ = extract_mesh(field, resolution=int(p["grid_size"]))
    else:  # Refine: the draft's own mesh
        vertices, faces = draft.vertices, draft.faces

    # 3. Fine: the textured mesh at high resolution, SDS on the latents with t in [0.02, 0.5]
    mesh = TexturedMesh(vertices, faces, field, device=device)
    fine = ScoreDistillation(prior, SDSConfig(guidance_scale=float(p["guidance_scale"]), t_range=FINE_T_RANGE,
                                              perp_neg=bool(p["perp_neg"])),
                             total_steps=fine_steps, to_model_space=prior.to_latents, generator=generator)

    def now() -> MeshResult:
        with torch.no_grad():
            moved = mesh.positions().cpu().numpy()
        return textured_result(field, moved, mesh.shape.graph.faces, placement, int(p["texture_size"]), metadata)

    start = {"vertices": torch.from_numpy(np.ascontiguousarray(vertices)),
             "faces": torch.from_numpy(np.ascontiguousarray(faces))}

    def fine_relay(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        callback(phase, step, total, preview, within, state=now,
                 checkpoint=checkpoint and (lambda: checkpoints.pipeline_state("refine", checkpoint(), placement,
                                                                                 mesh=start)))

    refine_mesh(mesh, fine, prompt, MeshStageConfig(steps=fine_steps, cameras=CameraConfig(
        resolution=int(p["fine_resolution"])), seed=seed), fine_relay, p["negative_prompt"],
        resume=resume["refine"] if stage == "refine" else None)

    # 4. Put it back, unwrap it and bake the texture field
    with torch.no_grad():
        moved = mesh.positions().cpu().numpy()
    return textured_result(field, moved, mesh.shape.graph.faces, placement, int(p["texture_size"]), metadata, callback)


def _kept_mesh(kept: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The fine stage's starting mesh as a checkpoint kept it, checked before it is used."""
    vertices, faces = kept["vertices"].numpy(), kept["faces"].numpy()
    if vertices.ndim != 2 or vertices.shape[1:] != (3,) or faces.ndim != 2 or faces.shape[1:] != (3,) \
            or not np.isfinite(vertices).all() or (faces.size and not 0 <= faces.min() <= faces.max() < len(vertices)):
        raise ValueError("a mesh whose faces do not index its vertices")
    return vertices, faces
