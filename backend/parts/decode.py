"""Part shape → named meshes: union of part occupancies on a grid, marching cubes, split by part."""

from __future__ import annotations

import mcubes
import numpy as np
import torch

from backend.errors import GenerationFailed
from backend.results import MeshPart, StepCallback, no_progress

from .appearance import part_materials
from .autoencoder import PartAutoencoder
from .representation import PartShape

OUTSIDE = -10.0  # logit written where no part reaches
EXTENT = 1.0  # the decode grid spans [-EXTENT, EXTENT]^3; data shapes fit in [-0.95, 0.95]^3

@torch.no_grad()
def part_logit_volumes(shape: PartShape, autoencoder: PartAutoencoder, n: int) -> torch.Tensor:
    """Each part's occupancy logits on an n^3 lattice of its own frame (nodes span [-1, 1]^3). Returns (P, n, n, n)."""
    axis = torch.linspace(-1, 1, n)
    nodes = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(1, -1, 3)  # (1, n^3, 3)
    device = next(autoencoder.parameters()).device  # the nets may sit on a GPU; shapes live on the CPU
    logits = autoencoder.decode(shape.latents.to(device), nodes.to(device).expand(len(shape), -1, -1))  # (P, n^3)
    return logits.clamp(OUTSIDE, -OUTSIDE).reshape(-1, n, n, n).cpu()


@torch.no_grad()
def occupancy_grid(shape: PartShape, autoencoder: PartAutoencoder, resolution: int = 128, local_resolution: int = 20,
                   callback: StepCallback = no_progress) -> tuple[torch.Tensor, torch.Tensor]:
    """Union of the parts' occupancy logits on the fixed grid over [-1, 1]^3.

    Each part's decoder runs once on a small lattice in its own frame; the world grid reads it
    by trilinear interpolation, and only inside the part's bounding box.
    Returns: logits (R, R, R) (max over parts) and owner (R, R, R) int64 part index (-1: none).
    """
    R, P = resolution, len(shape)
    volumes = part_logit_volumes(shape, autoencoder, local_resolution)  # (P, n, n, n)
    values = torch.full((R, R, R), OUTSIDE)
    owner = torch.full((R, R, R), -1, dtype=torch.long)
    axis = torch.linspace(-EXTENT, EXTENT, R)
    step = 2 * EXTENT / (R - 1)
    rotations, centers, halves = shape.rotations, shape.centers, shape.half_extents.clamp(min=1e-4)
    for p in range(P):
        reach = (rotations[p].abs() @ halves[p]) * 1.02  # (3,) half size of the world-aligned box
        lo = ((centers[p] - reach + EXTENT) / step).ceil().long().clamp(0, R - 1)
        hi = ((centers[p] + reach + EXTENT) / step).floor().long().clamp(0, R - 1)
        if (hi < lo).any():
            callback("decode", p + 1, P + 1)
            continue
        gx, gy, gz = (axis[lo[i] : hi[i] + 1] for i in range(3))
        pts = torch.stack(torch.meshgrid(gx, gy, gz, indexing="ij"), -1)  # (a, b, c, 3)
        local = (pts - centers[p]) @ rotations[p] / halves[p]  # (a, b, c, 3), columns of R are the local axes
        # grid_sample indexes (x, y, z) = (last, middle, first) volume dims: our volume is [x][y][z]
        block = torch.nn.functional.grid_sample(volumes[p][None, None], local.flip(-1)[None], align_corners=True,
                                                padding_mode="border")[0, 0]  # (a, b, c)
        block = block.masked_fill((local.abs() > 1).any(-1), OUTSIDE)
        sl = tuple(slice(int(lo[i]), int(hi[i]) + 1) for i in range(3))
        better = block > values[sl]
        values[sl] = torch.maximum(values[sl], block)
        owner[sl] = owner[sl].masked_fill(better, p)
        callback("decode", p + 1, P + 1)
    return values, owner


