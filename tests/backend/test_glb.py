"""GLB writing (trimesh) and reading (our parser): what goes in comes back out."""

import json
import struct

import numpy as np
import pytest
import trimesh

from backend.geometry.glb import mesh_result_to_glb, read_glb_extras, read_glb_meshes
from backend.errors import GenerationFailed, InputError
from backend.results import MeshPart, MeshResult


def tetrahedron(offset=0.0, colors=None, uv=None, name="mesh"):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32) + offset
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64)
    return MeshPart(name, vertices, faces, colors, uv)


COLORS = np.array([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [10, 20, 30, 40]], np.uint8)
UV = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.25, 0.75]], np.float32)


def test_round_trip_keeps_names_geometry_colours_uv_and_metadata():
    texture = np.zeros((4, 4, 3), np.uint8)
    texture[0, 0] = (9, 8, 7)
    metadata = {"prompt": "a chair", "parts": [{"name": "seat", "box": [0.1, 0.2]}], "seed": 7}
    result = MeshResult(
        parts=[
            tetrahedron(0.0, COLORS, None, "seat"),
            tetrahedron(2.0, None, UV, "leg.0"),
            tetrahedron(4.0, COLORS, UV, "leg.1"),
        ],
        texture=texture,
        metadata=metadata,
    )
    data = mesh_result_to_glb(result)
    parts, extras = read_glb_meshes(data)

    assert [p.name for p in parts] == ["seat", "leg.0", "leg.1"]
    assert extras["diffusion3d"] == metadata
    assert read_glb_extras(data)["diffusion3d"] == metadata
    for got, want in zip(parts, result.parts):
        np.testing.assert_allclose(got.vertices, want.vertices, atol=1e-6)
        np.testing.assert_array_equal(got.faces, want.faces)
    np.testing.assert_array_equal(parts[0].vertex_colors, COLORS)
    assert parts[0].uv is None
    assert parts[1].vertex_colors is None
    np.testing.assert_allclose(parts[1].uv, UV, atol=1e-6)  # glTF convention both ways (v down)
    np.testing.assert_array_equal(parts[2].vertex_colors, COLORS)
    np.testing.assert_allclose(parts[2].uv, UV, atol=1e-6)

    # The texture really is the material's baseColorTexture, and COLOR_0 is a real attribute.
    gltf = _json_chunk(data)
    textured = [m["pbrMetallicRoughness"].get("baseColorTexture") for m in gltf["materials"]]
    assert [t for t in textured if t] == [{"index": 0}]
    assert "COLOR_0" in gltf["meshes"][0]["primitives"][0]["attributes"]
    loaded = trimesh.load(trimesh.util.wrap_as_stream(data), file_type="glb")
    image = loaded.geometry["leg.0"].visual.material.baseColorTexture
    assert np.asarray(image)[0, 0, :3].tolist() == [9, 8, 7]


def test_float_and_rgb_colours_become_rgba_bytes():
    part = tetrahedron(colors=np.array([[1.0, 0.0, 0.0]] * 4, np.float32))
    parts, _ = read_glb_meshes(mesh_result_to_glb(MeshResult(parts=[part])))
    assert parts[0].vertex_colors.tolist() == [[255, 0, 0, 255]] * 4


def test_duplicate_part_names_stay_distinct():
    data = mesh_result_to_glb(MeshResult(parts=[tetrahedron(name="leg"), tetrahedron(1.0, name="leg")]))
    assert [p.name for p in read_glb_meshes(data)[0]] == ["leg", "leg.1"]


def test_node_transforms_are_applied_and_order_is_depth_first():
    scene = trimesh.Scene()
    box = trimesh.creation.box()
    rotate = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
    move = trimesh.transformations.translation_matrix([5, 0, 0])
    scene.add_geometry(box, node_name="parent", geom_name="a", transform=move)
    scene.add_geometry(box, node_name="child", geom_name="b", parent_node_name="parent", transform=rotate)
    parts, _ = read_glb_meshes(scene.export(file_type="glb"))

    by_name = {p.name: p for p in parts}
    np.testing.assert_allclose(by_name["parent"].vertices, box.vertices + [5, 0, 0], atol=1e-5)
    want = trimesh.transform_points(box.vertices, move @ rotate)
    np.testing.assert_allclose(by_name["child"].vertices, want, atol=1e-5)
    assert [p.name for p in parts] == ["parent", "child"]


def test_mirroring_transform_keeps_faces_pointing_out():
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), node_name="mirrored", transform=np.diag([-1.0, 1, 1, 1]))
    part = read_glb_meshes(scene.export(file_type="glb"))[0][0]
    assert trimesh.Trimesh(part.vertices, part.faces, process=False).volume > 0


@pytest.mark.parametrize("data", [b"", b"not a glb at all, just text", b"glTF" + struct.pack("<II", 1, 20) + b"\0" * 12])
def test_unreadable_glb_is_an_input_error(data):
    with pytest.raises(InputError):
        read_glb_meshes(data)


