"""Grids, meshes and point clouds of part shapes: for viewing, validity and Chamfer metrics."""

import numpy as np

from backend.geometry.sampling import sample_surface


def _parts(shape_or_parts):
    return shape_or_parts if isinstance(shape_or_parts, (list, tuple)) else shape_or_parts.parts


def grid_points(resolution: int) -> np.ndarray:
    """(R^3, 3) cell-vertex grid over [-1, 1]^3, x-major (reshape to (R, R, R))."""
    axis = np.linspace(-1, 1, resolution)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def voxelize(shape_or_parts, resolution: int = 64) -> np.ndarray:
    """(R, R, R) int grid over [-1, 1]^3: index of the part occupying each point, -1 if empty.

    Where parts overlap the earliest in the list wins. Only points inside each part's box
    are tested, which keeps a 64^3 grid cheap.
    """
    parts = _parts(shape_or_parts)
    grid = grid_points(resolution)
    label = np.full(len(grid), -1)
    for i in reversed(range(len(parts))):
        lo, hi = parts[i].bounds()
        idx = np.nonzero(np.all((grid >= lo - 1e-9) & (grid <= hi + 1e-9), axis=1))[0]
        label[idx[parts[i].occupancy(grid[idx])]] = i
    return label.reshape((resolution,) * 3)


def count_components(shape_or_parts, resolution: int = 64) -> int:
    """Number of face-connected solids in the union voxelisation; 1 means no floating parts."""
    from scipy import ndimage

    return int(ndimage.label(voxelize(shape_or_parts, resolution) >= 0)[1])


def shape_to_mesh(shape_or_parts, resolution: int = 64):
    """Marching-cubes mesh (PyMCubes) of the union occupancy on a grid over [-1, 1]^3.

    Returns:
        vertices (V, 3) float, faces (F, 3) int, face_part_index (F,) int: the index of the
        part each face belongs to (the part of the nearest occupied grid point).
    """
    import mcubes
    from scipy import ndimage

    label = voxelize(shape_or_parts, resolution)
    occ = np.pad(label >= 0, 1).astype(np.float64)  # padding closes surfaces at the border
    verts, faces = mcubes.marching_cubes(occ, 0.5)
    verts = (verts - 1) * 2 / (resolution - 1) - 1
    _, nearest = ndimage.distance_transform_edt(label < 0, return_indices=True)  # (3, R, R, R)
    cell = np.clip(np.rint((verts[faces].mean(1) + 1) * (resolution - 1) / 2).astype(int), 0, resolution - 1)
    src = nearest[:, cell[:, 0], cell[:, 1], cell[:, 2]]
    return verts, faces.astype(np.int64), label[src[0], src[1], src[2]]


def surface_points(shape_or_parts, n: int = 2048, seed: int = 0, resolution: int = 64) -> np.ndarray:
    """(n, 3) points sampled uniformly (by area) on the shape's surface, for Chamfer metrics."""
    verts, faces, _ = shape_to_mesh(shape_or_parts, resolution)
    return sample_surface(verts, faces, n, np.random.default_rng(seed))
