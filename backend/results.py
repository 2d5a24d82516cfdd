"""What a pipeline returns and how it reports progress: the types every layer shares.

A leaf module (numpy only), like errors.py: lower layers build results without importing
the pipelines that use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

import numpy as np


class StepCallback(Protocol):
    """diffusers' `callback_on_step_end`, reduced to what a job needs.

    Called after every step with the pipeline phase (e.g. "denoise", "decode"), the step
    just finished (1-based) and the phase's total. `preview` is an optional (H, W, 3|4)
    uint8 image. A step that takes long may report how far into the next step it is
    (`within`, 0..1, the same `step` again), so progress keeps moving. The callback raises
    `JobCancelled` to stop the pipeline, so a cancel takes effect within one step.

    A long optimisation (score distillation, a reshape) also passes `state`: a function that
    makes a MeshResult of where it stands now. The callback may call it, between steps, when
    the artist asks for the current state or cancels, so what was reached is never lost.

    One that can go on exactly where it stopped also passes `checkpoint`: a function that makes
    its state after this step (a tree of tensors, backend/distill/checkpoint.py); the pipeline
    takes it back as `resume` and finishes as if it had never stopped.
    """

    def __call__(self, phase: str, step: int, total: int, preview: Optional[np.ndarray] = None,
                 within: float = 0.0, state: Optional[Callable[[], "MeshResult"]] = None,
                 checkpoint: Optional[Callable[[], dict[str, Any]]] = None) -> None: ...


def no_progress(phase: str, step: int, total: int, preview: Optional[np.ndarray] = None, within: float = 0.0,
                state: Optional[Callable[[], "MeshResult"]] = None,
                checkpoint: Optional[Callable[[], dict[str, Any]]] = None) -> None:
    """A StepCallback that ignores progress (for library and test use)."""


@dataclass
class Material:
    """A part's physically based material (glTF's metallic-roughness model, Blender's Principled BSDF).

    Attributes:
        name: What the artist sees in the material slot, e.g. "leg (black metal)".
        base_color: linear RGBA in [0, 1].
        metallic, roughness, transmission: in [0, 1] (transmission 1: clear glass).
    """

    name: str
    base_color: tuple
    metallic: float = 0.0
    roughness: float = 0.5
    transmission: float = 0.0


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
        material: optional Material of the part (the built-in model's coloured parts); a part
            without one takes the result's shared material (its texture, or a plain one).
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
    material: Optional[Material] = None


@dataclass
class MeshResult:
    """What a pipeline returns; the job writes it to a GLB.

    Attributes:
        parts: One entry per named part (a single "mesh" part when unstructured).
        texture: optional (H, W, 3|4) uint8 base-colour image used with the parts' UVs.
        metadata: JSON-serialisable facts about the result (notes for the user, the
            built-in model's part representation for later edits). Written to the GLB's
            scene `extras["diffusion3d"]`.
        candidates: (H, W, 3) uint8 images the artist picks from (text to image to 3D's
            gallery), served one by one; with none picked yet, `parts` is empty and the job
            has candidates but no mesh.
    """

    parts: list[MeshPart]
    texture: Optional[np.ndarray] = None
    metadata: dict[str, Any] = field(default_factory=dict)
    candidates: list[np.ndarray] = field(default_factory=list)


# What a registry entry calls: run(pipeline, params, files, callback) -> MeshResult.
RunFunction = Callable[[Any, dict[str, Any], dict[str, bytes], StepCallback], MeshResult]
