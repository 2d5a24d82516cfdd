"""Array-level mesh helpers shared by import and export (numpy only, no bpy)."""

from __future__ import annotations

from typing import Optional

import numpy as np


def gltf_to_blender(points: np.ndarray) -> np.ndarray:
    """glTF (Y up) → Blender (Z up): (x, y, z) → (x, -z, y)."""
    points = np.asarray(points)
    out = np.empty(points.shape, points.dtype)
    out[:, 0] = points[:, 0]
    np.negative(points[:, 2], out=out[:, 1])
    out[:, 2] = points[:, 1]
    return out


def blender_to_gltf(points: np.ndarray) -> np.ndarray:
    """Blender (Z up) → glTF (Y up): (x, y, z) → (x, z, -y)."""
    points = np.asarray(points)
    return np.stack([points[:, 0], points[:, 2], -points[:, 1]], axis=1)


def flip_v(uv: np.ndarray) -> np.ndarray:
    """glTF texture coordinates (v down) ↔ Blender's (v up); the map is its own inverse."""
    out = np.array(uv, dtype=np.float32, copy=True)
    out[:, 1] = 1.0 - out[:, 1]
    return out


def weld_corners(
    corner_vertex: np.ndarray, corner_values: Optional[np.ndarray], num_vertices: int
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Per-corner values (Blender UVs) → per-vertex values (glTF), splitting vertices at seams.

    Args:
        corner_vertex: (C,) int, the mesh vertex of each triangle corner (C = 3 × triangles).
        corner_values: (C, K) float value per corner, or None.
        num_vertices: The mesh's vertex count.

    Returns:
        (source_vertex, faces, values): source_vertex (V',) the mesh vertex each output
        vertex copies; faces (C/3, 3) indices into the output vertices, in the same triangle
        order; values (V', K) or None. Without values the mesh vertices are kept as they are.
    """
    corner_vertex = np.asarray(corner_vertex, dtype=np.int64)
    if corner_values is None:
        return np.arange(num_vertices), corner_vertex.reshape(-1, 3), None
    values = np.ascontiguousarray(corner_values, dtype=np.float32)
    # One output vertex per distinct (vertex, value bits) pair: exactly Blender's notion of a seam.
    keys = np.concatenate([corner_vertex[:, None], values.view(np.int32).astype(np.int64)], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return corner_vertex[first], inverse.reshape(-1, 3), values[first]
