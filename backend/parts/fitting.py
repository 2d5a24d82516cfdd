"""Fit a part shape to a mesh the built-in model did not generate, so that its parts can be edited.

The mesh is cut into parts: by mesh node, then into connected pieces, with the selected faces
always apart from the rest (so selecting the legs of a single-piece chair makes them parts).
Each part gets a Gaussian (its box, in the training data's frame), a label (the nearest part of
the category's training shapes, at most as many of a label as its slot template holds) and a
latent (its occupancy encoded in the box orientation the decoder reproduces best, then refined
through the decoder). The parts remember their triangles: a kept part is written back as the
artist made it, only regenerated parts are decoded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from backend.geometry.winding import lattice_winding
from backend.errors import InputError
from backend.results import MeshPart

from .autoencoder import PartAutoencoder, lattice
from .representation import PartShape, number_parts, rotation_to_6d
from .shapes import BOUND

MIN_HALF_EXTENT = 0.015  # a flat panel still gets a box (training frame units; shapes span ±0.95)
TINY_AREA = 0.003  # pieces with less of the surface area than this join their nearest neighbour
LATENT_STEPS = 100  # refinement of the encoded latents through the decoder


@dataclass
class FittedMesh:
    """A fitted part shape and where each part's triangles are in the uploaded mesh.

    Attributes:
        shape: the parts in the training frame; `shape.origin` and `shape.extra`'s "frame_scale"
            and "frame_yaw" map them back onto the mesh (see `to_mesh_frame`).
        faces: part name → indices of its triangles in the upload (all meshes, in file order).
        selected: names of the parts made of selected faces.
    """

    shape: PartShape
    faces: dict[str, np.ndarray]
    selected: list[str] = field(default_factory=list)


def merge_meshes(meshes: list[MeshPart]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All meshes as one: vertices (V, 3) in their own dtype, faces (T, 3) int64 in file order,
    and the mesh each triangle came from (T,)."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])[:-1]
    vertices = np.concatenate([np.asarray(m.vertices) for m in meshes])
    faces = np.concatenate([np.asarray(m.faces, np.int64) + o for m, o in zip(meshes, offsets)])
    return vertices, faces, np.repeat(np.arange(len(meshes)), [len(m.faces) for m in meshes])


def frame_of(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and scale that put the mesh in the training frame: bounding box centred, longest side 2·BOUND."""
    lo, hi = vertices.min(0), vertices.max(0)
    size = float((hi - lo).max())
    if not np.isfinite(size) or size <= 0:
        raise InputError("the mesh is flat or empty: it has no extent to fit parts to")
    return (lo + hi) / 2, 2 * BOUND / size


def yaw_matrix(quarter_turns: int) -> np.ndarray:
    """Rotation by quarter_turns × 90° about the up axis (glTF +Y). (3, 3)"""
    c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][int(quarter_turns) % 4]
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float64)


def to_shape_frame(points: np.ndarray, shape: PartShape) -> np.ndarray:
    """Mesh points (N, 3) → the shape's frame: turned by the fit's yaw, scaled, offset by the origin."""
    turn, scale = yaw_matrix(shape.extra.get("frame_yaw", 0)), float(shape.extra.get("frame_scale", 1.0))
    origin = np.zeros(3) if shape.origin is None else shape.origin.numpy()
    return (np.asarray(points, np.float64) @ turn.T) * scale + origin


def to_mesh_frame(decoded: np.ndarray, shape: PartShape) -> np.ndarray:
    """Decoded vertices (N, 3), which are shape-frame points minus the origin → the mesh's frame."""
    turn, scale = yaw_matrix(shape.extra.get("frame_yaw", 0)), float(shape.extra.get("frame_scale", 1.0))
    if scale == 1.0 and not shape.extra.get("frame_yaw", 0):
        return decoded  # a built-in result: decoded in its own frame
    return ((np.asarray(decoded, np.float64) @ turn) / scale).astype(np.float32)