def drop_fragments(values: torch.Tensor, owner: torch.Tensor, min_fraction: float = 0.05) -> torch.Tensor:
    """The occupancy without the crumbs a part's thin decoded surface can leave beside it.

    A connected piece of the union is a fragment when every part in it also has a piece at
    least 1 / min_fraction times bigger (a thin mug wall decoded as the mug plus a few specks);
    a part is never removed whole, so small parts of their own (buttons, an artist's separate
    pieces) stay.

    Args:
        values: (R, R, R) occupancy logits; owner: (R, R, R) part of each voxel (-1: none).
    Returns:
        The logits with fragments set to outside.
    """
    from scipy import ndimage

    inside = values.numpy() > 0
    labels, count = ndimage.label(inside, structure=np.ones((3, 3, 3)))
    if count <= 1:
        return values
    sizes = np.bincount(labels.ravel(), minlength=count + 1)  # (count + 1,), 0 = outside
    pieces = np.unique(np.stack([labels[inside], owner.numpy()[inside]], 1), axis=0)  # (piece, part) pairs
    biggest = np.zeros(int(pieces[:, 1].max()) + 2, np.int64)  # per part (+1 for -1): its largest piece
    np.maximum.at(biggest, pieces[:, 1] + 1, sizes[pieces[:, 0]])
    small = sizes[pieces[:, 0]] * (1.0 / min_fraction) <= biggest[pieces[:, 1] + 1]  # per pair: dwarfed
    keep = np.ones(count + 1, bool)
    keep[0] = False
    np.logical_and.at(keep, pieces[:, 0], ~small)  # a piece stays unless it is dwarfed for all its parts
    out = values.clone()
    out[torch.from_numpy(inside & ~keep[labels])] = OUTSIDE
    return out


def decode_shape(shape: PartShape, autoencoder: PartAutoencoder, resolution: int = 128,
                 callback: StepCallback = no_progress, local_resolution: int = 20) -> tuple[list[MeshPart], torch.Tensor]:
    """Marching cubes on the union, one MeshPart per part with its material, bottom-centred.

    Args:
        shape: the parts. If `shape.origin` is None, the origin becomes the bottom centre of this
            mesh (lowest point at y=0, centred in x and z); otherwise it is kept, so an edited
            shape stays where the original was.
        resolution: grid points per axis.
    Returns:
        (parts, origin (3,)). Parts that end up with no visible faces are left out.
    Raises:
        GenerationFailed: the surface is empty.
    """
    if len(shape) == 0:
        raise GenerationFailed("the model produced no parts; try another seed or prompt")
    values, owner = occupancy_grid(shape, autoencoder, resolution, local_resolution, callback)
    vol = drop_fragments(values, owner).numpy().astype(np.float64)
    verts, faces = mcubes.marching_cubes(vol, 0.0)  # verts in index space (i, j, k) = (x, y, z)
    if len(faces) == 0:
        raise GenerationFailed("the generated shape has an empty surface; try another seed or prompt")
    faces = faces.astype(np.int64)  # PyMCubes winds counter-clockwise seen from the lower values: outward here
    # Owner of each face: at its centre's cell corner with the highest logit (inside the surface).
    centre = verts[faces].mean(1)  # (F, 3)
    base = np.clip(np.floor(centre).astype(np.int64), 0, resolution - 2)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])  # (8, 3)
    idx = base[:, None, :] + corners[None]  # (F, 8, 3)
    corner_values = vol[idx[..., 0], idx[..., 1], idx[..., 2]]  # (F, 8)
    best = idx[np.arange(len(idx)), corner_values.argmax(1)]  # (F, 3)
    face_owner = owner.numpy()[best[:, 0], best[:, 1], best[:, 2]]  # (F,)
    world = (verts * (2 * EXTENT / (resolution - 1)) - EXTENT).astype(np.float32)  # (V, 3)
    origin = shape.origin
    if origin is None:
        lo, hi = world.min(0), world.max(0)
        origin = torch.tensor([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2], dtype=torch.float32)
    world = world - origin.numpy()
    parts = []
    materials = part_materials(shape.category, shape.labels, shape.extra.get("looks"))
    for p, (name, label) in enumerate(zip(shape.names, shape.labels)):
        sel = faces[face_owner == p]
        if len(sel) == 0:
            continue
        used, inverse = np.unique(sel, return_inverse=True)
        parts.append(MeshPart(name, world[used], inverse.reshape(-1, 3).astype(np.int64), material=materials[label]))
    callback("decode", len(shape) + 1, len(shape) + 1)
    return parts, origin
