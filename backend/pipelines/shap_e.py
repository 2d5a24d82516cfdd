"""Shap-E text-to-3D and image-to-3D (Jun & Nichol 2023, arXiv:2305.02463) through diffusers.

The components are diffusers' `ShapEPipeline` / `ShapEImg2ImgPipeline` (`openai/shap-e`,
`openai/shap-e-img2img`); the denoising loop is ours. diffusers' Shap-E `__call__` has no
`callback_on_step_end`, and a job needs progress and a cancel every step, so `_denoise`
runs the same prior + Heun loop with the pipeline's own prompt/image encoders, then the
renderer decodes the latent to a mesh (its SDF head through marching cubes, colours from its
texture head at each vertex).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from ..errors import GenerationFailed, InputError, ModelUnavailable
from ..hub import is_available_offline, resolve_model_source  # the registry reads is_available_offline here
from ..images import read_image
from ..params import SEED_LIMITS, Limits, check_limits, draw_seed
from ..results import MeshPart, MeshResult, StepCallback

TEXT_MODEL_ID = "openai/shap-e"
IMAGE_MODEL_ID = "openai/shap-e-img2img"

# Accepted params and their defaults (those of Shap-E's sample notebooks: 64 Karras steps,
# guidance 15 for text and 3 for images). `grid_size` is the marching-cubes resolution of the decoded mesh: a mesh has no
# frame size; 128 is Shap-E's own, 256 gives eight times the vertices and memory.
TEXT_PARAMS: dict[str, Any] = {
    "prompt": "",
    "seed": None,
    "num_inference_steps": 64,
    "guidance_scale": 15.0,
    "grid_size": 128,
}
IMAGE_PARAMS: dict[str, Any] = {
    "seed": None,
    "num_inference_steps": 64,
    "guidance_scale": 3.0,
    "grid_size": 128,
}
LIMITS: Limits = {"num_inference_steps": (1, 1000), "grid_size": (16, 256), "guidance_scale": (0.0, 100.0), **SEED_LIMITS}


def load_text_pipeline(options: Any, source: str = TEXT_MODEL_ID):
    """Load Shap-E text-to-3D from a Hugging Face repo id or a local folder.

    Args:
        options: Has `.device` ("cuda", "mps", "cpu"), `.dtype` (a torch dtype, or None for fp16 on
            CUDA and fp32 elsewhere), `.allow_downloads`, `.cache_dir`.
        source: Repo id or folder of a `ShapEPipeline`.

    Returns:
        A `ShapEPipeline` on `options.device`.
    """
    from diffusers import ShapEPipeline  # here, not at the top: importing diffusers takes seconds

    return _load(ShapEPipeline, options, source)


def load_image_pipeline(options: Any, source: str = IMAGE_MODEL_ID):
    """Load Shap-E image-to-3D from a Hugging Face repo id or a local folder.

    Args:
        options: As for `load_text_pipeline`.
        source: Repo id or folder of a `ShapEImg2ImgPipeline`.

    Returns:
        A `ShapEImg2ImgPipeline` on `options.device`.
    """
    from diffusers import ShapEImg2ImgPipeline

    return _load(ShapEImg2ImgPipeline, options, source)


def _load(pipeline_class, options: Any, source: str):
    folder = resolve_model_source(source, options.allow_downloads, options.cache_dir)
    device = torch.device(options.device)
    try:
        # A concrete pipeline class runs no code from the repo; safetensors only.
        pipe = pipeline_class.from_pretrained(folder, dtype=_dtype(options, device), use_safetensors=True)
    except (OSError, ValueError) as error:
        raise ModelUnavailable(
            f"Model {source} could not be loaded from {folder}: {error}. Fix: point the model at a "
            f"complete {pipeline_class.__name__} folder (safetensors weights), or download it again."
        ) from error
    pipe.set_progress_bar_config(disable=True)  # progress goes through the job's callback
    return pipe.to(device)


def _dtype(options: Any, device: torch.device) -> torch.dtype:
    # None: fp16 halves memory and time on CUDA; MPS and CPU stay in fp32 (fp16 there is slow or unstable).
    return getattr(options, "dtype", None) or (torch.float16 if device.type == "cuda" else torch.float32)


@torch.no_grad()
def run_text(pipe, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """Generate a coloured mesh from a prompt.

    Args:
        pipe: From `load_text_pipeline`.
        params: Keys of `TEXT_PARAMS`; missing or None ones take their defaults.
        files: Unused (no uploads for text-to-3D).
        callback: Gets ("denoise", step, num_inference_steps) after each step, then ("decode", 1, 1);
            raising `JobCancelled` stops the run.

    Returns:
        One part named "mesh" with RGBA vertex colours, in glTF axes.

    Raises:
        InputError: a param is unknown or out of range, or the prompt is empty.
        GenerationFailed: the decoded surface is empty or degenerate.
    """
    # 1. Check inputs
    p = _check_params(params, TEXT_PARAMS)
    prompt = p["prompt"].strip() if isinstance(p["prompt"], str) else None
    if not prompt:
        raise InputError("Shap-E text-to-3D needs a prompt: describe the object, e.g. 'a red chair'.")

    # 2. Encode the prompt: Shap-E conditions on the unit-normalised CLIP text embedding, with a
    #    zero embedding as the unconditional branch of classifier-free guidance.
    do_guidance = p["guidance_scale"] > 1.0
    embeds = pipe._encode_prompt(prompt, pipe.device, 1, do_guidance)

    # 3-5. Timesteps, latents, denoising loop
    latents = _denoise(pipe, embeds, p, do_guidance, callback)

    # 6. Decode to mesh
    return _decode(pipe, latents, p, callback)


@torch.no_grad()
def run_image(pipe, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """Generate a coloured mesh from one image of an object.

    Args:
        pipe: From `load_image_pipeline`.
        params: Keys of `IMAGE_PARAMS`; missing or None ones take their defaults.
        files: `files["image"]`: PNG or JPEG bytes. Transparent pixels become white, the
            background of Shap-E's example images.
        callback: As for `run_text`.

    Returns:
        One part named "mesh" with RGBA vertex colours, in glTF axes.

    Raises:
        InputError: no image, an unreadable image, or a param unknown or out of range.
        GenerationFailed: the decoded surface is empty or degenerate.
    """
    # 1. Check inputs
    p = _check_params(params, IMAGE_PARAMS)
    image = _read_image(files.get("image"))

    # 2. Encode the image: CLIP patch tokens (class token dropped), zeros as unconditional.
    do_guidance = p["guidance_scale"] > 1.0
    embeds = pipe._encode_image(image, pipe.device, 1, do_guidance)

    # 3-5. Timesteps, latents, denoising loop
    latents = _denoise(pipe, embeds, p, do_guidance, callback)

    # 6. Decode to mesh
    return _decode(pipe, latents, p, callback)


def _check_params(params: dict[str, Any], accepted: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(
            f"Shap-E does not take {', '.join(unknown)}; it accepts {', '.join(accepted)}."
        )
    p = {**accepted, **{k: v for k, v in params.items() if v is not None}}
    check_limits(p, LIMITS)  # guidance 1 or less turns guidance off
    if p["seed"] is None:
        p["seed"] = draw_seed()
    p["guidance_scale"] = float(p["guidance_scale"])
    return p


def _read_image(data: Optional[bytes]) -> Image.Image:
    if not data:
        raise InputError("Shap-E image-to-3D needs an image: upload a PNG or JPEG as the 'image' file.")
    image = read_image(data)
    if image.mode == "RGBA":  # read_image's mode for any transparency
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return image.convert("RGB")


def _denoise(pipe, embeds: torch.Tensor, p: dict[str, Any], do_guidance: bool, callback: StepCallback) -> torch.Tensor:
    """Sample Shap-E latents with the prior; report each step and stop when the callback raises.

    Returns:
        (1, num_embeddings, embedding_dim) latents: the weights of the implicit function.
    """
    scheduler, prior = pipe.scheduler, pipe.prior
    num_embeddings, embedding_dim = prior.config.num_embeddings, prior.config.embedding_dim

    # 3. Prepare timesteps. Heun takes two prior evaluations per step (2N - 1 in all: the last
    #    step is a plain Euler one), so a step is done when the scheduler is back in first order.
    scheduler.set_timesteps(p["num_inference_steps"], device=embeds.device)
    timesteps = scheduler.timesteps

    # 4. Prepare latents. A CPU generator gives the same latents for a seed on every device.
    generator = torch.Generator("cpu").manual_seed(p["seed"])
    latents = pipe.prepare_latents(
        (1, num_embeddings * embedding_dim), embeds.dtype, embeds.device, generator, None, scheduler
    )
    latents = latents.reshape(1, num_embeddings, embedding_dim)

    # 5. Denoising loop
    step = 0
    for i, t in enumerate(timesteps):
        model_input = torch.cat([latents] * 2) if do_guidance else latents
        model_input = scheduler.scale_model_input(model_input, t)
        prediction = prior(model_input, timestep=t, proj_embedding=embeds).predicted_image_embedding
        prediction = prediction[..., :embedding_dim]  # the rest is the predicted variance, unused
        if do_guidance:
            unconditional, conditional = prediction.chunk(2)
            prediction = unconditional + p["guidance_scale"] * (conditional - unconditional)
        latents = scheduler.step(prediction, timestep=t, sample=latents).prev_sample
        if getattr(scheduler, "state_in_first_order", True) or i == len(timesteps) - 1:
            step += 1
            callback("denoise", step, p["num_inference_steps"])  # may raise JobCancelled
    return latents


def _decode(pipe, latents: torch.Tensor, p: dict[str, Any], callback: StepCallback) -> MeshResult:
    renderer = pipe.shap_e_renderer

    # diffusers' decoder crashes on its texture query when marching cubes finds no surface;
    # checking the raw mesh right after marching cubes turns that into a readable failure.
    def require_triangles(module, inputs, raw_mesh):
        if raw_mesh.faces.shape[0] == 0:
            raise GenerationFailed(_failure("the decoded shape has no surface (no triangles)", p))

    hook = renderer.mesh_decoder.register_forward_hook(require_triangles)
    try:
        mesh = renderer.decode_to_mesh(latents, latents.device, grid_size=p["grid_size"])
    finally:
        hook.remove()
    callback("decode", 1, 1)
    part = mesh_part(mesh, p)
    metadata = {
        "model": "shap-e",
        "seed": p["seed"],
        "num_inference_steps": p["num_inference_steps"],
        "guidance_scale": p["guidance_scale"],
        "grid_size": p["grid_size"],
    }
    return MeshResult(parts=[part], metadata=metadata)


def mesh_part(mesh, p: Optional[dict[str, Any]] = None) -> MeshPart:
    """Turn diffusers' `MeshDecoderOutput` into a glTF-ready `MeshPart`.

    Args:
        mesh: Has `verts` (N, 3), `faces` (M, 3) and `vertex_channels` {"R", "G", "B": (N,)}
            with linear colours in [0, 1] (the renderer converts its sRGB output to linear,
            which is what glTF's COLOR_0 holds).
        p: The run's params, for the failure message.

    Returns:
        A part named "mesh": float32 vertices in glTF axes, int64 faces wound counter-clockwise
        seen from outside, uint8 RGBA vertex colours.

    Raises:
        GenerationFailed: no triangles, non-finite vertices, or zero surface area.
    """
    vertices = mesh.verts.detach().float().cpu().numpy()  # (N, 3)
    faces = mesh.faces.detach().cpu().numpy().astype(np.int64)  # (M, 3)
    if len(faces) == 0 or len(vertices) == 0:
        raise GenerationFailed(_failure("the decoded shape has no surface (no triangles)", p))
    if not np.isfinite(vertices).all():
        raise GenerationFailed(_failure("the decoded surface has invalid (NaN or infinite) vertices", p))

    # Shap-E works in a Z-up box [-1, 1]^3 (its cameras orbit the z axis); glTF is Y-up, so
    # (x, y, z) -> (x, z, -y): a rotation, which keeps Shap-E's front (-y) facing glTF's front (+z).
    vertices = np.stack([vertices[:, 0], vertices[:, 2], -vertices[:, 1]], axis=1).astype(np.float32)

    corners = vertices[faces]  # (M, 3, 3)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    if 0.5 * np.linalg.norm(cross, axis=1).sum() <= 1e-12:
        raise GenerationFailed(_failure("the decoded surface has zero area", p))
    # The winding comes from the marching-cubes table in the checkpoint. The surface is closed
    # (the decoder pads the field with "outside"), so its signed volume says whether the
    # triangles face out; glTF wants counter-clockwise seen from outside.
    if np.einsum("ij,ij->", corners[:, 0], cross) < 0:
        faces = faces[:, ::-1].copy()

    colors = None
    channels = mesh.vertex_channels or {}
    if all(c in channels for c in "RGB"):
        rgb = torch.stack([channels[c] for c in "RGB"], dim=-1).float().cpu().numpy()  # (N, 3)
        rgb = np.nan_to_num(rgb, nan=0.0).clip(0.0, 1.0)
        colors = np.concatenate([np.round(rgb * 255), np.full((len(rgb), 1), 255)], axis=1).astype(np.uint8)
    return MeshPart(name="mesh", vertices=vertices, faces=faces, vertex_colors=colors)


def _failure(what: str, p: Optional[dict[str, Any]]) -> str:
    seed = f" (seed {p['seed']})" if p else ""
    return (
        f"Shap-E produced nothing usable{seed}: {what}. Try another seed or prompt, more inference "
        "steps, or a guidance scale nearer the default."
    )
