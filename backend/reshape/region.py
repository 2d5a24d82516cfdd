"""The part of a mesh a reshape may move, and how its displacement is parametrised.

Vertices of the selected faces move freely; vertices of unselected faces within `border` of the
selection move by a weight falling smoothly from 1 to 0 across that band; every other vertex is
never written. Corners split at UV seams are welded first, so both sides of a seam move alike
and no crack opens.

The displacement is not optimised directly. Following Nicolet et al. 2021 ("Large Steps in
Inverse Rendering of Geometry"), the optimiser moves u and the surface moves by
d = (I + lambda L)^-1 u, L the graph Laplacian of the free vertices with the fixed ones as a
boundary. A gradient that reaches a few vertices (a render's pixels see some of the region)
is spread smoothly over their neighbours, so the surface stays a surface while it moves far,
and the fixed boundary makes the region meet the untouched rest without a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree


@dataclass
class RegionGraph:
    """The welded mesh and who may move.

    Attributes:
        positions: (W, 3) welded vertex positions (float32).
        faces: (F, 3) int64 triangles over the welded vertices.
        weld: (V,) int64, the welded vertex of each input vertex.
        free: (N,) int64 welded vertices that may move.
        weight: (N,) float32 in (0, 1], how much of the displacement each takes.
        selected: (F,) bool, the selected triangles.
    """

    positions: np.ndarray
    faces: np.ndarray
    weld: np.ndarray
    free: np.ndarray
    weight: np.ndarray
    selected: np.ndarray


def region_graph(vertices: np.ndarray, faces: np.ndarray, selected: np.ndarray, border: float) -> RegionGraph:
    """Weld the mesh and find the vertices a reshape of the selected faces may move.

    Args:
        vertices: (V, 3); faces: (F, 3); selected: (F,) bool.
        border: Width of the blended band in the mesh's units; 0 keeps every vertex an
            unselected face uses where it is (the selection's rim stays put).

    Returns:
        The graph.
    """
    vertices = np.asarray(vertices, np.float32)
    positions, weld = np.unique(vertices, axis=0, return_inverse=True)
    weld = weld.reshape(-1).astype(np.int64)
    welded = weld[np.asarray(faces, np.int64)]
    in_selection = np.zeros(len(positions), bool)
    in_selection[welded[selected].reshape(-1)] = True
    outside = np.zeros(len(positions), bool)
    outside[welded[~selected].reshape(-1)] = True
    weight = np.zeros(len(positions), np.float32)
    weight[in_selection & ~outside] = 1.0  # inside the selection
    rim = in_selection & outside
    if border > 0:
        weight[rim] = 1.0
        tree = cKDTree(positions[in_selection])
        candidates = np.nonzero(outside & ~in_selection)[0]
        distance, _ = tree.query(positions[candidates], k=1, distance_upper_bound=border)
        t = np.clip(1 - distance / border, 0, 1)
        weight[candidates] = (t * t * (3 - 2 * t)).astype(np.float32)
    free = np.nonzero(weight > 0)[0]
    return RegionGraph(positions=positions, faces=welded, weld=weld, free=free, weight=weight[free],
                       selected=np.asarray(selected, bool))


class SmoothDisplacement(torch.nn.Module):
    """d = (I + lambda L)^-1 u over the free vertices; positions = rest + weight * d.

    With `along_normals` each free vertex moves along its rest normal only (one number per
    vertex): a relief, a bulge, a dent, never a fold, since neighbours cannot slide over each
    other. Without it, vertices move in 3D (twists, bends), which needs smaller steps.

    Args:
        graph: From `region_graph`.
        smoothness: lambda. Larger spreads each gradient further (Nicolet et al. use 10-100
            for meshes of a few thousand vertices); relative to a vertex's degree.
        along_normals: Move along the rest normals only.
        device: Where positions are made.
    """

    def __init__(self, graph: RegionGraph, smoothness: float = 20.0, along_normals: bool = True,
                 device: str | torch.device = "cpu"):
        super().__init__()
        self.graph = graph
        self.u = torch.nn.Parameter(torch.zeros(len(graph.free), 1 if along_normals else 3, device=device))
        self.rest = torch.from_numpy(graph.positions).to(device)
        self.free = torch.from_numpy(graph.free).to(device)
        self.weight = torch.from_numpy(graph.weight).to(device)[:, None]
        self.normals = _rest_normals(graph).to(device) if along_normals else None
        self._solve = _SparseSolve(_system(graph, smoothness))

    def displacement(self) -> torch.Tensor:
        """(N, 3) displacement of the free vertices (before weighting)."""
        d = self._solve(self.u)
        return d if self.normals is None else d * self.normals

    def positions(self) -> torch.Tensor:
        """(W, 3) welded positions: the rest everywhere, moved where free."""
        moved = self.rest[self.free] + self.weight * self.displacement()
        return self.rest.index_put((self.free,), moved)


def _rest_normals(graph: RegionGraph) -> torch.Tensor:
    """(N, 3) area-weighted unit normals of the free vertices at rest."""
    corners = graph.positions[graph.faces]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(graph.positions, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, graph.faces[:, k], cross)
    normals = normals[graph.free]
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return torch.from_numpy(normals.astype(np.float32))


def _system(graph: RegionGraph, smoothness: float) -> sp.csc_matrix:
    """I + lambda L on the free vertices: L = D - A of the welded mesh's edges, the fixed
    vertices' rows and columns dropped (they are the boundary, held at zero)."""
    edges = np.concatenate([graph.faces[:, [0, 1]], graph.faces[:, [1, 2]], graph.faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    count = len(graph.positions)
    adjacency = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    adjacency = (adjacency + adjacency.T).tocsr()
    adjacency.data[:] = 1.0
    laplacian = sp.diags(np.asarray(adjacency.sum(1)).reshape(-1)) - adjacency
    free = graph.free
    block = laplacian[free][:, free]
    return (sp.identity(len(free)) + smoothness * block).tocsc()


class _SparseSolve:
    """x = M^-1 b for a fixed symmetric positive definite M, factorised once, with the
    gradient M^-1 g (M is symmetric)."""

    def __init__(self, matrix: sp.csc_matrix):
        self.lu = splu(matrix) if matrix.shape[0] else None

    def __call__(self, b: torch.Tensor) -> torch.Tensor:
        return _Solve.apply(b, self)

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        if self.lu is None:
            return b
        out = self.lu.solve(b.detach().double().cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(out)).to(b.device, b.dtype)


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, b, solver):
        ctx.solver = solver
        return solver.solve(b)

    @staticmethod
    def backward(ctx, grad):
        return ctx.solver.solve(grad), None


def region_frame(graph: RegionGraph) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre, mean outward normal, radius) of the selected faces, to aim cameras at them."""
    corners = graph.positions[graph.faces[graph.selected]]  # (S, 3, 3)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    points = corners.reshape(-1, 3)
    centre = (points.min(0) + points.max(0)) / 2
    radius = float(np.linalg.norm(points - centre, axis=1).max())
    normal = cross.sum(0)
    length = float(np.linalg.norm(normal))
    normal = normal / length if length > 1e-12 else np.array([0.0, 0.0, 1.0])
    return centre, normal, max(radius, 1e-6 * math.sqrt(float(np.square(points).sum()) + 1))
