"""A density volume to the closed triangle mesh of its surface seen from outside (PyMCubes)."""

from __future__ import annotations

import numpy as np

from ..errors import GenerationFailed


def outer_surface(volume: np.ndarray, bound: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The surface where `volume` crosses `threshold`, closed and without inner pockets.

    Args:
        volume: (N, N, N) density at N points per axis spanning [-bound, bound], indexed [x, y, z].
        bound: Half the side of the cube the volume spans.
        threshold: Density at the surface (inside is above it).

    Returns:
        vertices (V, 3) float32 in the volume's frame, faces (F, 3) int64 counter-clockwise seen
        from outside. Padding with empty space closes surfaces at the border (watertight), and
        pockets of low density enclosed by the object (no ray reaches them) are filled, so they do
        not come out as surfaces of their own.

    Raises:
        GenerationFailed: nothing crosses the threshold.
    """
    import mcubes
    from scipy import ndimage

    resolution = volume.shape[0]
    padded = np.pad(np.asarray(volume, np.float64), 1)
    inside = ndimage.binary_fill_holes(padded > threshold)
    padded = np.where(inside & (padded <= threshold), 2.0 * threshold, padded)
    vertices, faces = mcubes.marching_cubes(padded, threshold)
    if len(faces) == 0:
        raise GenerationFailed("the field has no surface")
    vertices = ((vertices - 1) * (2 * bound / (resolution - 1)) - bound).astype(np.float32)
    faces = faces.astype(np.int64)  # PyMCubes winds counter-clockwise seen from the lower values: outward
    return vertices, faces
