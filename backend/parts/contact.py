"""Attach floating parts: move a generated part that touches nothing until it touches the shape.

Phase 1 places each part's centre with an error of a few hundredths of the shape's size; a gap
that small is enough to leave a leg hanging under a seat. Like the physical-plausibility passes
of layout generators, this step translates whole components of new parts (never rotates or
scales them, never moves a part the caller keeps) by the shortest vector that makes them touch
the main body, measured on the decoded occupancy.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .autoencoder import PartAutoencoder
from .decode import EXTENT, occupancy_grid
from .representation import CENTER, PartShape

CONNECTIVITY = np.ones((3, 3, 3))  # 26-neighbourhood: parts touching at an edge or corner count as connected


def components(inside: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of the occupied voxels (R, R, R) bool. Returns (labels (R, R, R), count)."""
    from scipy import ndimage

    return ndimage.label(inside, structure=CONNECTIVITY)


@torch.no_grad()
def attach_floating_parts(shape: PartShape, autoencoder: PartAutoencoder, movable: Optional[Sequence[int]] = None,
                          resolution: int = 64, max_rounds: int = 4) -> tuple[PartShape, list[str]]:
    """Translate components made only of movable parts until they touch the main body.

    Args:
        shape: the parts (not modified). movable: indices of parts that may move (default: all);
            the main body is the largest component holding a part that may not move, else the largest.
        resolution: occupancy grid for the test (the validity metric uses 64).
        max_rounds: moving one component can bring another within reach; each round moves every
            floating component once.
    Returns:
        (the shape with moved centres, the names of the parts that moved).
    """
    from scipy import ndimage

    movable_set = set(range(len(shape)) if movable is None else movable)
    gaussians = shape.gaussians.clone()
    moved: list[str] = []
    step = 2 * EXTENT / (resolution - 1)
    for _ in range(max_rounds):
        current = PartShape(shape.names, shape.labels, gaussians, shape.latents, shape.origin)
        values, owner = occupancy_grid(current, autoencoder, resolution)
        inside = values.numpy() > 0
        labels, count = components(inside)
        if count <= 1:
            break
        owners = owner.numpy()
        parts_of = [set(np.unique(owners[labels == c + 1]).tolist()) - {-1} for c in range(count)]
        sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
        anchored = [c for c in range(count) if parts_of[c] - movable_set]
        main = max(anchored or range(count), key=lambda c: sizes[c])
        free = [c for c in range(count) if c != main and parts_of[c] and parts_of[c] <= movable_set]
        if not free:
            break
        # For every voxel, the nearest voxel of the main body (Euclidean distance transform).
        _, nearest = ndimage.distance_transform_edt(labels != main + 1, return_indices=True)  # (3, R, R, R)
        for c in free:
            voxels = np.argwhere(labels == c + 1)  # (K, 3)
            targets = nearest[:, voxels[:, 0], voxels[:, 1], voxels[:, 2]].T  # (K, 3)
            gap = ((targets - voxels) ** 2).sum(1)
            k = int(gap.argmin())
            shift = torch.from_numpy((targets[k] - voxels[k]).astype(np.float32) * step)  # grid axes are x, y, z
            for p in parts_of[c]:
                gaussians[p, CENTER] += shift
                if shape.names[p] not in moved:
                    moved.append(shape.names[p])
    out = PartShape(list(shape.names), list(shape.labels), gaussians, shape.latents.clone(), shape.origin,
                    shape.prompt, shape.category, dict(shape.extra))
    return out, moved
