"""A decoded triplane field to a textured, watertight mesh, and a look at it from the input's camera."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import GenerationFailed
from ..geometry.isosurface import outer_surface
from ..render.camera import Camera
from ..render.rasterize import interpolate, rasterize
from ..results import MeshPart, StepCallback
from ..texture.surface_bake import bake_albedo
from .triplane import TriplaneField

# TripoSR's renderer places the input's camera 1.9 from the centre with a 40° field of view.
INPUT_CAMERA_DISTANCE, INPUT_CAMERA_FOV = 1.9, 40.0


def surface(field: TriplaneField, resolution: int, threshold: float,
            callback: Optional[StepCallback] = None) -> tuple[np.ndarray, np.ndarray]:
    """The field's outer surface where the density crosses `threshold`, on a resolution³ grid.

    Returns:
        vertices (V, 3) float32 in glTF axes, faces (F, 3) int64 outward.

    Raises:
        GenerationFailed: no surface (an empty reconstruction), saying what to try.
    """
    # In percent: the grid search decodes a number of points known only once it has started.
    progress = (lambda done, total: callback("surface", round(100 * done / max(total, 1)), 100)) if callback else None
    volume = field.density_grid(resolution, progress, near=threshold).cpu().numpy()
    try:
        return outer_surface(volume, field.radius, threshold)
    except GenerationFailed:
        raise GenerationFailed(
            f"the reconstruction is empty: nothing in it is denser than the surface threshold {threshold:g}. Try a "
            "lower threshold, or a clearer picture of the object: whole, centred, on a plain background") from None


def simplify(vertices: np.ndarray, faces: np.ndarray, target_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation (trimesh, fast-simplification) to about `target_faces`; unchanged when
    the mesh already has no more, or target_faces is 0."""
    if not target_faces or len(faces) <= target_faces:
        return vertices, faces
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False).simplify_quadric_decimation(face_count=int(target_faces))
    return np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int64)


def textured_part(field: TriplaneField, vertices: np.ndarray, faces: np.ndarray,
                  texture_size: int) -> tuple[MeshPart, np.ndarray, str]:
    """Unwrap the mesh and bake the field's colour into one texture (texture/surface_bake.py)."""
    device = field.planes.device
    return bake_albedo(lambda points: field.colour(points.to(device)), vertices, faces, texture_size)


def input_camera(size: int) -> Camera:
    """The camera the input image was taken from, in glTF axes: on +Z, looking at the centre."""
    return Camera(eye=(0.0, 0.0, INPUT_CAMERA_DISTANCE), target=(0.0, 0.0, 0.0), fov_y=INPUT_CAMERA_FOV,
                  width=size, height=size)


@torch.no_grad()
def render_from_input(field: TriplaneField, vertices: np.ndarray, faces: np.ndarray, size: int,
                      background: float) -> torch.Tensor:
    """(3, size, size) the mesh coloured by the field, seen from the input's camera on `background`."""
    device = field.planes.device
    verts = torch.from_numpy(vertices).to(device)
    faces_t = torch.from_numpy(faces).to(device)
    fragments = rasterize(verts, faces_t, input_camera(size))
    colour = interpolate(field.colour(verts), fragments, faces_t)  # (H, W, 3)
    image = torch.where(fragments.mask[..., None], colour, torch.full_like(colour, background))
    return image.permute(2, 0, 1).cpu()
