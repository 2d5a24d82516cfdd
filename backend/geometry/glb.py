"""GLB in and out: a pipeline's MeshResult to GLB bytes, and uploaded GLBs back to parts.

Writing goes through trimesh. Reading is our own short parser, because the order of
triangles must be exactly the file's (a face mask refers to it): nodes depth-first from
the scene's root list, children in order, each node's triangle primitives in order.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np

from ..pipelines.base import GenerationFailed, InputError, MeshPart, MeshResult

EXTRAS_KEY = "diffusion3d"

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_COMPONENT = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_TRIANGLES = 4


def mesh_result_to_glb(result: MeshResult) -> bytes:
    """Encode a pipeline result as a binary glTF.

    Each part becomes its own named node; vertex colours travel as `COLOR_0`, UVs as
    `TEXCOORD_0` with `result.texture` as the material's `baseColorTexture`, and
    `result.metadata` as the scene's `extras["diffusion3d"]`.

    Args:
        result: The pipeline output, in glTF axes.

    Returns:
        The GLB file as bytes.
    """
    import trimesh
    from PIL import Image

    if not result.parts:
        raise GenerationFailed("the result has no parts: nothing to write")
    texture = None
    if result.texture is not None:
        texture = Image.fromarray(np.ascontiguousarray(result.texture, dtype=np.uint8))
    scene = trimesh.Scene()
    used: set[str] = set()
    for part in result.parts:
        vertices = np.asarray(part.vertices, dtype=np.float32).reshape(-1, 3)
        faces = np.asarray(part.faces, dtype=np.int64).reshape(-1, 3)
        if len(vertices) == 0 or len(faces) == 0:
            raise GenerationFailed(f"part {part.name!r} is empty (no vertices or no triangles)")
        colors = None if part.vertex_colors is None else _rgba_u8(part.vertex_colors)
        # process=False keeps vertex order and count as the pipeline made them.
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
        if part.uv is not None:
            uv = np.array(part.uv, dtype=np.float64).reshape(-1, 2)
            uv[:, 1] = 1.0 - uv[:, 1]  # trimesh keeps v up and flips it back on export
            material = trimesh.visual.material.PBRMaterial(name=part.name, baseColorTexture=texture)
            mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
            if colors is not None:
                mesh.visual.vertex_attributes["color"] = colors  # exported as COLOR_0 too
        elif colors is not None:
            mesh.visual = trimesh.visual.ColorVisuals(mesh=mesh, vertex_colors=colors)
        name = _unique(part.name or "mesh", used)
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    scene.metadata[EXTRAS_KEY] = result.metadata
    data = scene.export(file_type="glb")
    if result.metadata and EXTRAS_KEY not in read_glb_extras(data):
        raise TypeError("the result metadata is not JSON-serialisable")  # a pipeline bug, not the user's
    return data


def read_glb_meshes(data: bytes) -> tuple[list[MeshPart], dict[str, Any]]:
    """Decode an uploaded GLB into parts, with node transforms applied.

    Args:
        data: The GLB file.

    Returns:
        (parts, extras): one MeshPart per mesh node, named after the node (its mesh's name,
        or "mesh", when unnamed), in the file's triangle order; and the scene's `extras`
        dict (our metadata sits under `extras["diffusion3d"]`).

    Raises:
        InputError: the bytes are not a readable GLB, or it holds no triangles.
    """
    try:
        gltf, binary = _split_glb(data)
        parts = _read_parts(gltf, binary)
    except InputError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, struct.error) as e:
        raise InputError(f"the mesh is not a readable GLB file ({type(e).__name__}: {e})") from None
    if not parts:
        raise InputError("the GLB holds no triangle meshes")
    return parts, _scene_extras(gltf)


def read_glb_extras(data: bytes) -> dict[str, Any]:
    """The scene `extras` of a GLB, without decoding its meshes (cheap).

    Args:
        data: The GLB file.

    Returns:
        The extras dict (empty when there is none).
    """
    try:
        gltf, _ = _split_glb(data)
    except (InputError, ValueError, struct.error):
        return {}
    return _scene_extras(gltf)


def _rgba_u8(colors: np.ndarray) -> np.ndarray:
    colors = np.asarray(colors)
    if colors.dtype != np.uint8:  # floats in [0, 1]
        colors = np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)
    if colors.shape[1] == 3:
        colors = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
    return colors


def _unique(name: str, used: set[str]) -> str:
    candidate, i = name, 1
    while candidate in used:
        candidate, i = f"{name}.{i}", i + 1
    used.add(candidate)
    return candidate


def _split_glb(data: bytes) -> tuple[dict, bytes]:
    if len(data) < 20 or data[:4] != _GLB_MAGIC:
        raise InputError("the mesh is not a GLB file (binary glTF 2.0 starts with 'glTF')")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise InputError(f"the GLB is glTF version {version}; only version 2 is supported")
    gltf, binary, offset = None, b"", 12
    while offset + 8 <= min(length, len(data)):
        size, kind = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8 : offset + 8 + size]
        if kind == _CHUNK_JSON:
            gltf = json.loads(chunk)
        elif kind == _CHUNK_BIN and not binary:
            binary = bytes(chunk)
        offset += 8 + size
    if not isinstance(gltf, dict):
        raise InputError("the GLB has no JSON chunk")
    return gltf, binary


def _scene_extras(gltf: dict) -> dict[str, Any]:
    scenes = gltf.get("scenes") or [{}]
    extras = scenes[gltf.get("scene", 0)].get("extras")
    return extras if isinstance(extras, dict) else {}


def _read_parts(gltf: dict, binary: bytes) -> list[MeshPart]:
    buffers = [_buffer(b, binary) for b in gltf.get("buffers", [])]
    nodes = gltf.get("nodes", [])
    scenes = gltf.get("scenes")
    # Without a scene, every node that nobody lists as a child is a root.
    children = {c for n in nodes for c in n.get("children", [])}
    roots = scenes[gltf.get("scene", 0)].get("nodes", []) if scenes else [i for i in range(len(nodes)) if i not in children]
    parts, stack, seen = [], [(i, np.eye(4)) for i in reversed(roots)], set()
    while stack:
        index, parent = stack.pop()
        if index in seen:  # a cyclic or shared node: read it once
            continue
        seen.add(index)
        node = nodes[index]
        world = parent @ _local_matrix(node)
        if "mesh" in node:
            mesh = gltf["meshes"][node["mesh"]]
            part = _read_mesh(gltf, buffers, mesh, world, node.get("name") or mesh.get("name") or "mesh")
            if part is not None:
                parts.append(part)
        stack.extend((c, world) for c in reversed(node.get("children", [])))
    return parts


def _read_mesh(gltf: dict, buffers: list[bytes], mesh: dict, world: np.ndarray, name: str) -> MeshPart | None:
    pieces = []
    for prim in mesh.get("primitives", []):
        if prim.get("mode", _TRIANGLES) != _TRIANGLES or "POSITION" not in prim.get("attributes", {}):
            continue  # points and lines carry no surface
        attrs = prim["attributes"]
        vertices = _accessor(gltf, buffers, attrs["POSITION"]).astype(np.float64)
        if "indices" in prim:
            faces = _accessor(gltf, buffers, prim["indices"]).astype(np.int64).reshape(-1, 3)
        else:
            faces = np.arange(len(vertices) // 3 * 3, dtype=np.int64).reshape(-1, 3)
        if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise InputError(f"mesh {name!r} has triangle indices outside its vertex list")
        colors = _accessor(gltf, buffers, attrs["COLOR_0"]) if "COLOR_0" in attrs else None
        uv = _accessor(gltf, buffers, attrs["TEXCOORD_0"]).astype(np.float32) if "TEXCOORD_0" in attrs else None
        pieces.append((vertices, faces, None if colors is None else _rgba_u8(colors), uv))
    if not pieces:
        return None
    vertices = np.concatenate([p[0] for p in pieces])
    offsets = np.cumsum([0] + [len(p[0]) for p in pieces[:-1]])
    faces = np.concatenate([p[1] + o for p, o in zip(pieces, offsets)])
    vertices = vertices @ world[:3, :3].T + world[:3, 3]
    if np.linalg.det(world[:3, :3]) < 0:  # a mirroring transform turns the winding around
        faces = faces[:, ::-1]
    colors = uv = None
    if any(p[2] is not None for p in pieces):  # fill primitives without colours with white
        colors = np.concatenate([p[2] if p[2] is not None else np.full((len(p[0]), 4), 255, np.uint8) for p in pieces])
    if any(p[3] is not None for p in pieces):
        uv = np.concatenate([p[3] if p[3] is not None else np.zeros((len(p[0]), 2), np.float32) for p in pieces])
    return MeshPart(name=name, vertices=vertices.astype(np.float32), faces=np.ascontiguousarray(faces), vertex_colors=colors, uv=uv)


def _buffer(spec: dict, binary: bytes) -> bytes:
    uri = spec.get("uri")
    if uri is None:
        return binary
    if uri.startswith("data:"):
        return base64.b64decode(uri.split(",", 1)[1])
    raise InputError(f"the GLB refers to an external file {uri!r}; embed all data in the .glb")


def _accessor(gltf: dict, buffers: list[bytes], index: int) -> np.ndarray:
    acc = gltf["accessors"][index]
    if "sparse" in acc:
        raise InputError("the GLB uses sparse accessors, which are not supported; export without them")
    dtype = np.dtype(_COMPONENT[acc["componentType"]])
    width, count = _WIDTH[acc["type"]], acc["count"]
    if "bufferView" not in acc:
        out = np.zeros((count, width), dtype)
    else:
        view = gltf["bufferViews"][acc["bufferView"]]
        raw = buffers[view.get("buffer", 0)]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        stride = view.get("byteStride") or dtype.itemsize * width
        if count and start + stride * (count - 1) + dtype.itemsize * width > len(raw):
            raise InputError("the GLB's binary data is shorter than its accessors say (truncated file?)")
        # A strided view straight on the bytes, copied once.
        out = np.ndarray((count, width), dtype, buffer=raw, offset=start, strides=(stride, dtype.itemsize)).copy()
    if acc.get("normalized") and dtype.kind in "iu":
        out = out.astype(np.float32) / np.iinfo(dtype).max
    return out if width > 1 else out.reshape(-1)


def _local_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T  # glTF is column-major
    x, y, z, w = node.get("rotation", (0.0, 0.0, 0.0, 1.0))
    rotation = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
    m = np.eye(4)
    m[:3, :3] = rotation * np.asarray(node.get("scale", (1.0, 1.0, 1.0)))[None, :]  # T * R * S
    m[:3, 3] = node.get("translation", (0.0, 0.0, 0.0))
    return m
