"""Attach floating parts: move a generated part that touches nothing until it touches the shape.

Phase 1 places each part's centre with an error of a few hundredths of the shape's size; a gap
that small is enough to leave a leg hanging under a seat. Like the physical-plausibility passes
of layout generators, this step translates whole components of new parts (never rotates or
scales them, never moves a part the caller keeps) by the shortest vector that makes them touch
the main body, measured on the decoded occupancy.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import numpy as np
import torch

from .autoencoder import PartAutoencoder
from .decode import EXTENT, occupancy_grid
from .representation import CENTER, ROT6D, SCALE, PartShape, rotation_from_6d

CONNECTIVITY = np.ones((3, 3, 3))  # 26-neighbourhood: parts touching at an edge or corner count as connected


def components(inside: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of the occupied voxels (R, R, R) bool. Returns (labels (R, R, R), count)."""
    from scipy import ndimage

    return ndimage.label(inside, structure=CONNECTIVITY)


@torch.no_grad()
def attach_floating_parts(shape: PartShape, autoencoder: PartAutoencoder, movable: Optional[Sequence[int]] = None,
                          resolution: int = 64, max_rounds: int = 4) -> tuple[PartShape, list[str]]:
    """Translate groups of movable parts that touch nothing else until they touch the main body.

    Parts are grouped whole: two parts belong together when their occupied voxels touch, and a
    part whose thin occupancy the grid cuts into pieces is still one part (moving it per piece
    once sent a chair leg 3 units above the seat).

    Args:
        shape: the parts (not modified). movable: indices of parts that may move (default: all);
            the main body is the largest group holding a part that may not move, else the largest.
        resolution: occupancy grid for the test (the validity metric uses 64).
        max_rounds: moving one group can bring another within reach; each round moves every
            floating group once.
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
        owners = np.where(values.numpy() > 0, owner.numpy(), -1)  # (R, R, R) part of each occupied voxel
        group = touching_groups(owners, len(shape))  # (P,) group of each part
        present = np.unique(owners[owners >= 0])
        groups = sorted({int(group[p]) for p in present})
        if len(groups) <= 1:
            break
        voxels_of = {g: np.isin(owners, [p for p in present if group[p] == g]) for g in groups}
        parts_of = {g: {int(p) for p in present if group[p] == g} for g in groups}
        anchored = [g for g in groups if parts_of[g] - movable_set]
        main = max(anchored or groups, key=lambda g: int(voxels_of[g].sum()))
        free = [g for g in groups if g != main and parts_of[g] <= movable_set]
        if not free:
            break
        # For every voxel, the nearest voxel of the main body (Euclidean distance transform).
        _, nearest = ndimage.distance_transform_edt(~voxels_of[main], return_indices=True)  # (3, R, R, R)
        for g in free:
            voxels = np.argwhere(voxels_of[g])  # (K, 3)
            targets = nearest[:, voxels[:, 0], voxels[:, 1], voxels[:, 2]].T  # (K, 3)
            k = int(((targets - voxels) ** 2).sum(1).argmin())
            shift = torch.from_numpy((targets[k] - voxels[k]).astype(np.float32) * step)  # grid axes are x, y, z
            for p in sorted(parts_of[g]):
                gaussians[p, CENTER] += shift
                if shape.names[p] not in moved:
                    moved.append(shape.names[p])
    out = PartShape(list(shape.names), list(shape.labels), gaussians, shape.latents.clone(), shape.origin,
                    shape.prompt, shape.category, dict(shape.extra))
    return out, moved


def touching_groups(owners: np.ndarray, count: int) -> np.ndarray:
    """(count,) group index per part: parts whose occupied voxels touch (26-neighbourhood) share one.

    Args:
        owners: (R, R, R) int part index of each occupied voxel, -1 where empty.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    R = owners.shape[0]
    pairs = []
    for dx, dy, dz in [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, -1, 0), (1, 0, 1), (1, 0, -1), (0, 1, 1),
                       (0, 1, -1), (1, 1, 1), (1, 1, -1), (1, -1, 1), (1, -1, -1)]:  # half the 26 neighbours
        a = owners[max(0, -dx):R - max(0, dx), max(0, -dy):R - max(0, dy), max(0, -dz):R - max(0, dz)]
        b = owners[max(0, dx):R - max(0, -dx), max(0, dy):R - max(0, -dy), max(0, dz):R - max(0, -dz)]
        touch = (a >= 0) & (b >= 0) & (a != b)
        pairs.append(np.stack([a[touch], b[touch]], 1))
    edges = np.unique(np.concatenate(pairs), axis=0)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def world_boxes(gaussians: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World-aligned bounds (lo, hi), each (N, 3), of the parts' oriented boxes."""
    reach = (rotation_from_6d(gaussians[:, ROT6D]).abs() @ gaussians[:, SCALE, None])[..., 0]
    return gaussians[:, CENTER] - reach, gaussians[:, CENTER] + reach


def crossings(lo, hi, other_lo, other_hi, margin: float = 0.01) -> list[int]:
    """World axes along which box (lo, hi) passes right through box (other_lo, other_hi), beyond
    `margin` on both sides, while the boxes overlap; [] when they are apart."""
    if any(float(hi[a]) <= float(other_lo[a]) or float(lo[a]) >= float(other_hi[a]) for a in range(3)):
        return []
    return [a for a in range(3) if float(lo[a]) < float(other_lo[a]) - margin and float(hi[a]) > float(other_hi[a]) + margin]


@functools.lru_cache(maxsize=32)
def crossing_labels(category: str, samples: int = 200) -> frozenset:
    """(label, other label) pairs where a part of the first kind passes right through one of the
    second in the category's training shapes (a lamp pole through its shade, a trunk through a
    canopy): such crossings are the category's design, not an error to correct."""
    from .data import category_shapes

    pairs = set()
    for shape in category_shapes(category, samples):
        parts = shape.parts
        bounds = [p.bounds() for p in parts]
        for i, a in enumerate(parts):
            for j, b in enumerate(parts):
                if i != j and (a.label, b.label) not in pairs and crossings(*bounds[i], *bounds[j]):
                    pairs.add((a.label, b.label))
    return frozenset(pairs)


def stop_inside_kept_parts(shape: PartShape, kept: Sequence[int], aligned: float = 0.9,
                           min_half: float = 0.01) -> tuple[PartShape, list[str]]:
    """Shorten new parts that pass right through a kept part, so that they end inside it.

    A regenerated pedestal sized for a thick seat comes out on top of a thin one; the new part
    keeps the side it mostly lies on and now ends half way into the kept part, where its end is
    hidden. Kept parts never change. See `stop_crossings`.

    Returns: (the shape with new centres and half extents, the names of the parts shortened).
    """
    kept = list(kept)
    pairs = [(n, k) for n in range(len(shape)) if n not in set(kept) for k in kept]
    return stop_crossings(shape, pairs, aligned, min_half)


def stop_smaller_crossing_parts(shape: PartShape, aligned: float = 0.9, min_half: float = 0.01) -> tuple[PartShape, list[str]]:
    """Shorten each part that passes right through a larger one (by box volume) where the category's
    training shapes never cross that way: a generated leg poking up through the seat ends inside it."""
    volume = shape.half_extents.prod(-1)
    pairs = [(a, b) for a in range(len(shape)) for b in range(len(shape)) if a != b and float(volume[a]) < float(volume[b])]
    return stop_crossings(shape, pairs, aligned, min_half)


def stop_crossings(shape: PartShape, pairs: Sequence[tuple[int, int]], aligned: float = 0.9,
                   min_half: float = 0.01) -> tuple[PartShape, list[str]]:
    """For each (part, other) pair where the part passes right through the other, shorten the part
    to end half way into the other, on the side where most of it lies.

    Crossings the category's training shapes have (`crossing_labels`: a lamp's shade around its
    pole) are left alone. Only the box axis that is (nearly, `aligned`) the crossing direction is
    shortened; the other part never changes.
    """
    from .data import CATEGORIES

    allowed = crossing_labels(shape.category) if shape.category in CATEGORIES else frozenset()
    gaussians = shape.gaussians.clone()
    o_lo, o_hi = world_boxes(shape.gaussians)
    trimmed: list[str] = []
    for n, k in pairs:
        if (shape.labels[n], shape.labels[k]) in allowed:
            continue
        lo, hi = (b[0] for b in world_boxes(gaussians[n : n + 1]))
        rotation = shape.rotations[n]
        for a in crossings(lo, hi, o_lo[k], o_hi[k]):
            j = int(rotation[a].abs().argmax())  # the box axis along world axis a
            if float(rotation[a, j].abs()) < aligned:
                continue
            middle = float(o_lo[k, a] + o_hi[k, a]) / 2
            below, above = float(o_lo[k, a] - lo[a]), float(hi[a] - o_hi[k, a])
            new_lo, new_hi = (float(lo[a]), middle) if below >= above else (middle, float(hi[a]))
            cut = (float(hi[a] - lo[a]) - (new_hi - new_lo)) / 2
            gaussians[n, SCALE.start + j] = max(float(gaussians[n, SCALE.start + j]) - cut / float(rotation[a, j].abs()),
                                                min_half)
            gaussians[n, a] += (new_lo + new_hi) / 2 - float(lo[a] + hi[a]) / 2
            lo, hi = (b[0] for b in world_boxes(gaussians[n : n + 1]))
            if shape.names[n] not in trimmed:
                trimmed.append(shape.names[n])
    out = PartShape(list(shape.names), list(shape.labels), gaussians, shape.latents.clone(), shape.origin,
                    shape.prompt, shape.category, dict(shape.extra))
    return out, trimmed
