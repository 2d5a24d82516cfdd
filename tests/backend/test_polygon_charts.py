"""An unwrap told which polygon each triangle was cut from keeps quads whole, without overlaps."""

import shlex
import sys

import numpy as np
import pytest
import trimesh

from backend.geometry.glb import read_glb_meshes
from backend.geometry.polygon_charts import MAX_TRIANGLES, cut_polygons, keep_polygons_whole
from backend.geometry.uv import signed_uv_areas, unwrap
from formats.face_parts import POLYGONS_KEY, encode_indices
from formats.glb import write_glb
from tests.fixtures.quad_meshes import bumpy_quad_torus


def texels_covered_twice(faces: np.ndarray, uv: np.ndarray, size: int = 512) -> int:
    """Texel centres inside more than one UV triangle."""
    count = np.zeros((size, size), np.int32)
    for corners in uv[faces] * size:
        low, high = np.floor(corners.min(0)).astype(int), np.ceil(corners.max(0)).astype(int)
        x, y = np.meshgrid(np.arange(low[0], high[0]) + 0.5, np.arange(low[1], high[1]) + 0.5)
        points = np.stack([x.ravel(), y.ravel()], 1)
        sides = [np.cross(corners[(k + 1) % 3] - corners[k], points - corners[k]) for k in range(3)]
        inside = np.all([s > 0 for s in sides], 0) | np.all([s < 0 for s in sides], 0)
        texel = np.clip(points[inside].astype(int), 0, size - 1)
        np.add.at(count, (texel[:, 1], texel[:, 0]), 1)
    return int((count > 1).sum())


def stretch_spread(vertices, faces, layout) -> float:
    """95th over 5th percentile of UV area per surface area: how unevenly texels are spent."""
    corners = vertices[layout.vertex_map[layout.faces]]
    surface = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    uv = layout.uv[layout.faces]
    edges = uv[:, 1:] - uv[:, :1]
    ratio = np.abs(np.cross(edges[:, 0], edges[:, 1])) / surface
    return float(np.percentile(ratio, 95) / np.percentile(ratio, 5))


@pytest.mark.parametrize("quads_per_polygon", [1, 2])  # quads; hexagons of two quads (a fan of 4 triangles)
def test_polygons_stay_whole_in_one_chart_without_overlaps(quads_per_polygon):
    vertices, triangles, quads = bumpy_quad_torus()
    polygons = quads // quads_per_polygon  # the torus's quads (i, j) and (i, j + 1) are neighbours
    plain = unwrap([(vertices, triangles)])[0]
    whole = unwrap([(vertices, triangles)], polygons=[polygons])[0]
    count = polygons.max() + 1
    assert len(cut_polygons(triangles, polygons, plain.faces)) > 0.15 * count  # what xatlas alone does
    assert len(cut_polygons(triangles, polygons, whole.faces)) < 0.03 * count
    # The same triangles in the same order, over the mesh's own vertices, inside the unit square
    assert np.array_equal(whole.vertex_map[whole.faces], triangles) and whole.unwrapped
    assert whole.uv.min() >= 0 and whole.uv.max() <= 1
    # Moved triangles are laid flat beside their quad: no overlap, no extra stretch.
    assert texels_covered_twice(whole.faces, whole.uv) <= texels_covered_twice(plain.faces, plain.uv) + 8
    assert stretch_spread(vertices, triangles, whole) < 1.1 * stretch_spread(vertices, triangles, plain)


def test_meshes_with_and_without_polygons_share_one_atlas():
    vertices, triangles, polygons = bumpy_quad_torus(rows=24, columns=12)
    alone = unwrap([(vertices, triangles)])[0]
    with_other = unwrap([(vertices, triangles), (vertices + 5, triangles)], polygons=[None, polygons])
    assert len(cut_polygons(triangles, polygons, with_other[1].faces)) < len(cut_polygons(triangles, polygons, alone.faces))
    for layout in with_other:
        assert np.array_equal(layout.vertex_map[layout.faces], triangles)
    # One atlas: the two meshes' charts do not overlap each other.
    both = np.concatenate([with_other[0].faces, with_other[1].faces + len(with_other[0].uv)])
    assert texels_covered_twice(both, np.concatenate([w.uv for w in with_other])) <= 8


def test_an_upload_says_which_polygon_each_triangle_came_from():
    vertices, triangles, polygons = bumpy_quad_torus(rows=8, columns=6)
    data = write_glb(vertices, triangles, extras={POLYGONS_KEY: encode_indices(polygons)}, name="torus")
    parts, _ = read_glb_meshes(data)
    assert np.array_equal(parts[0].polygons, polygons)
    wrong_length = write_glb(vertices, triangles, extras={POLYGONS_KEY: encode_indices(polygons[:-1])}, name="torus")
    assert read_glb_meshes(wrong_length)[0][0].polygons is None  # not for this mesh: ignored
    assert read_glb_meshes(write_glb(vertices, triangles, name="torus"))[0][0].polygons is None


