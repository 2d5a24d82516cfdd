"""`triposr`: one image to a textured mesh in one network pass (TripoSR, backend/reconstruct/).

The photo's object is cut out (its alpha, a plain background, or else Segment Anything), centred at the model's
foreground ratio on grey; the network gives triplanes; their density's surface on a grid
becomes a watertight mesh, unwrapped, with the triplanes' colour baked into a texture. The
job's preview shows the prepared input beside the result seen from the input's camera.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from ..cutout import BusyBackground, Segmenter, cut_out
from ..distill.trainer import to_preview
from ..errors import InputError, ModelUnavailable
from ..hub import files_available_offline, is_available_offline as hub_offline, resolve_model_files
from ..images import read_image
from ..params import SEED_LIMITS, Limits
from ..reconstruct.checkpoint import PICKLE_NAME, SAFETENSORS_NAME, load_model
from ..reconstruct.network import TripoSR
from ..reconstruct.to_mesh import render_from_input, simplify, surface, textured_part
from ..reconstruct.triplane import TriplaneField
from ..results import MeshResult, StepCallback
from ..segmentation import DEFAULT_MODEL as SEGMENTER_MODEL, ObjectSegmenter

DEFAULT_MODEL = "stabilityai/TripoSR"
REQUIRED_FILES, WEIGHT_FILES = ("config.yaml",), (SAFETENSORS_NAME, PICKLE_NAME)
BACKGROUND = 0.5  # the grey TripoSR's inputs are composited on
CUT_OUT_WORDS = {"alpha": "by its alpha channel", "plain background": "from its plain background",
                 "segmented": f"of a busy background by Segment Anything ({SEGMENTER_MODEL}): check its outline"}
PARAMS: dict[str, Any] = {
    "grid_size": 256,  # isosurface resolution (points per axis of the density grid)
    "threshold": 25.0,  # density at the surface, TripoSR's own
    "foreground_ratio": 0.85,  # the object's larger side as a share of the input frame, as trained
    "texture_size": 1024,  # texels per side of the baked colour
    # Decimate to about this many triangles (0 keeps the isosurface's 200-400k at 256³): the
    # marching-cubes surface is far denser than its detail, and unwrapping it whole is slow.
    "target_faces": 50_000,
    # "auto": the network pass in bfloat16 on a CPU with native bfloat16 (AVX512-BF16, AMX), twice
    # as fast there with triplanes within about 1% of float32 (bench/bench_triposr.py); "full": float32.
    "precision": "auto",
}
PRECISIONS = ("auto", "full")
LIMITS: Limits = {"grid_size": (32, 512), "threshold": (0.1, 1000.0), "foreground_ratio": (0.5, 1.0),
                  "texture_size": (256, 4096), "target_faces": (0, 5_000_000), **SEED_LIMITS}


class Reconstructor:
    """TripoSR's network, and the object segmenter, loaded the first time a photo needs it (a busy
    background): most inputs (cut-outs, renders, product shots) never do."""

    def __init__(self, network: TripoSR, options: Any):
        self.network = network
        self.options = options
        self._segmenter: Optional[ObjectSegmenter] = None

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        if self._segmenter is None:
            try:
                self._segmenter = ObjectSegmenter.from_pretrained(SEGMENTER_MODEL, self.options)
            except ModelUnavailable as error:
                raise ModelUnavailable(f"the background is not plain, and cutting the object out of it needs "
                                       f"{SEGMENTER_MODEL}: {error}") from None
        return self._segmenter(rgb)


def check_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """Refused when the job is submitted: an image whose object cannot be told from its background
    (a busy one passes when the segmenter's weights are here: the job cuts it out), an unknown precision."""
    check_precision(params)
    try:
        prepare_input(files["image"], 64, float(params.get("foreground_ratio") or PARAMS["foreground_ratio"]))
    except BusyBackground as busy:
        if not hub_offline(SEGMENTER_MODEL):
            raise BusyBackground(f"{busy}; or download {SEGMENTER_MODEL} (`hf download {SEGMENTER_MODEL}`, or allow "
                                 "model downloads) and the backend cuts it out") from None


def check_precision(params: dict[str, Any]) -> None:
    if params.get("precision", "auto") not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {params.get('precision')!r}")


def network_precision(device: torch.device, precision: str) -> Optional[torch.dtype]:
    """The dtype the network pass is autocast to, or None for float32: bfloat16 where asked
    ("auto") on a CPU that computes it natively; elsewhere emulated bfloat16 is slower than float32."""
    return torch.bfloat16 if precision == "auto" and device.type == "cpu" and native_bfloat16() else None


def native_bfloat16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def prepare_input(data: bytes, size: int, ratio: float, segment: Optional[Segmenter] = None) -> tuple[torch.Tensor, str]:
    """The upload as the model was trained on: the object cut out, centred, `ratio` of the frame, on grey.

    Returns:
        ((3, size, size) in [0, 1], how the object was found: "alpha", "plain background" or
        "segmented").
    """
    photo = read_image(data, "the image")
    photo.thumbnail((2 * size, 2 * size), Image.Resampling.LANCZOS)  # no more than the model reads
    return prepare_array(np.asarray(photo), size, ratio, segment)


def prepare_array(pixels: np.ndarray, size: int, ratio: float,
                  segment: Optional[Segmenter] = None) -> tuple[torch.Tensor, str]:
    """`prepare_input` for decoded (H, W, 3|4) uint8 pixels."""
    image, _, how = cut_out(pixels, size, ratio, (BACKGROUND,) * 3, segment)
    return image, how


def load(options: Any, source: str = DEFAULT_MODEL) -> Reconstructor:
    """TripoSR from `stabilityai/TripoSR` or a folder holding config.yaml and model.ckpt (or model.safetensors).

    The published model.ckpt is read as tensors only and kept as safetensors in the cache
    (backend/reconstruct/checkpoint.py).
    """
    folder = resolve_model_files(source, REQUIRED_FILES, WEIGHT_FILES, options.allow_downloads, options.cache_dir)
    return Reconstructor(load_model(Path(folder), torch.device(options.device), _cache_root(options)), options)


def is_available_offline(source: str = DEFAULT_MODEL) -> bool:
    return files_available_offline(source, REQUIRED_FILES, WEIGHT_FILES)


def _cache_root(options: Any) -> Path:
    from huggingface_hub import constants

    return Path(options.cache_dir or constants.HF_HUB_CACHE)


@torch.no_grad()
def run(pipe: Reconstructor, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """Reconstruct the object in `files["image"]`.

    Args:
        pipe: From `load`.
        params: Keys of PARAMS (plus `seed`, unused: the model is deterministic).
        files: "image": a PNG or JPEG of one object, with transparency or on a plain background.
        callback: ("network", 1, 1), ("surface", percent, 100), ("texture", 1 and 2, 2).

    Returns:
        One part "mesh" with UVs and its baked colour texture, in glTF axes, the input's camera
        looking at its front (+Z); the cube the model spans is 1.74 units across.
    """
    p = {**PARAMS, **{k: v for k, v in params.items() if v is not None}}
    image, how = prepare_input(files["image"], pipe.network.config.image_size, float(p["foreground_ratio"]),
                               pipe.segment)
    return reconstruct(pipe.network, image, how, p, callback)


@torch.no_grad()
def reconstruct(model: TripoSR, image: torch.Tensor, how: str, p: dict[str, Any], callback: StepCallback) -> MeshResult:
    """`run` from a prepared input ((3, S, S) in [0, 1], from `prepare_input` or `prepare_array`)."""
    # 1. One network pass: the image's triplanes
    config = model.config
    device = next(model.parameters()).device
    dtype = network_precision(device, p.get("precision", "auto"))
    with torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext():
        planes = model(image[None].to(device))[0].float()  # the density and colour decoder runs in float32
    callback("network", 1, 1)
    field = TriplaneField(planes, model.decoder, config)

    # 2. The surface, simplified when asked, then unwrapped and textured
    vertices, faces = surface(field, int(p["grid_size"]), float(p["threshold"]), callback)
    vertices, faces = simplify(vertices, faces, int(p["target_faces"]))
    callback("texture", 1, 2)
    part, texture, uv_note = textured_part(field, vertices, faces, int(p["texture_size"]))
    look = render_from_input(field, vertices, faces, 256, BACKGROUND)
    side_by_side = torch.cat([torch.nn.functional.interpolate(image[None], size=256, mode="area")[0], look], dim=2)
    callback("texture", 2, 2, preview=to_preview(side_by_side))
    metadata = {
        "model": "triposr", "grid_size": int(p["grid_size"]), "threshold": float(p["threshold"]),
        "foreground_ratio": float(p["foreground_ratio"]), "cut_out": how, "faces": int(len(faces)),
        "network_precision": str(dtype or torch.float32).removeprefix("torch."),
        "notes": [f"The object was cut out {CUT_OUT_WORDS[how]}.", uv_note],
    }
    return MeshResult(parts=[part], texture=texture, metadata=metadata)