def split_pieces(vertices: np.ndarray, faces: np.ndarray, groups: np.ndarray,
                 vertex_ids: np.ndarray | None = None) -> list[np.ndarray]:
    """Connected pieces of the triangles within each group (node × selected). Vertices with the
    same `vertex_ids` (the add-on's: one Blender vertex split at UV seams) count as one; without
    them (a GLB from elsewhere), vertices at the same position do. Returns face index arrays."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if vertex_ids is not None:
        _, welded = np.unique(vertex_ids, return_inverse=True)
    else:
        span = float(np.ptp(vertices, axis=0).max()) or 1.0
        _, welded = np.unique(np.round(vertices / span * 1e6).astype(np.int64), axis=0, return_inverse=True)
    welded = welded.reshape(-1)
    pieces = []
    for group in np.unique(groups):
        index = np.nonzero(groups == group)[0]
        tri = welded[faces[index]]  # (f, 3)
        a, b = tri.reshape(-1), tri[:, [1, 2, 0]].reshape(-1)
        n = int(welded.max()) + 1
        _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
        piece = label[tri[:, 0]]
        pieces += [index[piece == k] for k in np.unique(piece)]
    return pieces


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    t = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)


def merge_pieces(pieces: list[np.ndarray], selected: list[bool], vertices: np.ndarray, faces: np.ndarray,
                 limit: int) -> tuple[list[np.ndarray], list[bool]]:
    """Join the smallest piece to the nearest piece of the same selection state until no piece is
    tiny (screws, stitching) and there are at most `limit` (a forest of leaves becomes clumps).
    Nearness: the gap between bounding boxes. O(pieces²) in numpy: fine for thousands."""
    pieces, state = list(pieces), np.array(selected, bool)
    areas = np.array([triangle_areas(vertices, faces[p]).sum() for p in pieces])
    corners = [vertices[faces[p]].reshape(-1, 3) for p in pieces]
    lo, hi = np.array([c.min(0) for c in corners]), np.array([c.max(0) for c in corners])
    alive = np.ones(len(pieces), bool)
    tiny = TINY_AREA * max(areas.sum(), 1e-12)
    while True:
        # a piece can join another only if one more of its selection state is left
        joinable = alive & (np.bincount(state[alive], minlength=2)[state.astype(int)] > 1)
        candidates = np.nonzero(joinable & ((areas < tiny) | (alive.sum() > limit)))[0]
        if not len(candidates):
            break
        i = candidates[areas[candidates].argmin()]
        gap = np.linalg.norm(np.maximum(0, np.maximum(lo[i] - hi, lo - hi[i])), axis=1)
        gap[~alive | (state != state[i])] = np.inf
        gap[i] = np.inf
        j = int(gap.argmin())
        pieces[j] = np.concatenate([pieces[j], pieces[i]])
        areas[j] += areas[i]
        lo[j], hi[j] = np.minimum(lo[j], lo[i]), np.maximum(hi[j], hi[i])
        alive[i] = False
    keep = np.nonzero(alive)[0]
    return [pieces[k] for k in keep], [bool(state[k]) for k in keep]


def fit_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre (3,), rotation (3, 3) (columns = local axes) and half extents (3,) of a box around points.

    The world-aligned box unless an oriented one (principal axes) is much tighter, as for a
    slanted leg; the oriented box's axes are ordered and signed to stay close to the world's,
    the way the training parts are framed.
    """
    lo, hi = points.min(0), points.max(0)
    center, rotation, half = (lo + hi) / 2, np.eye(3), (hi - lo) / 2
    if len(points) >= 4:
        _, _, axes = np.linalg.svd(points - points.mean(0), full_matrices=False)
        axes = axes.T  # (3, 3) columns = principal directions
        order = []
        for k in range(3):  # the principal axis most aligned with each world axis, greedily
            rest = [c for c in range(3) if c not in order]
            order.append(max(rest, key=lambda c: abs(axes[k, c])))
        axes = axes[:, order] * np.sign(np.diag(axes[:, order]) + 1e-12)
        if np.linalg.det(axes) < 0:
            axes[:, 2] *= -1
        local = points @ axes
        olo, ohi = local.min(0), local.max(0)
        if np.prod(np.maximum(ohi - olo, 1e-6)) < 0.7 * np.prod(np.maximum(hi - lo, 1e-6)):
            center, rotation, half = axes @ ((olo + ohi) / 2), axes, (ohi - olo) / 2
    return center, rotation, np.maximum(half, MIN_HALF_EXTENT)


@functools.lru_cache(maxsize=32)
def reference_parts(category: str, samples: int = 48) -> tuple[list[str], np.ndarray]:
    """Labels and features (centre, world-aligned half size) of the parts of `samples` training
    shapes of the category: what a fitted part's label is read from."""
    from .data import category_shapes

    labels, features = [], []
    for shape in category_shapes(category, max(samples, 200))[:samples]:  # one cache with crossing_labels
        for part in shape.parts:
            labels.append(part.label)
            features.append(np.concatenate([part.center, np.abs(part.rotation) @ part.half_extents]))
    return labels, np.asarray(features)