def quad_in_two_charts(mirrored: bool):
    """One flat quad (triangles 0-1-2 and 0-2-3) whose second triangle xatlas put in a chart of
    its own; `mirrored`: the first chart's UVs are a mirror image, as xatlas may lay a chart."""
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    flat = vertices[:, :2] * 0.3 + 0.1
    first = flat[[0, 1, 2]] * ([-1, 1] if mirrored else [1, 1]) + ([0.5, 0] if mirrored else [0, 0])
    uv = np.concatenate([first, flat[[0, 2, 3]] + 0.5])
    return vertices, faces, np.array([0, 0]), faces.reshape(-1), np.arange(6).reshape(2, 3), uv


@pytest.mark.parametrize("mirrored", [False, True])
def test_a_moved_triangle_takes_its_charts_winding(mirrored):
    vertex_map, faces, uv, moved = keep_polygons_whole(*quad_in_two_charts(mirrored))
    assert moved == 1 and len(cut_polygons(np.array([[0, 1, 2], [0, 2, 3]]), np.array([0, 0]), faces)) == 0
    areas = signed_uv_areas(uv, faces)
    assert areas[0] * areas[1] > 0  # not folded over the shared diagonal
    assert np.isclose(abs(areas[1]), abs(areas[0]))  # the same shape at the same scale


def test_a_zero_area_triangle_or_a_huge_ngon_is_left_as_xatlas_cut_it():
    vertices, faces, polygons, vertex_map, out_faces, uv = quad_in_two_charts(False)
    vertices[3] = (vertices[0] + vertices[2]) / 2  # the second triangle is a sliver of no area,
    uv[5] = (uv[3] + uv[4]) / 2  # in its chart too
    assert keep_polygons_whole(vertices, faces, polygons, vertex_map, out_faces, uv)[3] == 0
    torus, triangles, _ = bumpy_quad_torus(rows=24, columns=12)
    first = unwrap([(torus, triangles)])[0]
    one_polygon = np.zeros(len(triangles), np.int64)  # 576 triangles: far more than MAX_TRIANGLES
    assert MAX_TRIANGLES < len(triangles) and len(cut_polygons(triangles, one_polygon, first.faces)) == 1
    kept = keep_polygons_whole(torus, triangles, one_polygon, first.vertex_map, first.faces, first.uv)
    assert kept[3] == 0 and np.array_equal(kept[1], first.faces)


