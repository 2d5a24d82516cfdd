"""Keep each polygon of the artist's mesh in one UV chart after an xatlas unwrap.

xatlas's Python binding takes triangles only, so it may put the two triangles of a quad (or
the fan of an n-gon) into different charts. A corner of the artist's polygon holds one UV,
so such a polygon could only come back cut into triangles. Here each cut polygon is made
whole: its triangles that lie in other charts are unfolded, flat and at the chart's scale,
across the edges they share with the polygon's triangles in one chart, wound as those are.
A polygon stays cut when no chart can take it without a fold or an overlap; an n-gon of more
than `MAX_TRIANGLES` triangles is left as xatlas cut it (a large region, rarely flat enough
to lay out in one piece, and each try costs a search of the chart). The caller then has
xatlas pack the changed charts again (`unwrap` does).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

_EPS = 1e-9
MAX_TRIANGLES = 64  # per polygon tried


def keep_polygons_whole(vertices: np.ndarray, faces: np.ndarray, polygons: np.ndarray, vertex_map: np.ndarray,
                        out_faces: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Move the triangles of cut polygons into one chart.

    Args:
        vertices: (N, 3) the mesh's positions.
        faces: (M, 3) its triangles.
        polygons: (M,) the polygon each triangle was cut from.
        vertex_map: (K,) original vertex of each unwrapped vertex (xatlas's output).
        out_faces: (M, 3) the triangles over unwrapped vertices, in `faces`' order.
        uv: (K, 2) UV of each unwrapped vertex.

    Returns:
        (vertex_map, out_faces, uv, moved): the layout with the moved triangles (unused
        vertices dropped), and how many polygons were made whole.
    """
    cut = cut_polygons(faces, polygons, out_faces)
    if not len(cut):
        return vertex_map, out_faces, uv, 0
    order = np.argsort(polygons, kind="stable")
    starts = np.searchsorted(polygons[order], cut)
    ends = np.searchsorted(polygons[order], cut, side="right")
    tried = ends - starts <= MAX_TRIANGLES
    starts, ends = starts[tried], ends[tried]
    layout = _Layout(vertices, faces, vertex_map, out_faces, uv, spare=3 * int((ends - starts).sum()))
    moved = sum(layout.make_whole(order[a:b]) for a, b in zip(starts, ends))
    return (*layout.arrays(), moved)


def cut_polygons(faces: np.ndarray, polygons: np.ndarray, out_faces: np.ndarray) -> np.ndarray:
    """Polygons whose triangles give one of their corners two different unwrapped vertices."""
    corner_polygon = np.repeat(np.asarray(polygons, np.int64), 3)
    pairs = np.unique(np.stack([corner_polygon, faces.reshape(-1), out_faces.reshape(-1)], 1), axis=0)
    same_corner = np.all(pairs[1:, :2] == pairs[:-1, :2], axis=1)  # one (polygon, vertex), two UVs
    return np.unique(pairs[1:, 0][same_corner])


class _Placement(NamedTuple):
    """A polygon's triangles laid into one chart (not yet written)."""

    moved: dict  # triangle -> (3, 2) its new corner UVs
    corner: dict  # vertex -> (2,) its UV in the chart
    inside: list  # the polygon's triangles already in the chart


