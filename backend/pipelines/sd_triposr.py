"""`sd-triposr`: text to image to 3D, as current tools do it: Stable Diffusion draws the object alone
on a plain background, TripoSR lifts the picked image to a textured mesh.

Images are the cheap step, so a job can draw several (`candidates`, one seed each) and stop
(`pick` -1): the job then holds a gallery and no mesh, and the artist sends the image they like
to `triposr` (the add-on's Make 3D). With `pick` k it goes on to 3D with candidate k at once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import InputError, ModelUnavailable
from ..params import SEED_LIMITS, Limits, draw_seed
from ..reconstruct.candidates import DEFAULT_MODEL, gallery, generate_candidates, load_text_to_image
from ..results import MeshResult, StepCallback
from . import triposr

PARAMS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": None,
    "candidates": 1,  # images drawn, with seeds seed, seed + 1, ...
    "pick": 0,  # the candidate made 3D; -1 stops at the images (a gallery to pick from)
    "num_inference_steps": 25,
    "guidance_scale": 7.5,
    "image_size": 512,  # SD 2.1-base's own
    **triposr.PARAMS,
}
LIMITS: Limits = {**triposr.LIMITS, "candidates": (1, 8), "pick": (-1, 7), "num_inference_steps": (1, 200),
                  "guidance_scale": (1.0, 30.0), "image_size": (64, 1024), **SEED_LIMITS}
SOURCE = f"{DEFAULT_MODEL} + {triposr.DEFAULT_MODEL}"


class TextToImageTo3D(NamedTuple):
    images: Any  # a diffusers StableDiffusionPipeline
    reconstruction: Any  # triposr.Reconstructor


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """Refused when the job is submitted: no prompt, a pick beyond the candidates, an odd size, an
    unknown precision."""
    if not str(params.get("prompt") or "").strip():
        raise InputError("sd-triposr needs a prompt: describe the object, e.g. 'a red fire hydrant'")
    candidates, pick = int(params.get("candidates", 1)), int(params.get("pick", 0))
    if pick >= candidates:
        raise InputError(f"pick is {pick}, but only {candidates} candidate(s) are drawn, numbered from 0: pick "
                         f"one of 0-{candidates - 1}, or -1 to stop at the images")
    triposr.check_precision(params)
    if int(params.get("image_size", 512)) % 8:
        raise InputError("image_size must be a multiple of 8 (Stable Diffusion's latents are an eighth of it)")


def load(options: Any) -> TextToImageTo3D:
    return TextToImageTo3D(load_text_to_image(options, DEFAULT_MODEL), triposr.load(options))


def is_available_offline() -> bool:
    from ..hub import is_available_offline as offline

    return offline(DEFAULT_MODEL) and triposr.is_available_offline()


def run(pipes: TextToImageTo3D, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """Draw the candidates, then (unless `pick` is -1) reconstruct the picked one.

    Returns:
        The picked candidate's mesh (as `triposr.run`'s), or no parts when nothing was picked;
        every candidate image either way, and their seeds in the metadata.
    """
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    count, pick, steps = int(p["candidates"]), int(p["pick"]), int(p["num_inference_steps"])
    seeds = [seed + k for k in range(count)]
    images = generate_candidates(pipes.images, str(p["prompt"]).strip(), p["negative_prompt"], seeds, steps,
                                 float(p["guidance_scale"]), int(p["image_size"]), callback)
    callback("images", steps, steps, preview=gallery(images))
    metadata = {"model": "sd-triposr", "prompt": str(p["prompt"]).strip(), "seed": seed, "candidate_seeds": seeds}
    if pick < 0:
        note = f"{count} candidate image(s), seeds {seeds[0]}-{seeds[-1]}: pick one to make it 3D."
        return MeshResult(parts=[], candidates=images, metadata={**metadata, "notes": [note]})
    try:
        image, how = triposr.prepare_array(images[pick], pipes.reconstruction.network.config.image_size,
                                           float(p["foreground_ratio"]), pipes.reconstruction.segment)
    except (InputError, ModelUnavailable) as error:  # not cut out: a busy background, no segmenter here
        raise type(error)(f"candidate {pick} cannot be made 3D: {error}. Pick another candidate, or draw again "
                          "with another seed") from None
    result = triposr.reconstruct(pipes.reconstruction.network, image, how, p, callback)
    result.candidates = images
    result.metadata = {**result.metadata, **metadata, "pick": pick, "picked_seed": seeds[pick]}
    return result