def assign_labels(features: np.ndarray, category: str, template: list[str]) -> tuple[list[str], float]:
    """A label per fitted part (features (N, 6) as in `reference_parts`): the labels of the nearest
    training parts, with no label used more often than the category's slot template allows.
    Returns the labels and their mean distance to those training parts (lower: a better match)."""
    from scipy.optimize import linear_sum_assignment

    ref_labels, ref = reference_parts(category)
    names = sorted(set(ref_labels))
    distance = np.linalg.norm(features[:, None, :3] - ref[None, :, :3], axis=-1) + \
        np.linalg.norm(features[:, None, 3:] - ref[None, :, 3:], axis=-1)  # (N, K)
    by_label = np.stack([distance[:, [k for k, l in enumerate(ref_labels) if l == name]].min(1) for name in names], 1)
    best = [names[k] for k in by_label.argmin(1)]
    slots = [l for l in template if l in names] or names
    labels = list(best)
    if len(features) <= len(slots):  # else more parts than the template has room for: nearest, unbounded
        rows, cols = linear_sum_assignment(by_label[:, [names.index(l) for l in slots]])
        for r, c in zip(rows, cols):
            labels[r] = slots[c]
    cost = float(np.mean([by_label[i, names.index(label)] for i, label in enumerate(labels)]))
    return labels, cost