def test_truncated_and_empty_glbs_are_input_errors():
    data = mesh_result_to_glb(MeshResult(parts=[tetrahedron()]))
    with pytest.raises(InputError):
        read_glb_meshes(data[: len(data) // 2])
    empty = _glb({"asset": {"version": "2.0"}, "scenes": [{"nodes": []}]})
    with pytest.raises(InputError, match="no triangle"):
        read_glb_meshes(empty)


def test_a_buffer_embedded_as_a_data_uri_is_read_and_an_external_one_refused():
    import base64

    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    blob = vertices.tobytes() + np.array([0, 1, 2], np.uint32).tobytes()
    doc = {"asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}], "nodes": [{"name": "tri", "mesh": 0}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
                         {"bufferView": 1, "componentType": 5125, "count": 3, "type": "SCALAR"}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 36}, {"buffer": 0, "byteOffset": 36, "byteLength": 12}],
           "buffers": [{"byteLength": len(blob), "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode()}]}
    parts, _ = read_glb_meshes(_glb(doc))
    assert parts[0].name == "tri" and np.array_equal(parts[0].vertices, vertices) and parts[0].faces.tolist() == [[0, 1, 2]]
    doc["buffers"][0]["uri"] = "tri.bin"
    with pytest.raises(InputError, match="external file"):
        read_glb_meshes(_glb(doc))


def test_empty_result_is_not_written():
    with pytest.raises(GenerationFailed):
        mesh_result_to_glb(MeshResult(parts=[]))


def _json_chunk(data: bytes) -> dict:
    size = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[20 : 20 + size])


def _glb(gltf: dict) -> bytes:
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    return b"glTF" + struct.pack("<II", 2, 20 + len(text)) + struct.pack("<II", len(text), 0x4E4F534A) + text


def _with_json(data: bytes, gltf: dict) -> bytes:
    """The GLB `data` with its JSON chunk replaced, its binary chunk kept."""
    size = struct.unpack_from("<I", data, 12)[0]
    text = json.dumps(gltf).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + size:]
    return (b"glTF" + struct.pack("<II", 2, 20 + len(text) + len(rest))
            + struct.pack("<II", len(text), 0x4E4F534A) + text + rest)


def test_parts_share_one_dielectric_textured_material_and_one_image():
    data = mesh_result_to_glb(MeshResult(parts=[tetrahedron(0.0, None, UV, "a"), tetrahedron(2.0, None, UV, "b"),
                                                tetrahedron(4.0, COLORS, None, "c")],
                                         texture=np.zeros((4, 4, 3), np.uint8)))
    gltf = _json_chunk(data)
    assert len(gltf["images"]) == 1 and len(gltf["materials"]) == 2
    # glTF's defaults (metallic 1) would show paint, and a colour-only part too, as metal.
    for material in gltf["materials"]:
        assert material["pbrMetallicRoughness"]["metallicFactor"] == 0.0
        assert material["pbrMetallicRoughness"]["roughnessFactor"] == 0.5
    used = [mesh["primitives"][0]["material"] for mesh in gltf["meshes"]]
    assert used[0] == used[1] != used[2]  # the part without UVs does not point at the texture
    assert "baseColorTexture" in gltf["materials"][used[0]]["pbrMetallicRoughness"]
    assert "baseColorTexture" not in gltf["materials"][used[2]]["pbrMetallicRoughness"]


def test_normals_come_back_turned_with_their_node():
    ball = trimesh.creation.icosphere(subdivisions=1)
    part = MeshPart("ball", ball.vertices.astype(np.float32), ball.faces, normals=ball.vertex_normals.astype(np.float32))
    data = mesh_result_to_glb(MeshResult(parts=[part, tetrahedron(3.0)]))
    back = read_glb_meshes(data)[0]
    np.testing.assert_allclose(back[0].normals, ball.vertex_normals, atol=1e-6)
    assert back[1].normals is None  # none made up: a part without them is shaded flat
    # A node squashed along y: normals follow the inverse transpose and stay unit length.
    gltf = _json_chunk(data)
    gltf["nodes"][[n["name"] for n in gltf["nodes"]].index("ball")]["scale"] = [1.0, 0.25, 1.0]
    squashed = read_glb_meshes(_with_json(data, gltf))[0][0]
    want = ball.vertex_normals * [1.0, 4.0, 1.0]
    np.testing.assert_allclose(squashed.normals, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-5)
    # Flattened to the floor (no inverse): every normal that is left faces straight up or down.
    gltf["nodes"][[n["name"] for n in gltf["nodes"]].index("ball")]["scale"] = [1.0, 0.0, 1.0]
    flat = read_glb_meshes(_with_json(data, gltf))[0][0].normals
    facing = np.linalg.norm(flat, axis=1) > 0
    assert facing.sum() > len(flat) / 2 and np.allclose(np.abs(flat[facing, 1]), 1.0, atol=1e-6)


def test_a_primitive_without_uvs_gets_none_not_the_first_texel():
    data = mesh_result_to_glb(MeshResult(parts=[tetrahedron(0.0, None, UV, "a"), tetrahedron(2.0, None, None, "b")]))
    gltf = _json_chunk(data)  # one mesh of two primitives (two materials), the second without UVs
    gltf["meshes"][0]["primitives"] += gltf["meshes"][1]["primitives"]
    gltf["scenes"][0]["nodes"] = [i for i, n in enumerate(gltf["nodes"]) if n.get("mesh") == 0]
    (part,), _ = read_glb_meshes(_with_json(data, gltf))
    np.testing.assert_allclose(part.uv[:4], UV, atol=1e-6)
    assert np.isnan(part.uv[4:]).all()


def test_a_scan_at_survey_coordinates_keeps_its_detail_when_read_centred():
    ball = trimesh.creation.icosphere(subdivisions=3)  # 1 m, placed by its node 5,000 km out
    place = np.array([5e5, 100.0, 5e6])
    data = mesh_result_to_glb(MeshResult(parts=[MeshPart("scan", ball.vertices.astype(np.float32), ball.faces,
                                                         origin=place)]))
    (flat,), _ = read_glb_meshes(data)  # as float32 world positions: half a metre apart at best
    assert np.abs(flat.vertices - (ball.vertices + place)).max() > 0.1
    (part,), _ = read_glb_meshes(data, centre_far_off=True)
    np.testing.assert_allclose(part.origin, place, atol=1e-6)
    np.testing.assert_allclose(part.vertices, ball.vertices, atol=1e-6)
    # Written again, it lands where it was, to the micrometre (the node's translation is float64).
    again = read_glb_meshes(mesh_result_to_glb(MeshResult(parts=[part])), centre_far_off=True)[0][0]
    np.testing.assert_allclose(again.origin + again.vertices, place + ball.vertices, atol=1e-6)
    # An ordinary scene off-centre by a few sizes is read as it is.
    near = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", ball.vertices.astype(np.float32), ball.faces,
                                                         origin=np.array([5.0, 0.0, 0.0]))]))
    assert read_glb_meshes(near, centre_far_off=True)[0][0].origin is None


