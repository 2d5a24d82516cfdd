"""`reshape-sd`: reshape the selected region of any mesh from a prompt, by score distillation from
Stable Diffusion, keeping everything outside the selection where it was.

The selected faces (a `face_mask`) and a band around them move, smoothly parametrised, so that
clay renders of the region score well under the prior (backend/reshape/). DDS (default) or PDS
compare each render with the unedited mesh's from the same camera under `source_prompt`, so
what both prompts describe stays as it is and only the asked-for change is made. The result is
the uploaded mesh with the same vertices, triangles, UVs and vertex colours in the same order;
only the moved vertices' positions (and normals) differ, and the metadata names them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
import torch

from formats.face_parts import to_runs

from ..distill import checkpoint as checkpoints
from ..distill.guidance.delta import DDSConfig, DeltaDenoisingScore, PDSConfig, PosteriorDistillationSampling
from ..distill.guidance.sds import ScoreDistillation, SDSConfig
from ..distill.guidance.stable_diffusion import StableDiffusionPrior
from ..errors import InputError
from ..geometry.glb import read_glb_meshes
from ..params import SEED_LIMITS, Limits, draw_seed
from ..reshape.optimise import ReshapeConfig, reshape
from ..reshape.region import SmoothDisplacement, region_graph
from ..reshape.shading import vertex_normals
from ..results import MeshResult, StepCallback

IDENTITY = ("dds", "pds", "sds")  # how the unedited shape is kept: DDS, PDS, or not at all (plain SDS)
DISPLACEMENTS = ("normal", "free")  # vertices move along their normals (reliefs), or in 3D (bends, twists)
DEFAULT_SOURCE = "a 3D model"  # what the unedited renders show when the artist does not say

PARAMS: dict[str, Any] = {
    "prompt": "",  # what the region should become
    "source_prompt": "",  # what the mesh shows now ("" = DEFAULT_SOURCE)
    "negative_prompt": None,
    "identity": "dds",
    "num_inference_steps": 500,  # optimisation steps, one prior comparison each
    "guidance_scale": 7.5,  # DDS's usual scale; plain SDS wants far more (DreamFusion: 100)
    "border_width": 0.02,  # blended band around the selection, fraction of the bounding-box diagonal
    "render_resolution": 128,  # clay renders of the region (upsampled to the prior's size)
    "smoothness": 100.0,  # lambda of the (I + lambda L)^-1 parametrisation
    "displacement": "normal",
}
LIMITS: Limits = {"num_inference_steps": (1, 20_000), "guidance_scale": (1.0, 200.0), "border_width": (0.0, 0.25),
                  "render_resolution": (16, 512), "smoothness": (0.0, 10_000.0), **SEED_LIMITS}


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """What is refused when the job is submitted."""
    if not str(params.get("prompt") or "").strip():
        raise InputError("reshape-sd needs a prompt: what the selected region should become, e.g. 'a lion's head'")
    if not files.get("face_mask"):
        raise InputError("reshape-sd needs face_mask: one byte per triangle, nonzero on the faces to reshape")
    for name, allowed in (("identity", IDENTITY), ("displacement", DISPLACEMENTS)):
        if params.get(name, PARAMS[name]) not in allowed:
            raise InputError(f"{name} must be one of {', '.join(allowed)}, got {params.get(name)!r}")



def run(prior: StableDiffusionPrior, params: dict[str, Any], files: dict[str, bytes],
        callback: StepCallback, resume: Optional[dict[str, Any]] = None) -> MeshResult:
    """Reshape the masked faces of the uploaded mesh.

    Args:
        prior: From `load`.
        params: Keys of PARAMS plus `seed`.
        files: "mesh" (GLB) and "face_mask" (one byte per triangle in the GLB's order).
        callback: ("reshape", step, total, preview) each step; raises JobCancelled to stop. Each
            step offers its current state and its checkpoint.
        resume: A checkpoint this model made, with the same params and files: the run goes on
            from the step after it and ends as an uninterrupted run would.

    Returns:
        The mesh's parts as uploaded, the region moved; metadata["reshape"]["moved"] lists the
        moved vertices as [start, stop) runs over all parts' vertices in order.
    """
    # 1. Check inputs: one mesh of all parts, the selection
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    check_request(p, files)
    parts, _ = read_glb_meshes(files["mesh"])
    counts = [len(part.vertices) for part in parts]
    offsets = np.cumsum([0] + counts)
    vertices = np.concatenate([part.vertices for part in parts]).astype(np.float32)
    faces = np.concatenate([part.faces + o for part, o in zip(parts, offsets)]).astype(np.int64)
    selected = np.frombuffer(files["face_mask"], dtype=np.uint8) != 0
    if len(selected) != len(faces):
        raise InputError(f"face_mask has {len(selected)} bytes but the mesh has {len(faces)} triangles")
    if not selected.any():
        raise InputError("no face is selected: select the faces to reshape")
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    steps = int(p["num_inference_steps"])
    generator = torch.Generator().manual_seed(seed)

    # 2. Who may move, and the guidance that keeps the rest of the prompt's content
    diagonal = float(np.linalg.norm(vertices.max(0) - vertices.min(0)))
    graph = region_graph(vertices, faces, selected, border=float(p["border_width"]) * diagonal)
    if not len(graph.free):
        raise InputError("the selected faces have no vertex of their own: every corner is shared with unselected "
                         "faces, which stay put. Select more faces, or give the edit a border (border_width)")
    guidance = _guidance(prior, p["identity"], float(p["guidance_scale"]), steps, generator)
    source_prompt = (p["source_prompt"] or "").strip() or DEFAULT_SOURCE
    config = ReshapeConfig(steps=steps, resolution=int(p["render_resolution"]), smoothness=float(p["smoothness"]),
                           along_normals=p["displacement"] == "normal", seed=seed)

    # 3. Optimise; the job may ask where it stands between steps (Import current state, a cancel)
    deformation = SmoothDisplacement(graph, config.smoothness, config.along_normals, prior.device)
    metadata = {"model": "reshape-sd", "prompt": p["prompt"], "source_prompt": source_prompt, "seed": seed,
                "steps": steps, "identity": p["identity"], "displacement": p["displacement"]}

    def now() -> MeshResult:
        with torch.no_grad():
            return _moved_mesh(parts, graph, deformation.positions().cpu().numpy(), metadata, p["border_width"])

    def relay(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        callback(phase, step, total, preview, within, state=now,
                 checkpoint=checkpoint and (lambda: checkpoints.pipeline_state("reshape", checkpoint())))

    checkpoints.stage_of(resume, ("reshape",))
    moved = reshape(graph, guidance, p["prompt"].strip(), config, relay, p["negative_prompt"],
                    source_prompt if p["identity"] != "sds" else None, device=prior.device, deformation=deformation,
                    resume=resume and resume["reshape"])
    return _moved_mesh(parts, graph, moved, metadata, p["border_width"])


def _moved_mesh(parts: list, graph, welded: np.ndarray, metadata: dict[str, Any], border_width: float) -> MeshResult:
    """The uploaded parts with the welded positions put back on their vertices, and the
    moved ones' normals made anew; metadata["reshape"]["moved"] names the moved vertices."""
    counts = [len(part.vertices) for part in parts]
    offsets = np.cumsum([0] + counts)
    vertices = np.concatenate([part.vertices for part in parts]).astype(np.float32)
    new_vertices = welded[graph.weld]
    changed = np.nonzero((new_vertices != vertices).any(1))[0]
    normals = vertex_normals(torch.from_numpy(welded), torch.from_numpy(graph.faces)).numpy()[graph.weld]
    new_parts = []
    for part, start, count in zip(parts, offsets, counts):
        own = new_vertices[start:start + count]
        part_normals = None if part.normals is None else np.where(
            (own != part.vertices).any(1, keepdims=True), normals[start:start + count], part.normals).astype(np.float32)
        new_parts.append(dataclasses.replace(part, vertices=own, normals=part_normals))
    moved = {"moved": to_runs(changed), "vertices": len(vertices), "border_width": border_width}
    return MeshResult(parts=new_parts, metadata={**metadata, "reshape": moved})


def _guidance(prior: StableDiffusionPrior, identity: str, scale: float, steps: int, generator: torch.Generator):
    """DDS, PDS or SDS on the prior's latents. DDS weighs by DreamFusion's w(t) = 1 - a_t, not
    1: with Adam, unweighted draws at small t (scale sqrt(a / (1 - a)), up to ~50) dominate its
    step sizes and the region settles far more slowly."""
    common = dict(total_steps=steps, to_model_space=prior.to_latents, generator=generator)
    if identity == "dds":
        return DeltaDenoisingScore(prior, DDSConfig(guidance_scale=scale, weighting="sds"), **common)
    if identity == "pds":
        return PosteriorDistillationSampling(prior, PDSConfig(guidance_scale=scale), **common)
    return ScoreDistillation(prior, SDSConfig(guidance_scale=scale), **common)
