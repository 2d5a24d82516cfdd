"""The add-on's preparation of a result in Blender's mesh layout (numpy only, off the main thread)."""

import numpy as np
import pytest

from formats.blender_layout import MeshArrays, triangle_edges
from formats.glb import GLBPart, GLBScene


def _reference(faces):
    start, end = faces.reshape(-1), np.roll(faces, -1, axis=1).reshape(-1)
    return sorted({(min(a, b), max(a, b)) for a, b in zip(start, end)}), start, end


@pytest.mark.parametrize("num_vertices", [40, 2**31])  # the second's keys are too wide to pack an index with
def test_triangle_edges_match_a_reference(num_vertices):
    rng = np.random.default_rng(1)
    faces = np.array([rng.permutation(40)[:3] for _ in range(300)])
    edges, corner_edge = triangle_edges(faces, num_vertices)
    reference, start, end = _reference(faces)
    assert [tuple(e) for e in edges] == reference
    assert edges.dtype == np.int32 and corner_edge.dtype == np.int32
    np.testing.assert_array_equal(np.sort(edges[corner_edge], axis=1), np.sort(np.stack([start, end], 1), axis=1))


def test_triangle_edges_of_a_closed_surface_are_shared_by_two_corners():
    trimesh = pytest.importorskip("trimesh")
    sphere = trimesh.creation.icosphere(subdivisions=3)
    faces = np.asarray(sphere.faces)[np.random.default_rng(2).permutation(len(sphere.faces))]
    edges, corner_edge = triangle_edges(faces, len(sphere.vertices))
    assert len(edges) == len(sphere.edges_unique)  # Euler: E = 3F / 2
    assert np.all(np.bincount(corner_edge) == 2)


def test_mesh_arrays_lay_out_corners_edges_and_uvs_the_blender_way():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    uv = np.array([[0, 0], [1, 0], [1, 0.25], [0, 1]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3], [1, 1, 2]])  # the last is degenerate
    arrays = MeshArrays(GLBScene(parts=[GLBPart(name="quad", vertices=vertices, faces=faces, uv=uv)]))
    np.testing.assert_array_equal(arrays.corner_vert, [0, 1, 2, 0, 2, 3])
    np.testing.assert_array_equal(arrays.loop_start, [0, 3])
    assert [tuple(e) for e in arrays.edges] == [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]
    np.testing.assert_allclose(arrays.corner_uv[2], [1, 0.75])  # vertex 2's v flipped for Blender
    np.testing.assert_allclose(arrays.vertices[2], [1, 0, 1])  # glTF +y is Blender's +z
    with pytest.raises(ValueError, match="no triangles"):
        MeshArrays(GLBScene(parts=[GLBPart(name="empty", vertices=vertices, faces=np.zeros((0, 3), int))]))