class _Layout:
    """The unwrap being changed: its UVs (growing as triangles move) and each triangle's chart."""

    def __init__(self, vertices, faces, vertex_map, out_faces, uv, spare: int):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        self.vertices = np.asarray(vertices, np.float64)
        self.faces, self.out_faces = faces, out_faces.copy()
        m, k = len(out_faces), len(uv)
        self.vertex_map = list(vertex_map)
        self.uv_all = np.empty((k + spare, 2))  # room for every corner a moved triangle may add
        self.uv_all[:k] = uv
        incidence = coo_matrix((np.ones(3 * m), (np.repeat(np.arange(m), 3), out_faces.reshape(-1))), shape=(m, k))
        _, self.chart = connected_components((incidence @ incidence.T).tocsr(), directed=False)
        self.members = _group(self.chart)  # chart -> its triangles (one moved out stays listed)
        corners = self.uv_all[out_faces]  # (M, 3, 2)
        self.low, self.high = corners.min(1), corners.max(1)  # UV bounds per triangle

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        used, faces = np.unique(self.out_faces, return_inverse=True)
        return (np.asarray(self.vertex_map, np.int64)[used], faces.reshape(-1, 3).astype(np.int64),
                self.uv_all[used].astype(np.float32))

    def make_whole(self, triangles: np.ndarray) -> bool:
        """Put every triangle of one polygon into one of its charts; False when none can take it."""
        charts, counts = np.unique(self.chart[triangles], return_counts=True)
        for target in charts[np.argsort(-counts, kind="stable")]:
            placed = self._unfold_into(triangles, target)
            if placed is not None:
                self._commit(placed, target)
                return True
        return False

    def _unfold_into(self, triangles, target) -> _Placement | None:
        """New corner UVs for the polygon's triangles outside chart `target`, laid out
        breadth-first from those inside it; None when one cannot be laid without a fold or
        an overlap, or none is outside."""
        inside = [t for t in triangles if self.chart[t] == target]
        outside = {t for t in triangles if self.chart[t] != target}
        if not outside:
            return None
        corner = {int(self.faces[t, k]): self.uv_all[self.out_faces[t, k]] for t in inside for k in range(3)}
        laid = {t: self.uv_all[self.out_faces[t]] for t in inside}  # triangle -> (3, 2) UVs in face order
        sharing = {}  # edge -> the polygon's triangles that have it
        for t in triangles:
            for edge in _edges(self.faces[t]):
                sharing.setdefault(edge, []).append(t)
        members = self.members[target]
        members = members[self.chart[members] == target]
        queue, moved = deque(inside), {}
        while queue:
            mate = queue.popleft()
            for edge in _edges(self.faces[mate]):
                for t in sharing[edge]:
                    if t not in outside or t in moved:
                        continue
                    triangle = self._lay_across(t, edge, laid[mate], corner)
                    if triangle is None:
                        return None
                    low, high = triangle.min(0), triangle.max(0)
                    near = members[np.all(self.high[members] > low, 1) & np.all(self.low[members] < high, 1)]
                    if _overlaps(triangle, np.concatenate([self.uv_all[self.out_faces[near]],
                                                           np.array(list(moved.values())).reshape(-1, 3, 2)])):
                        return None
                    moved[t] = laid[t] = triangle
                    queue.append(t)
        return _Placement(moved, corner, inside) if len(moved) == len(outside) else None

    def _lay_across(self, t, edge, mate_uv, corner) -> np.ndarray | None:
        """(3, 2) UVs of triangle `t` flat across `edge` from the laid triangle `mate_uv`,
        wound as it is (the triangles of one polygon share its winding); None if it folds."""
        winding = _signed_area(mate_uv)
        if not winding:
            return None
        z = next(int(v) for v in self.faces[t] if int(v) not in edge)
        x, y = edge
        if z in corner:
            candidates = [corner[z]]
        else:
            candidates = _unfold(corner[x], corner[y], *self.vertices[[x, y, z]])
            if candidates is None:
                return None
        for uv in candidates:
            triangle = np.array([uv if int(v) == z else corner[int(v)] for v in self.faces[t]])
            if _signed_area(triangle) * winding > 0:
                corner[z] = uv
                return triangle
        return None

    def _commit(self, placed: _Placement, target) -> None:
        """Give the moved triangles their new corners (shared with the chart where they meet it)."""
        index = {}
        for t in placed.inside:  # corners the chart already has
            for k in range(3):
                index[int(self.faces[t, k])] = int(self.out_faces[t, k])
        fresh = []
        for t in placed.moved:
            for k in range(3):
                v = int(self.faces[t, k])
                if v not in index:
                    index[v] = len(self.vertex_map) + len(fresh)
                    fresh.append(v)
                self.out_faces[t, k] = index[v]
            self.chart[t] = target
            self.low[t], self.high[t] = placed.moved[t].min(0), placed.moved[t].max(0)
        self.members[target] = np.concatenate([self.members[target], np.fromiter(placed.moved, np.int64)])
        if fresh:
            start = len(self.vertex_map)
            self.uv_all[start:start + len(fresh)] = [placed.corner[v] for v in fresh]
            self.vertex_map.extend(fresh)


def _group(labels: np.ndarray) -> dict:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return {int(labels[g[0]]): g for g in np.split(order, bounds)}


def _edges(triangle) -> list[tuple[int, int]]:
    a, b, c = (int(v) for v in triangle)
    return [(min(a, b), max(a, b)), (min(b, c), max(b, c)), (min(a, c), max(a, c))]


def _signed_area(triangle: np.ndarray) -> float:
    """Twice the UV triangle's signed area, 0 for a sliver (below 1e-9 of its longest edge squared)."""
    (ax, ay), (bx, by), (cx, cy) = triangle
    area = float((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    longest = float(max(np.sum((triangle - np.roll(triangle, 1, axis=0)) ** 2, axis=1)))
    return area if abs(area) > 1e-9 * longest else 0.0


def _unfold(ua, ub, pa, pb, pc) -> tuple[np.ndarray, np.ndarray] | None:
    """The two UVs `pc` can take laid flat beside the UV edge (ua, ub), one on each side,
    keeping the triangle's shape at the edge's UV scale. None for a degenerate edge."""
    edge, uv_edge = pb - pa, ub - ua
    length, uv_length = float(np.dot(edge, edge)) ** 0.5, float(np.dot(uv_edge, uv_edge)) ** 0.5
    if length < _EPS or uv_length < _EPS:
        return None
    along = float(np.dot(pc - pa, edge)) / length ** 2
    height = float(np.linalg.norm(pc - pa - along * edge)) * uv_length / length
    foot, normal = ua + along * uv_edge, np.array([-uv_edge[1], uv_edge[0]]) / uv_length
    return foot + height * normal, foot - height * normal


def _overlaps(triangle: np.ndarray, near: np.ndarray) -> bool:
    """Whether the UV triangle (3, 2) overlaps any of `near` (K, 3, 2) by more than touching."""
    if not len(near):
        return False
    tolerance = 1e-7 * max(float(np.ptp(triangle, axis=0).max()), _EPS)
    first = np.broadcast_to(triangle, near.shape)
    apart = np.zeros(len(near), bool)
    for shape in (first, near):  # separating axis: the edge normals of either triangle
        for i in range(3):
            edge = shape[:, (i + 1) % 3] - shape[:, i]
            axis = np.stack([-edge[:, 1], edge[:, 0]], 1)
            axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), _EPS)
            p, q = np.einsum("kj,kij->ki", axis, first), np.einsum("kj,kij->ki", axis, near)
            apart |= (p.max(1) <= q.min(1) + tolerance) | (q.max(1) <= p.min(1) + tolerance)
    return not apart.all()
