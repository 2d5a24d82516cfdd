"""Points on a triangle surface, for distances between shapes (Chamfer)."""

from __future__ import annotations

import numpy as np


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) points drawn uniformly by area from the triangles `faces` of `vertices`."""
    triangles = np.asarray(vertices, np.float64)[np.asarray(faces)]  # (F, 3, 3)
    area = np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1)
    chosen = triangles[rng.choice(len(triangles), n, p=area / area.sum())]
    u, v = rng.random((2, n))
    flip = u + v > 1  # fold the unit square onto the triangle
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    return chosen[:, 0] + u[:, None] * (chosen[:, 1] - chosen[:, 0]) + v[:, None] * (chosen[:, 2] - chosen[:, 0])
