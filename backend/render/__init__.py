"""A small rasterizer in pure torch (nvdiffrast when present on CUDA), differentiable through barycentrics.

Kept free of any texturing or guidance logic: texture painting and score distillation
both compose it (threestudio's renderer / material / guidance split).
"""

from .camera import Camera, default_views, frame_camera, look_at, orbit_views, perspective
from .rasterize import (
    Fragments, face_normals, interpolate, rasterize, rasterize_clip, rasterize_uv_space, render_normals,
    select_backend, uv_space_texels,
)

__all__ = [
    "Camera", "Fragments", "default_views", "face_normals", "frame_camera", "interpolate", "look_at", "orbit_views",
    "perspective", "rasterize", "rasterize_clip", "rasterize_uv_space", "render_normals", "select_backend",
    "uv_space_texels",
]
