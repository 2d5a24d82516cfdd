"""The add-on's pure GLB reader/writer and array helpers, tested without Blender."""

import io
import json
import struct

import numpy as np
import pytest

from formats.glb import GLBError, read_glb, write_glb
from formats.mesh_arrays import blender_to_gltf, flip_v, gltf_to_blender, weld_corners

trimesh = pytest.importorskip("trimesh")


def _box_scene():
    seat = trimesh.creation.box(extents=(2.0, 0.2, 1.0))
    seat.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(seat.vertices), 1)).astype(np.uint8)
    leg = trimesh.creation.box(extents=(0.1, 1.0, 0.1))
    scene = trimesh.Scene()
    scene.add_geometry(seat, node_name="seat", geom_name="seat")
    scene.add_geometry(leg, node_name="leg.0", geom_name="leg.0",
                       transform=trimesh.transformations.translation_matrix([0.5, -0.5, 0.25]))
    scene.metadata["diffusion3d"] = {"model": "builtin", "parts": ["seat", "leg.0"]}
    return scene, seat, leg


def test_reads_trimesh_scene_with_parts_colours_transforms_and_extras():
    scene, seat, leg = _box_scene()
    result = read_glb(scene.export(file_type="glb"))
    assert [p.name for p in result.parts] == ["seat", "leg.0"]
    assert result.metadata == {"model": "builtin", "parts": ["seat", "leg.0"]}
    got_seat, got_leg = result.parts
    assert got_seat.vertices.shape == seat.vertices.shape and got_seat.faces.shape == seat.faces.shape
    np.testing.assert_allclose(got_seat.colors, np.tile([1, 0, 0, 1], (len(seat.vertices), 1)), atol=1e-6)
    np.testing.assert_allclose(got_leg.vertices, leg.vertices + [0.5, -0.5, 0.25], atol=1e-6)
    assert got_leg.colors is None


def test_writer_round_trips_through_reader_and_trimesh():
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(30, 3)).astype(np.float32)
    faces = rng.integers(0, 30, (40, 3))
    uv = rng.random((30, 2)).astype(np.float32)
    colors = rng.random((30, 4)).astype(np.float32)
    data = write_glb(vertices, faces, uv=uv, colors=colors, extras={"diffusion3d": {"a": [1, 2]}}, name="Chair")
    assert len(data) % 4 == 0
    result = read_glb(data)
    (part,) = result.parts
    assert part.name == "Chair"
    np.testing.assert_array_equal(part.faces, faces)  # triangle order kept: face masks line up
    np.testing.assert_allclose(part.vertices, vertices)
    np.testing.assert_allclose(part.uv, uv)
    np.testing.assert_allclose(part.colors, colors)
    assert result.metadata == {"a": [1, 2]}
    loaded = trimesh.load(io.BytesIO(data), file_type="glb", process=False)
    mesh = next(iter(loaded.geometry.values()))
    assert mesh.faces.shape == (40, 3)


def _glb_from(doc: dict, binary: bytes) -> bytes:
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js + \
        struct.pack("<II", len(binary), 0x004E4942) + binary


def test_every_chunk_the_writer_packs_is_four_byte_aligned():
    """The glTF spec asks for it; our reader would not notice, other tools refuse the file."""
    for n in range(4):  # one of these JSON documents has an odd length unpadded
        data = write_glb(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]), extras={"note": "x" * n})
        offset = 12
        assert struct.unpack_from("<I", data, 8)[0] == len(data)
        while offset < len(data):
            length = struct.unpack_from("<I", data, offset)[0]
            assert length % 4 == 0, (n, offset, length)
            offset += 8 + length
        assert offset == len(data)


