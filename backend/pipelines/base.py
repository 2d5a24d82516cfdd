"""What every pipeline shares: errors that explain themselves, progress, and the result type."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np


class JobCancelled(Exception):
    """Raised by a step callback when the user asked the job to stop."""


class InputError(ValueError):
    """The request itself is wrong (bad prompt, mesh, mask, parameter); the message says how to fix it."""


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here (not downloaded and downloads are off, missing package).

    The message names the model and the exact fix.
    """


class GenerationFailed(RuntimeError):
    """The model ran but produced nothing usable (an empty or degenerate surface)."""


class StepCallback(Protocol):
    """diffusers' `callback_on_step_end`, reduced to what a job needs.

    Called after every step with the pipeline phase (e.g. "denoise", "decode"), the step
    just finished (1-based) and the phase's total. `preview` is an optional (H, W, 3|4)
    uint8 image. A step that takes long may report how far into the next step it is
    (`within`, 0..1, the same `step` again), so progress keeps moving. The callback raises
    `JobCancelled` to stop the pipeline, so a cancel takes effect within one step.
    """

    def __call__(self, phase: str, step: int, total: int, preview: Optional[np.ndarray] = None,
                 within: float = 0.0) -> None: ...


def read_image(data: bytes, what: str = "the image"):
    """Decode an uploaded PNG or JPEG now (a truncated file fails here, not inside a model).

    Returns a PIL image in mode RGB, or RGBA when it has transparency (an alpha channel or
    a PNG's transparent colour), upright as a photo viewer shows it (EXIF orientation), 16-bit
    grey scaled to 8 bits. Raises InputError naming `what` for anything unreadable.
    """
    import io

    from PIL import Image, ImageOps

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        image = ImageOps.exif_transpose(image)  # a phone's portrait photo is stored on its side
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # UnidentifiedImageError is an OSError
        raise InputError(f"{what} is not a readable PNG or JPEG ({error})") from None
    if image.mode.startswith("I"):  # 16-bit grey ("I;16") or 32-bit integer: convert() would clip it at 255
        grey = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        image = Image.fromarray(np.round(grey.clip(0, top) * (255.0 / top)).astype(np.uint8))
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


# Numeric parameters' allowed ranges, {name: (low, high)}; integer bounds mean whole numbers.
Limits = dict[str, tuple[float, float]]
SEED_LIMITS: Limits = {"seed": (0, 2**63 - 1)}  # what torch and numpy generators accept


def check_limits(params: dict[str, Any], limits: Limits) -> None:
    """Refuse a numeric parameter outside its range, NaN or infinite; None leaves it to its default.

    Raises:
        InputError: naming the parameter, its range and the value sent.
    """
    for name, (low, high) in limits.items():
        value = params.get(name)
        if value is None:
            continue
        whole = isinstance(low, int) and isinstance(high, int)
        kind = (int,) if whole else (int, float)
        finite = not isinstance(value, float) or math.isfinite(value)  # an int of any size compares exactly
        if isinstance(value, bool) or not isinstance(value, kind) or not finite or not low <= value <= high:
            raise InputError(f"{name} must be {'a whole number' if whole else 'a number'} from {low} to {high}, got {value!r}")


def draw_seed() -> int:
    """A fresh seed for a request that gave none; results store it, so a run can be repeated."""
    return secrets.randbelow(2**31)


def no_progress(phase: str, step: int, total: int, preview: Optional[np.ndarray] = None, within: float = 0.0) -> None:
    """A StepCallback that ignores progress (for library and test use)."""


@dataclass
class MeshPart:
    """One named piece of a result mesh, in glTF axes (Y up, metres).

    Attributes:
        name: Part name, e.g. "leg.0"; "mesh" when the result has no parts.
        vertices: (N, 3) float32.
        faces: (M, 3) int64 triangle indices into `vertices`.
        vertex_colors: optional (N, 4) uint8 RGBA.
        uv: optional (N, 2) float32 texture coordinates (glTF convention: v down).
        polygons: optional (M,) int64, for an uploaded mesh: the polygon (quad, n-gon) of the
            artist's mesh each triangle was cut from, so an unwrap keeps polygons whole.
        normals: optional (N, 3) float32 unit vertex normals (an uploaded mesh's own, kept
            so smooth shading survives; a result without them is shaded flat).
        origin: optional (3,) float64 point the vertices are relative to: an upload far from
            the origin (survey coordinates) is read centred, and its result is put back there.
        node_matrix: optional (4, 4) float64 world transform of the uploaded node the part came
            from, already in `vertices`: the result is written back in that node's frame
            (its pivot, rotation and scale kept).
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: Optional[np.ndarray] = None
    uv: Optional[np.ndarray] = None
    polygons: Optional[np.ndarray] = None
    normals: Optional[np.ndarray] = None
    origin: Optional[np.ndarray] = None
    node_matrix: Optional[np.ndarray] = None


@dataclass
class MeshResult:
    """What a pipeline returns; the job writes it to a GLB.

    Attributes:
        parts: One entry per named part (a single "mesh" part when unstructured).
        texture: optional (H, W, 3|4) uint8 base-colour image used with the parts' UVs.
        metadata: JSON-serialisable facts about the result (notes for the user, the
            built-in model's part representation for later edits). Written to the GLB's
            scene `extras["diffusion3d"]`.
    """

    parts: list[MeshPart]
    texture: Optional[np.ndarray] = None
    metadata: dict[str, Any] = field(default_factory=dict)


# What a registry entry calls: run(pipeline, params, files, callback) -> MeshResult.
RunFunction = Callable[[Any, dict[str, Any], dict[str, bytes], StepCallback], MeshResult]