@pytest.mark.parametrize("mirrored", [False, True])
def test_parts_go_back_into_the_frame_of_the_node_they_came_from(mirrored):
    ball = trimesh.creation.icosphere(subdivisions=1)
    turn = trimesh.transformations.rotation_matrix(0.5, [0, 1, 0])
    node = trimesh.transformations.translation_matrix([2.0, 0.0, 0.0]) @ turn @ np.diag([1.5, -1.0 if mirrored else 1.0, 1.0, 1.0])
    scene = trimesh.Scene()
    scene.add_geometry(ball, node_name="Ball", geom_name="Ball", transform=node)
    (part,), _ = read_glb_meshes(scene.export(file_type="glb", include_normals=True))
    np.testing.assert_allclose(part.vertices, trimesh.transform_points(ball.vertices, node), atol=1e-5)  # baked, to paint
    data = mesh_result_to_glb(MeshResult(parts=[part]))
    np.testing.assert_allclose(np.reshape(_json_chunk(data)["nodes"][0]["matrix"], (4, 4)).T, node, atol=1e-9)  # the pivot kept
    # ...with the part's own vertices, normals and winding inside it: read again, the same world.
    again = read_glb_meshes(data)[0][0]
    np.testing.assert_allclose(again.vertices, part.vertices, atol=1e-5)
    np.testing.assert_array_equal(again.faces, part.faces)
    np.testing.assert_allclose(again.normals, part.normals, atol=1e-5)


def test_a_sheared_flattened_hierarchy_is_written_baked():
    """A rotated child of a stretched parent has a world matrix no node may carry (glTF wants
    rotation times scale): importers would drop the shear, so such a part is written baked."""
    box = trimesh.creation.box()
    scene = trimesh.Scene()
    scene.add_geometry(box, node_name="Parent", geom_name="Parent", transform=np.diag([2.0, 1.0, 1.0, 1.0]))
    scene.add_geometry(box, node_name="Child", geom_name="Child", parent_node_name="Parent",
                       transform=trimesh.transformations.rotation_matrix(np.pi / 4, [0, 1, 0]))
    parts, _ = read_glb_meshes(scene.export(file_type="glb"))
    written = _json_chunk(mesh_result_to_glb(MeshResult(parts=parts)))
    kept = {n["name"]: "matrix" in n for n in written["nodes"] if "mesh" in n}
    assert kept == {"Parent": True, "Child": False}
    again = {p.name: p for p in read_glb_meshes(mesh_result_to_glb(MeshResult(parts=parts)))[0]}
    np.testing.assert_allclose(again["Child"].vertices, parts[1].vertices, atol=1e-6)
