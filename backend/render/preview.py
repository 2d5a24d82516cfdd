"""A look at a result: its parts rasterized from the front-right, above, in their colours, lit
softly. What the command line and batch runs write beside each GLB (the add-on renders its own
in Blender)."""

from __future__ import annotations

import numpy as np
import torch

from ..colour_space import linear_to_srgb
from ..results import MeshResult
from .camera import frame_camera
from .rasterize import face_normals, interpolate, rasterize

GREY, BACKGROUND = 0.7, 0.16  # uncoloured surfaces, and around the object
LIGHT = np.array([0.4, 0.8, 0.45])  # from above, over the camera's shoulder


@torch.no_grad()
def render_result(result: MeshResult, size: int = 512) -> np.ndarray:
    """(size, size, 3) uint8: every part at once, textured (UVs and the result's texture), else by
    vertex colours, else grey; Lambert lighting plus ambient, both sides lit."""
    parts = [p for p in result.parts if len(p.faces)]
    if not parts:
        return np.full((size, size, 3), round(BACKGROUND * 255), np.uint8)
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    vertices = torch.from_numpy(np.concatenate([np.asarray(p.vertices, np.float32) for p in parts]))
    faces = torch.from_numpy(np.concatenate([np.asarray(p.faces, np.int64) + o for p, o in zip(parts, offsets)]))
    colours = torch.from_numpy(np.concatenate([_vertex_colours(p) for p in parts]))
    fragments = rasterize(vertices, faces, frame_camera(vertices, 30.0, 20.0, width=size))
    colour = interpolate(colours, fragments, faces)  # (H, W, 3)
    texture = result.texture
    if texture is not None and all(p.uv is not None for p in parts):
        uv = torch.from_numpy(np.concatenate([np.asarray(p.uv, np.float32) for p in parts]))
        at = interpolate(uv, fragments, faces)  # glTF UVs: v runs down the image
        image = torch.from_numpy(np.asarray(texture[..., :3], np.float32) / 255.0)
        rows = (at[..., 1].clamp(0, 1) * (image.shape[0] - 1)).round().long()
        cols = (at[..., 0].clamp(0, 1) * (image.shape[1] - 1)).round().long()
        colour = image[rows, cols]
    normal = face_normals(vertices, faces)[fragments.triangle_id.clamp(min=0)]  # (H, W, 3)
    light = torch.from_numpy(LIGHT / np.linalg.norm(LIGHT)).float()
    shade = 0.35 + 0.65 * (normal @ light).abs()
    lit = torch.where(fragments.mask[..., None], colour * shade[..., None], torch.full_like(colour, BACKGROUND))
    return (lit.clamp(0, 1) * 255).round().byte().numpy()


def _vertex_colours(part) -> np.ndarray:
    """(N, 3) sRGB in [0, 1]: the vertex colours, else the part material's colour, else grey."""
    if part.vertex_colors is not None:
        return np.asarray(part.vertex_colors[:, :3], np.float32) / 255.0
    if part.material is not None:
        return np.tile(np.asarray(linear_to_srgb(part.material.base_color[:3]), np.float32), (len(part.vertices), 1))
    return np.full((len(part.vertices), 3), GREY, np.float32)