def test_interleaved_ushort_colours_trs_hierarchy_strip_and_texture():
    png = b"\x89PNG\r\n\x1a\nfake"
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    colors = np.array([[65535, 0, 0], [0, 65535, 0], [0, 0, 65535], [65535, 65535, 65535]], np.uint16)
    texcoords = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    # Interleave position (12 B) + colour (6 B) + pad (2 B) = stride 20.
    inter = bytearray()
    for p, c in zip(positions, colors):
        inter += p.tobytes() + c.tobytes() + b"\0\0"
    indices = np.array([0, 1, 2, 3], np.uint8)
    binary = bytes(inter) + texcoords.tobytes() + indices.tobytes() + b"\0" * 4 + png
    off_uv, off_idx = len(inter), len(inter) + texcoords.nbytes
    off_png = off_idx + 8
    doc = {
        "asset": {"version": "2.0", "extras": {"diffusion3d": {"from": "asset"}}},
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "root", "translation": [0, 0, 5], "children": [1]},
                  {"name": "quad", "mesh": 0, "rotation": [0, 0, 0.7071068, 0.7071068], "scale": [2, 2, 2]}],
        "meshes": [{"name": "m", "primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1, "TEXCOORD_0": 2},
                                                 "indices": 3, "mode": 5, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "baseColorFactor": [1, 1, 1, 1]}}],
        "textures": [{"source": 0}],
        "images": [{"bufferView": 3, "mimeType": "image/png", "name": "albedo"}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(inter), "byteStride": 20},
                        {"buffer": 0, "byteOffset": off_uv, "byteLength": texcoords.nbytes},
                        {"buffer": 0, "byteOffset": off_idx, "byteLength": 4},
                        {"buffer": 0, "byteOffset": off_png, "byteLength": len(png)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3"},
                      {"bufferView": 0, "byteOffset": 12, "componentType": 5123, "normalized": True, "count": 4, "type": "VEC3"},
                      {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2"},
                      {"bufferView": 2, "componentType": 5121, "count": 4, "type": "SCALAR"}],
        "buffers": [{"byteLength": len(binary)}],
    }
    result = read_glb(_glb_from(doc, binary))
    (part,) = result.parts
    assert part.name == "quad"
    np.testing.assert_array_equal(part.faces, [[0, 1, 2], [2, 1, 3]])  # strip, odd triangle flipped
    # 90° about z, scale 2, then +5 in z: (1, 0, 0) → (0, 2, 5).
    np.testing.assert_allclose(part.vertices[1], [0, 2, 5], atol=1e-5)
    np.testing.assert_allclose(part.colors[:, :3], colors / 65535.0, atol=1e-6)
    np.testing.assert_allclose(part.colors[:, 3], 1.0)
    np.testing.assert_allclose(part.uv, texcoords)
    assert part.image == 0 and result.images[0].data == png and result.images[0].mime_type == "image/png"
    assert result.metadata == {"from": "asset"}


@pytest.mark.parametrize("data", [b"", b"not a glb at all, really not", struct.pack("<III", 0x46546C67, 1, 12)])
def test_bad_files_raise_readable_errors(data):
    with pytest.raises(GLBError):
        read_glb(data)


def test_required_extensions_we_cannot_read_are_named():
    doc = {"asset": {"version": "2.0"}, "extensionsRequired": ["KHR_draco_mesh_compression"], "scenes": [{"nodes": []}]}
    with pytest.raises(GLBError, match="KHR_draco_mesh_compression"):
        read_glb(_glb_from(doc, b""))


def test_truncated_binary_is_an_error_not_a_crash():
    data = write_glb(np.zeros((3, 3)), np.array([[0, 1, 2]]))
    with pytest.raises(GLBError):
        read_glb(data[:-8])


def test_axes_and_uv_conventions():
    p = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(gltf_to_blender(p), [[1, -3, 2]])  # glTF y up → Blender z up
    np.testing.assert_array_equal(blender_to_gltf(gltf_to_blender(p)), p)
    np.testing.assert_allclose(flip_v(flip_v(np.array([[0.25, 0.1]]))), [[0.25, 0.1]], atol=1e-6)


def test_weld_corners_splits_vertices_only_at_uv_seams():
    corner_vertex = np.array([0, 1, 2, 0, 2, 3])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [1, 1], [0, 1]], np.float32)
    source, faces, values = weld_corners(corner_vertex, uv, 4)
    assert len(source) == 4  # shared corners agree: no split
    np.testing.assert_array_equal(source[faces], corner_vertex.reshape(-1, 3))
    uv[3] = [0.5, 0.5]  # vertex 0 now has two UVs: a seam
    source, faces, values = weld_corners(corner_vertex, uv, 4)
    assert len(source) == 5
    np.testing.assert_array_equal(source[faces], corner_vertex.reshape(-1, 3))
    np.testing.assert_allclose(values[faces.reshape(-1)], uv)
    source, faces, values = weld_corners(corner_vertex, None, 6)
    assert len(source) == 6 and values is None