def local_occupancy(vertices: np.ndarray, faces: np.ndarray, center, rotation, half, grid: int) -> np.ndarray:
    """Occupancy of one part on the autoencoder's lattice over its box: inside by winding number;
    a part that encloses almost nothing (an open panel, a single sheet) by the cells its surface crosses."""
    used, inverse = np.unique(faces, return_inverse=True)
    local = ((vertices[used] - center) @ rotation) / half  # the part's box becomes [-1, 1]^3
    inside = lattice_winding(local, inverse.reshape(-1, 3), grid) > 0.5
    if inside.mean() >= 0.02:
        return inside
    samples = surface_samples(local, inverse.reshape(-1, 3), 4000)
    cells = np.clip(((samples + 1) / 2 * grid).astype(int), 0, grid - 1)
    shell = np.zeros((grid,) * 3, bool)
    shell[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    return shell | inside


def surface_samples(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) points spread over the triangles by area (deterministic)."""
    rng = np.random.default_rng(seed)
    area = triangle_areas(vertices, faces)
    p = area / area.sum() if area.sum() > 0 else None
    t = vertices[faces[rng.choice(len(faces), n, p=p)]]
    u, v = rng.random((2, n, 1))
    flip = (u + v) > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    return t[:, 0] + u * (t[:, 1] - t[:, 0]) + v * (t[:, 2] - t[:, 0])


def cube_rotations() -> np.ndarray:
    """The 24 rotations that map the cube [-1, 1]^3 onto itself (signed axis permutations, det +1). (24, 3, 3)"""
    import itertools

    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[list(perm), range(3)] = signs
            if np.linalg.det(m) > 0:
                out.append(m)
    return np.stack(out)


def reframe(grid: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """The occupancy grid (g, g, g) seen in the box frame turned by `turn` (a cube rotation):
    cell l of the result is cell turn @ l of `grid` (the lattice is symmetric, so no resampling)."""
    g = grid.shape[0]
    index = np.stack(np.meshgrid(*[np.arange(g)] * 3, indexing="ij"), -1) * 2 - (g - 1)  # (g, g, g, 3) odd ints
    source = (index @ turn.T.astype(np.int64) + (g - 1)) // 2
    return grid[source[..., 0], source[..., 1], source[..., 2]]


@torch.no_grad()
def best_frames(autoencoder: PartAutoencoder, occupancy: np.ndarray, tie: float = 0.02) -> tuple[np.ndarray, torch.Tensor]:
    """For each part grid (P, g, g, g), the cube rotation of its box whose occupancy the autoencoder
    reproduces best (IoU on the lattice, the unturned box unless another is better by `tie`), and
    the encoded latents in that frame. A box fitted around a cone does not know which way it
    points; the decoder does. Returns turns (P, 3, 3) and latents (P, L)."""
    device = next(autoencoder.parameters()).device
    turns = cube_rotations()  # turns[0] is the identity
    g = occupancy.shape[1]
    points = lattice(g).to(device)[None]
    best_turn, best_z = np.zeros((len(occupancy), 3, 3)), []
    for p, grid in enumerate(occupancy):
        variants = torch.as_tensor(np.stack([reframe(grid, t) for t in turns]), dtype=torch.float32, device=device)
        z = autoencoder.encode(variants)  # (24, L)
        pred = autoencoder.decode(z, points.expand(len(z), -1, -1)) > 0  # (24, g^3)
        truth = variants.reshape(len(z), -1) > 0.5
        iou = (pred & truth).sum(1) / (pred | truth).sum(1).clamp(min=1)
        iou[0] += tie
        k = int(iou.argmax())
        best_turn[p], _ = turns[k], best_z.append(z[k].cpu())
    return best_turn, torch.stack(best_z)


def refine_latents(autoencoder: PartAutoencoder, latents: torch.Tensor, occupancy: np.ndarray,
                   steps: int = LATENT_STEPS, points_per_step: int = 512, seed: int = 0) -> torch.Tensor:
    """Gradient steps on the latents alone (decoder fixed) so that the decoder reproduces the grids
    (P, g, g, g) better than the encoder's one-shot guess; random lattice points each step."""
    device = next(autoencoder.parameters()).device
    target = torch.as_tensor(occupancy.reshape(len(occupancy), -1), dtype=torch.float32, device=device)
    points = lattice(occupancy.shape[1]).to(device)
    z = latents.clone().to(device).requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=0.02)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(len(points), (points_per_step,), generator=generator).to(device)
        logits = autoencoder.decode(z, points[pick][None].expand(len(z), -1, -1))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target[:, pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return z.detach().cpu()


def fit_mesh(autoencoder: PartAutoencoder, meshes: list[MeshPart], face_mask: np.ndarray | None, category: str,
             template: list[str], max_parts: int, prompt: str = "", vertex_ids: np.ndarray | None = None) -> FittedMesh:
    """Fit parts to `meshes` (the upload, glTF axes, +Y up); `face_mask` (one flag per triangle,
    file order) or None; `vertex_ids` (one per uploaded vertex: the artist's vertex it copies) or
    None. The mesh may face any of the four horizontal directions: the quarter turn whose parts
    best match the category's training parts is used."""
    vertices, faces, node = merge_meshes(meshes)
    vertices = vertices.astype(np.float64)
    center, scale = frame_of(vertices)
    centred = (vertices - center) * scale  # the training frame before any turn
    selected = np.zeros(len(faces), bool) if face_mask is None else np.asarray(face_mask) != 0
    pieces = split_pieces(centred, faces, node * 2 + selected, vertex_ids)
    pieces, chosen = merge_pieces(pieces, [bool(selected[p[0]]) for p in pieces], centred, faces, max_parts)
    fits = []
    for yaw in range(4):
        normalised = centred @ yaw_matrix(yaw).T
        boxes = [fit_box(normalised[np.unique(faces[p])]) for p in pieces]
        features = np.array([np.concatenate([c, np.abs(r) @ h]) for c, r, h in boxes])
        labels, cost = assign_labels(features, category, template)
        fits.append((cost, yaw, normalised, boxes, labels))
    _, yaw, normalised, boxes, labels = min(fits, key=lambda f: f[0])
    grid = autoencoder.config.grid
    occupancy = np.stack([local_occupancy(normalised, faces[p], *box, grid) for p, box in zip(pieces, boxes)])
    turns, latents = best_frames(autoencoder, occupancy)
    boxes = [(c, r @ t, np.abs(t).T @ h) for (c, r, h), t in zip(boxes, turns)]
    latents = refine_latents(autoencoder, latents, np.stack([reframe(o, t) for o, t in zip(occupancy, turns)]))
    gaussians = torch.tensor(np.array([np.concatenate([c, rotation_to_6d(torch.as_tensor(r)).numpy(), h, [1.0]])
                                       for c, r, h in boxes]), dtype=torch.float32)
    names = number_parts(labels, gaussians[:, :3])
    origin = torch.tensor(-scale * (yaw_matrix(yaw) @ center), dtype=torch.float32)  # see to_shape_frame
    shape = PartShape(names, labels, gaussians, latents, origin, prompt, category,
                      {"frame_scale": float(scale), "frame_yaw": yaw, "source_parts": list(names)})
    return FittedMesh(shape, dict(zip(names, pieces)), [n for n, s in zip(names, chosen) if s])
