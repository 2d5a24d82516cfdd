"""Renders of a mesh's shape alone, for a prior to judge: grey clay lit from beside the camera.

Geometry is what a reshape optimises, so the renders show nothing but shape (DreamFusion's
"textureless" shading, as Fantasia3D's geometry stage shows its prior normals): smooth vertex
normals, an ambient term and one light. The light sits a little above and to the right of the
camera, fixed to it, so the same camera always gives the same image (an oracle prior can then
render its target the same way) while relief still casts a gradient of light across the
surface. Gradients reach the vertex positions through the normals and the perspective-correct
barycentrics; silhouettes do not move by gradient (the region's shading carries the shape).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..render.camera import Camera
from ..render.rasterize import interpolate, rasterize

ALBEDO = 0.8
AMBIENT = 0.25
LIGHT_OFFSET = (0.35, 0.45)  # the light's direction: the camera's, turned right and up by these (radians-ish)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V, 3) area-weighted vertex normals (differentiable)."""
    corners = vertices[faces]
    cross = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # (F, 3), |.| = 2 area
    normals = torch.zeros_like(vertices).index_add(0, faces.reshape(-1), cross.repeat_interleave(3, 0))
    return F.normalize(normals, dim=-1)


def light_direction(camera: Camera, device=None) -> torch.Tensor:
    """(3,) unit direction towards the light, fixed to the camera."""
    view = camera.view_matrix(dtype=torch.float32)  # world -> camera; its rows are the camera's axes
    right, up, back = view[0, :3], view[1, :3], view[2, :3]
    return F.normalize(back + LIGHT_OFFSET[0] * right + LIGHT_OFFSET[1] * up, dim=0).to(device)


def shade(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera, background: tuple[float, float, float],
          rasterizer: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """A clay render of the mesh.

    Args:
        vertices: (V, 3), may carry gradients; faces: (F, 3) int64.
        camera: The view; its size is the image's.
        background: RGB behind the object.

    Returns:
        ((3, H, W) image in [0, 1], (H, W) bool object mask).
    """
    fragments = rasterize(vertices, faces, camera, backend=rasterizer)
    normal = F.normalize(interpolate(vertex_normals(vertices, faces), fragments, faces), dim=-1)  # (H, W, 3)
    eye = torch.tensor(camera.eye, dtype=vertices.dtype, device=vertices.device)
    to_eye = eye - interpolate(vertices, fragments, faces)
    normal = torch.where(((normal * to_eye).sum(-1, keepdim=True) < 0), -normal, normal)  # both sides face the viewer
    lit = (normal * light_direction(camera, vertices.device)).sum(-1).clamp(min=0)
    grey = ALBEDO * (AMBIENT + (1 - AMBIENT) * lit)  # (H, W)
    back = torch.tensor(background, dtype=vertices.dtype, device=vertices.device)
    image = torch.where(fragments.mask[..., None], grey[..., None].expand(*grey.shape, 3), back)
    return image.permute(2, 0, 1), fragments.mask
