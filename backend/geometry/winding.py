"""Inside/outside of a triangle mesh on a regular lattice, by signed ray crossings.

For each lattice column a ray runs along +z; every triangle it crosses adds +1 where the
surface faces +z (the ray leaves the solid) and -1 where it faces -z (it enters). The sum over
the crossings above a point is its winding number: 1 inside a closed, outward-facing surface,
0 outside, however many shells overlap. Columns × triangles instead of points × triangles (the
generalised winding number) makes it `grid` times cheaper; our dependencies offer neither
without embree or libigl.
"""

from __future__ import annotations

import numpy as np

JITTER = np.array([1.2345e-6, 2.3456e-6])  # keeps rays off shared edges, where a crossing would count twice


def lattice_winding(vertices: np.ndarray, faces: np.ndarray, grid: int, chunk: int = 1 << 22) -> np.ndarray:
    """Winding numbers at the cell centres of a grid^3 lattice over [-1, 1]^3.

    Args:
        vertices: (V, 3) positions in the lattice's frame. faces: (F, 3) triangles.
        grid: cells per axis. chunk: column-triangle pairs in memory at once.
    Returns:
        (grid, grid, grid) float winding numbers, indexed [x][y][z] like autoencoder.lattice.
    """
    axis = (np.arange(grid) + 0.5) / grid * 2 - 1
    columns = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2) + JITTER  # (g², 2)
    tri = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]  # (F, 3, 3)
    a, ab, ac = tri[:, 0, :2], tri[:, 1, :2] - tri[:, 0, :2], tri[:, 2, :2] - tri[:, 0, :2]
    det = ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]  # (F,) > 0: the triangle faces +z
    keep = np.abs(det) > 1e-18  # triangles seen edge-on from above are never crossed
    tri, a, ab, ac, det = tri[keep], a[keep], ab[keep], ac[keep], det[keep]
    counts = np.zeros((len(columns), grid + 1))  # counts[c, k]: crossings above the first k points of column c
    step = max(1, chunk // len(columns))
    for s in range(0, len(tri), step):
        e = slice(s, s + step)
        ap = columns[:, None, :] - a[None, e]  # (g², f, 2)
        u = (ap[..., 0] * ac[None, e, 1] - ap[..., 1] * ac[None, e, 0]) / det[None, e]
        v = (ab[None, e, 0] * ap[..., 1] - ab[None, e, 1] * ap[..., 0]) / det[None, e]
        col, t = np.nonzero((u >= 0) & (v >= 0) & (u + v <= 1))
        if not len(col):
            continue
        z = tri[s + t, 0, 2] + u[col, t] * (tri[s + t, 1, 2] - tri[s + t, 0, 2]) + v[col, t] * (tri[s + t, 2, 2] - tri[s + t, 0, 2])
        below = np.searchsorted(axis, z)  # lattice points of the column under the crossing
        np.add.at(counts, (col, below), np.sign(det[s + t]))
    winding = counts[:, ::-1].cumsum(1)[:, ::-1][:, 1:]  # sum over crossings above each point
    return winding.reshape(grid, grid, grid)