def test_a_dense_mesh_is_charted_in_pieces_that_share_one_atlas(monkeypatch):
    from backend.geometry import unwrap_pieces

    vertices, triangles, quads = bumpy_quad_torus()
    pieces = unwrap_pieces.split_into_pieces(vertices, triangles, quads, limit=600)
    assert len(pieces) >= 4 and np.array_equal(np.sort(np.concatenate(pieces)), np.arange(len(triangles)))
    piece_of = np.empty(len(triangles), int)
    for k, piece in enumerate(pieces):
        piece_of[piece] = k
    assert np.array_equal(piece_of[: len(triangles) // 2], piece_of[len(triangles) // 2:])  # a quad in one piece
    monkeypatch.setattr(unwrap_pieces, "PIECE_TRIANGLES", 600)
    layout = unwrap([(vertices, triangles)], polygons=[quads])[0]
    assert np.array_equal(layout.vertex_map[layout.faces], triangles)  # the same triangles, in order
    assert layout.uv.min() >= 0 and layout.uv.max() <= 1
    assert texels_covered_twice(layout.faces, layout.uv) <= 8  # the pieces' charts do not overlap
    assert len(cut_polygons(triangles, quads, layout.faces)) < 0.03 * (len(triangles) // 2)  # quads kept whole


def test_an_exactly_regular_dense_mesh_unwraps():
    # xatlas alone crashed the process (a segfault) on Blender's ico sphere of 6 subdivisions.
    sphere = trimesh.creation.icosphere(subdivisions=6)
    layout = unwrap([(sphere.vertices, sphere.faces)])[0]
    assert np.array_equal(layout.vertex_map[layout.faces], sphere.faces)
    assert stretch_spread(sphere.vertices, sphere.faces, layout) < 2  # texels spread evenly


@pytest.mark.parametrize("child, error, message", [
    # xatlas segfaulted: the mesh is at fault, and UVs of its own get round it
    ("kill -SEGV $$", "InputError", "stopped on this mesh .exit status -11.: give it a UV map"),
    # the system's out-of-memory killer: not the mesh's fault
    ("kill -KILL $$", "GenerationFailed", "killed, most likely out of memory: free memory or give it a UV map"),
    # xatlas answered with NaN UVs (it did on a 3 mm sphere)
    (f"exec {shlex.quote(sys.executable)} -c 'import pickle, sys, numpy as n; sys.stdin.buffer.read(); "
     "pickle.dump([(n.arange(3), n.array([[0, 1, 2]]), n.full((3, 2), n.nan))], sys.stdout.buffer)'",
     "InputError", "gave no usable UVs for this mesh: give it a UV map"),
])
def test_a_failure_in_xatlas_fails_the_unwrap_not_the_backend(tmp_path, monkeypatch, child, error, message):
    from backend import errors

    stand_in = tmp_path / "python"  # stands in for the child's interpreter
    stand_in.write_text(f"#!/bin/sh\n{child}\n")
    stand_in.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stand_in))
    vertices, triangles, _ = bumpy_quad_torus(rows=8, columns=6)
    with pytest.raises(getattr(errors, error), match=message):
        unwrap([(vertices, triangles)])


def test_charts_are_alike_at_any_size_and_meshes_in_one_atlas_keep_their_relative_size():
    sphere = trimesh.creation.uv_sphere(radius=1.0, count=[24, 24])
    used = {}
    for radius in (0.003, 1.0, 300.0):  # a ring's stone in metres, a statue, a building
        layout = unwrap([(sphere.vertices * radius, sphere.faces)])[0]
        assert np.isfinite(layout.uv).all()
        used[radius] = uv_area(layout.uv, layout.faces)
    assert min(used.values()) > 0.5, used  # the atlas is filled alike (NaN at 3 mm before)
    small, large = unwrap([(sphere.vertices * 0.01, sphere.faces), (sphere.vertices * 0.02, sphere.faces)])
    # Twice the size, four times the texels: one texel density across the atlas.
    assert uv_area(large.uv, large.faces) / uv_area(small.uv, small.faces) == pytest.approx(4.0, rel=0.05)


def uv_area(uv, faces):
    return np.abs(signed_uv_areas(uv, faces)).sum()


def test_pieces_halve_a_mesh_whatever_its_shape_and_split_positions_stay_joined():
    from backend.geometry.unwrap_pieces import split_into_pieces
    from backend.geometry.xatlas_charts import unsettled

    # A floor and a pole: most centres share the floor's height, the longest side's low end.
    floor = np.array([[x, y, 0.0] for x in range(40) for y in range(40)])
    cells = np.array([[i * 40 + j, i * 40 + j + 40, i * 40 + j + 1] for i in range(39) for j in range(39)])
    pole = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 500.0]])
    vertices = np.concatenate([floor, pole])
    faces = np.concatenate([cells, [[1600, 1601, 1602]]])
    pieces = split_into_pieces(vertices, faces, limit=200)
    assert max(map(len, pieces)) <= 200 and sum(map(len, pieces)) == len(faces)
    # Copies of one position (a mesh split at sharp edges) stay one position for xatlas.
    moved = unsettled(np.concatenate([floor, floor[:10]]))
    assert np.array_equal(moved[-10:], moved[:10]) and not np.array_equal(moved[:10] - moved[0], floor[:10] - floor[0])


def test_a_mesh_split_at_sharp_edges_keeps_its_charts():
    ball = trimesh.creation.icosphere(subdivisions=3)
    split = ball.vertices[ball.faces].reshape(-1, 3)  # flat shading: every triangle its own corners
    faces = np.arange(len(split)).reshape(-1, 3)
    assert charts(unwrap([(split, faces)])[0]) <= 2 * charts(unwrap([(ball.vertices, ball.faces)])[0])


def charts(layout) -> int:
    """Charts: triangles joined by corners at the same place with the same UV."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    corner = np.concatenate([layout.vertices, layout.uv], 1)[layout.faces].reshape(-1, 5).round(6)
    _, key = np.unique(corner, axis=0, return_inverse=True)
    triangle = np.repeat(np.arange(len(layout.faces)), 3)
    incidence = coo_matrix((np.ones(len(key)), (triangle, key.reshape(-1)))).tocsr()
    return connected_components(incidence @ incidence.T, directed=False)[0]


def test_a_cancel_while_xatlas_works_stops_its_process(monkeypatch):
    import subprocess

    class Cancelled(Exception):
        pass

    def cancel():
        raise Cancelled

    started = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    vertices, triangles, _ = bumpy_quad_torus(rows=120, columns=60)  # long enough to be waited for
    with pytest.raises(Cancelled):
        unwrap([(vertices, triangles)], on_wait=cancel)
    assert len(started) == 1 and started[0].poll() is not None  # the child is gone
