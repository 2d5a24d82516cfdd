"""Read and write binary glTF (GLB) with numpy only.

The reader flattens a scene into named triangle parts in glTF axes (Y up), node transforms
applied; the writer emits one triangulated mesh. Both stay free of bpy, so they are tested
without Blender (the idea of glTF-Blender-IO's pure-format core).
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

GLB_MAGIC = 0x46546C67  # b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

_COMPONENT_DTYPES = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_MODE_TRIANGLES, _MODE_TRIANGLE_STRIP, _MODE_TRIANGLE_FAN = 4, 5, 6


class GLBError(ValueError):
    """The file is not a GLB this reader understands; the message says what is wrong."""


@dataclass
class GLBPart:
    """One named triangle mesh in glTF axes with its node transform applied.

    Attributes:
        name: The node's name (else the mesh's), e.g. "leg.0".
        vertices: (N, 3) float32.
        faces: (M, 3) int64 indices into `vertices`, counter-clockwise front faces.
        colors: optional (N, 4) float32 linear RGBA in [0, 1] (COLOR_0).
        uv: optional (N, 2) float32 (TEXCOORD_0, glTF convention: v down); NaN for the
            vertices of a primitive without them when other primitives of the mesh have them.
        image: index into `GLBScene.images` of the base-colour texture, or None.
        base_color: the material's baseColorFactor (RGBA), or None.
        normals: optional (N, 3) float32 unit vertex normals (NORMAL), when every primitive has them.
        node_matrix: (4, 4) float64 world transform of its node, already applied to `vertices`
            (None for the identity): a writer can put the part back in its node's frame.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colors: Optional[np.ndarray] = None
    uv: Optional[np.ndarray] = None
    image: Optional[int] = None
    base_color: Optional[tuple] = None
    normals: Optional[np.ndarray] = None
    node_matrix: Optional[np.ndarray] = None


@dataclass
class GLBImage:
    name: str
    mime_type: str
    data: bytes


@dataclass
class GLBScene:
    """Everything the add-on uses from a GLB."""

    parts: list[GLBPart] = field(default_factory=list)
    images: list[GLBImage] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)  # scene extras
    asset_extras: dict[str, Any] = field(default_factory=dict)
    origin: Optional[np.ndarray] = None  # (3,) float64 the parts' vertices are relative to (`read_glb`)

    @property
    def metadata(self) -> dict[str, Any]:
        """The result's `extras["diffusion3d"]` (scene first, then asset), or {}."""
        meta = self.extras.get("diffusion3d", self.asset_extras.get("diffusion3d", {}))
        return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------------------- reading


def _split_chunks(data: bytes) -> tuple[dict, bytes]:
    if len(data) < 20:
        raise GLBError("file too short to be a GLB")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC:
        raise GLBError("not a GLB file (bad magic); only binary glTF is supported")
    if version != 2:
        raise GLBError(f"glTF version {version} is not supported (need 2)")
    length = min(length, len(data))
    offset, doc, binary = 12, None, b""
    while offset + 8 <= length:
        chunk_len, chunk_type = struct.unpack_from("<II", data, offset)
        body = data[offset + 8 : offset + 8 + chunk_len]
        if chunk_type == CHUNK_JSON:
            doc = json.loads(body.decode("utf-8"))
        elif chunk_type == CHUNK_BIN and not binary:
            binary = bytes(body)
        offset += 8 + chunk_len
    if doc is None:
        raise GLBError("GLB has no JSON chunk")
    if not isinstance(doc, dict):
        raise GLBError("the GLB's JSON chunk is not a glTF document (a JSON object)")
    return doc, binary


def _buffer_view_bytes(doc: dict, binary: bytes, index: int) -> memoryview:
    view = doc["bufferViews"][index]
    buffer = doc.get("buffers", [{}])[view.get("buffer", 0)]
    uri = buffer.get("uri")
    if uri is not None:  # some exporters embed a buffer as a base64 data URI
        if not uri.startswith("data:"):
            raise GLBError(f"the GLB refers to an external file {uri!r}; embed all data in the .glb")
        binary = base64.b64decode(uri.split(",", 1)[1])
    start = view.get("byteOffset", 0)
    return memoryview(binary)[start : start + view["byteLength"]]


def _accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    """Accessor `index` as an (count, width) array of its component type (normalized → float)."""
    acc = doc["accessors"][index]
    dtype = np.dtype(_COMPONENT_DTYPES[acc["componentType"]]).newbyteorder("<")
    width = _TYPE_WIDTHS[acc["type"]]
    count = acc["count"]
    if not isinstance(count, int) or count < 0:
        raise GLBError(f"accessor {index} has an invalid count {count!r}")
    if "bufferView" not in acc:  # all zeros (sparse accessors are not produced by our backend)
        if count > len(binary) + 1:  # more zeros than the file has bytes: a hostile count, not a mesh
            raise GLBError(f"accessor {index} claims {count} elements without any data")
        out = np.zeros((count, width), dtype)
    else:
        view = doc["bufferViews"][acc["bufferView"]]
        raw = _buffer_view_bytes(doc, binary, acc["bufferView"])
        offset = acc.get("byteOffset", 0)
        stride = view.get("byteStride") or dtype.itemsize * width
        if stride == dtype.itemsize * width:
            out = np.frombuffer(raw, dtype, count * width, offset).reshape(count, width)
        else:  # interleaved: a strided view, then a copy
            need = (count - 1) * stride + dtype.itemsize * width
            base = np.frombuffer(raw[offset : offset + need], np.uint8)
            rows = np.lib.stride_tricks.as_strided(base, shape=(count, width * dtype.itemsize), strides=(stride, 1))
            out = np.ascontiguousarray(rows).view(dtype).reshape(count, width)
    if acc.get("sparse"):
        raise GLBError("sparse accessors are not supported")
    if acc.get("normalized") and dtype.kind in "iu":
        out = out.astype(np.float32) / np.float32(np.iinfo(dtype).max)
        if dtype.kind == "i":
            out = np.maximum(out, -1.0)
    return out


def _node_matrix(node: dict) -> np.ndarray:
    """The node's local 4x4 transform (column vectors)."""
    if "matrix" in node:
        return np.asarray(node["matrix"], np.float64).reshape(4, 4).T  # glTF is column-major
    t = np.asarray(node.get("translation", (0, 0, 0)), np.float64)
    x, y, z, w = node.get("rotation", (0, 0, 0, 1))
    s = np.asarray(node.get("scale", (1, 1, 1)), np.float64)
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    m = np.eye(4)
    m[:3, :3] = rot * s[None, :]
    m[:3, 3] = t
    return m


def _triangles(indices: np.ndarray, mode: int) -> np.ndarray:
    if mode == _MODE_TRIANGLES:
        return indices[: len(indices) // 3 * 3].reshape(-1, 3)
    if mode == _MODE_TRIANGLE_STRIP and len(indices) >= 3:
        tri = np.stack([indices[:-2], indices[1:-1], indices[2:]], axis=1)
        odd = np.arange(len(tri)) % 2 == 1
        tri[odd] = tri[odd][:, [1, 0, 2]]
        return tri
    if mode == _MODE_TRIANGLE_FAN and len(indices) >= 3:
        return np.stack([np.full(len(indices) - 2, indices[0]), indices[1:-1], indices[2:]], axis=1)
    return np.zeros((0, 3), np.int64)


def _read_primitive(doc, binary, prim) -> Optional[dict]:
    mode = prim.get("mode", _MODE_TRIANGLES)
    attrs = prim.get("attributes", {})
    if mode not in (_MODE_TRIANGLES, _MODE_TRIANGLE_STRIP, _MODE_TRIANGLE_FAN) or "POSITION" not in attrs:
        return None  # points and lines carry no surface
    positions = _accessor(doc, binary, attrs["POSITION"]).astype(np.float32)
    if "indices" in prim:
        indices = _accessor(doc, binary, prim["indices"]).reshape(-1).astype(np.int64)
    else:
        indices = np.arange(len(positions), dtype=np.int64)
    faces = _triangles(indices, mode)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(positions)):
        raise GLBError("triangle indices point outside the vertex list")
    out = {"vertices": positions, "faces": faces, "colors": None, "uv": None, "image": None, "base_color": None,
           "normals": None}
    if "COLOR_0" in attrs:
        col = _accessor(doc, binary, attrs["COLOR_0"]).astype(np.float32)
        if col.shape[1] == 3:
            col = np.concatenate([col, np.ones((len(col), 1), np.float32)], axis=1)
        out["colors"] = col
    if "TEXCOORD_0" in attrs:
        out["uv"] = _accessor(doc, binary, attrs["TEXCOORD_0"]).astype(np.float32)
    if "NORMAL" in attrs:
        out["normals"] = _accessor(doc, binary, attrs["NORMAL"]).astype(np.float32)
    if "material" in prim:
        pbr = doc.get("materials", [])[prim["material"]].get("pbrMetallicRoughness", {})
        if "baseColorFactor" in pbr:
            out["base_color"] = tuple(float(c) for c in pbr["baseColorFactor"])
        tex = pbr.get("baseColorTexture")
        if tex is not None:
            source = doc.get("textures", [])[tex["index"]].get("source")
            out["image"] = source
    return out


def _merge_primitives(prims: list[dict]) -> dict:
    """One part from several primitives (offsets on indices; optional channels filled)."""
    if len(prims) == 1:
        return prims[0]
    offsets = np.cumsum([0] + [len(p["vertices"]) for p in prims[:-1]])
    merged = {
        "vertices": np.concatenate([p["vertices"] for p in prims]),
        "faces": np.concatenate([p["faces"] + o for p, o in zip(prims, offsets)]),
        "image": next((p["image"] for p in prims if p["image"] is not None), None),
        "base_color": next((p["base_color"] for p in prims if p["base_color"] is not None), None),
    }
    # Normals only when every primitive has them: none are made up for those that have none.
    merged["normals"] = None if any(p["normals"] is None for p in prims) else np.concatenate([p["normals"] for p in prims])
    # A primitive without UVs gets NaN ones, which say "none" where (0, 0) would paint it one texel.
    for key, width, fill in (("colors", 4, 1.0), ("uv", 2, np.nan)):
        if any(p[key] is not None for p in prims):
            merged[key] = np.concatenate(
                [p[key] if p[key] is not None else np.full((len(p["vertices"]), width), fill, np.float32) for p in prims]
            )
        else:
            merged[key] = None
    return merged


# What a hostile or broken document raises while it is read: a wrong type where a list or object
# belongs, a missing key, an index out of range, JSON nested past Python's recursion limit.
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError, struct.error)


# A scene farther from the origin than this many times its size is read centred on request.
FAR_OFF = 100.0


def read_glb(data: bytes, centre_far_off: bool = False) -> GLBScene:
    """Parse GLB bytes into named parts in glTF axes (node transforms applied).

    Args:
        data: The whole file.
        centre_far_off: Read a scene that lies far from the origin (a scan placed by its node
            at survey coordinates, ~1e6 m) centred, its vertices relative to `origin`:
            float32 vertices at such distances keep centimetres, not the scan's detail.

    Returns:
        A GLBScene. Raises GLBError for anything that is not a readable GLB.
    """
    try:
        doc, binary = _split_chunks(data)
        return _read_document(doc, binary, centre_far_off)
    except GLBError:
        raise
    except _MALFORMED as exc:
        raise GLBError(f"malformed GLB: {exc!r}") from exc


_HARMLESS_EXTENSIONS = {"KHR_materials_unlit", "KHR_materials_emissive_strength", "KHR_mesh_quantization"}


def read_glb_extras(data: bytes) -> dict:
    """The scene's `extras` without decoding any mesh (cheap). Raises GLBError for a non-GLB."""
    try:
        doc, _ = _split_chunks(data)
        scenes = doc.get("scenes") or [{}]
        extras = scenes[doc.get("scene", 0)].get("extras")
    except GLBError:
        raise
    except _MALFORMED as exc:
        raise GLBError(f"malformed GLB: {exc!r}") from exc
    return extras if isinstance(extras, dict) else {}


def _read_document(doc: dict, binary: bytes, centre_far_off: bool = False) -> GLBScene:
    unsupported = sorted(set(doc.get("extensionsRequired", [])) - _HARMLESS_EXTENSIONS)
    if unsupported:
        raise GLBError(f"the file needs glTF extensions this reader does not support: {', '.join(unsupported)}")
    scene_index = doc.get("scene", 0)
    scenes = doc.get("scenes") or [{"nodes": list(range(len(doc.get("nodes", []))))}]
    scene_doc = scenes[scene_index] if scene_index < len(scenes) else scenes[0]
    out = GLBScene(extras=scene_doc.get("extras") or {}, asset_extras=doc.get("asset", {}).get("extras") or {})

    for i, img in enumerate(doc.get("images", [])):
        if "bufferView" in img:
            blob = bytes(_buffer_view_bytes(doc, binary, img["bufferView"]))
        else:
            blob = b""  # external or data-URI images are not produced by the backend
        out.images.append(GLBImage(img.get("name", f"image.{i}"), img.get("mimeType", "image/png"), blob))

    nodes, meshes = doc.get("nodes", []), doc.get("meshes", [])
    cache: dict[int, dict] = {}
    stack = [(n, np.eye(4)) for n in reversed(scene_doc.get("nodes", []))]
    seen = 0
    while stack:
        index, parent = stack.pop()
        seen += 1
        if seen > 100000:
            raise GLBError("node hierarchy has a cycle")
        node = nodes[index]
        world = parent @ _node_matrix(node)
        if "mesh" in node:
            mesh_index = node["mesh"]
            if mesh_index not in cache:
                prims = [p for p in (_read_primitive(doc, binary, q) for q in meshes[mesh_index]["primitives"]) if p]
                cache[mesh_index] = _merge_primitives(prims) if prims else None
            geom = cache[mesh_index]
            if geom is not None:
                verts, normals = geom["vertices"], geom["normals"]
                placed = not np.array_equal(world, np.eye(4))
                if placed:  # the usual identity node costs no copy
                    verts = verts.astype(np.float64) @ world[:3, :3].T + world[:3, 3]  # float32 once centred
                    normals = None if normals is None else _transform_normals(normals, world[:3, :3])
                faces = geom["faces"]
                if np.linalg.det(world[:3, :3]) < 0:  # mirrored node: keep faces counter-clockwise
                    faces = faces[:, [0, 2, 1]]
                name = node.get("name") or meshes[mesh_index].get("name") or f"mesh.{mesh_index}"
                out.parts.append(
                    GLBPart(name, verts, faces, geom["colors"], geom["uv"], geom["image"], geom["base_color"], normals,
                            world if placed else None)
                )
        for child in reversed(node.get("children", [])):
            stack.append((child, world))
    out.origin = _far_off_centre(out.parts) if centre_far_off else None
    for part in out.parts:
        part.vertices = np.asarray(part.vertices if out.origin is None else part.vertices - out.origin, np.float32)
    return out


def _far_off_centre(parts: list[GLBPart]) -> Optional[np.ndarray]:
    """The centre of the parts' bounds when it lies more than FAR_OFF times their size from the origin."""
    vertices = [p.vertices for p in parts if len(p.vertices)]
    if not vertices:
        return None
    low = np.min([v.min(axis=0) for v in vertices], axis=0).astype(np.float64)
    high = np.max([v.max(axis=0) for v in vertices], axis=0).astype(np.float64)
    centre, size = (low + high) / 2, float((high - low).max())
    return centre if np.isfinite(centre).all() and np.abs(centre).max() > FAR_OFF * size else None


def _transform_normals(normals: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Normals under a node's 3x3 transform, unit length again. They turn by the cofactor
    matrix (the inverse transpose times the determinant's size), which a node flattened to a
    plane, with no inverse, still has."""
    a, b, c = linear.T  # the columns
    cofactor = np.stack([np.cross(b, c), np.cross(c, a), np.cross(a, b)], axis=1)
    if np.linalg.det(linear) < 0:  # a mirror: the inverse transpose's direction, not the cofactor's
        cofactor = -cofactor
    moved = normals.astype(np.float64) @ cofactor.T
    length = np.linalg.norm(moved, axis=1, keepdims=True)
    return (moved / np.where(length > 0, length, 1.0)).astype(np.float32)


# ---------------------------------------------------------------------------- writing


def _pad4(blob: bytes, pad: bytes = b"\x00") -> bytes:
    return blob + pad * (-len(blob) % 4)


def write_glb(
    vertices: np.ndarray,
    faces: np.ndarray,
    uv: Optional[np.ndarray] = None,
    colors: Optional[np.ndarray] = None,
    extras: Optional[dict[str, Any]] = None,
    name: str = "mesh",
) -> bytes:
    """One triangulated mesh as GLB bytes (glTF axes).

    Args:
        vertices: (N, 3) float positions.
        faces: (M, 3) int triangle indices, counter-clockwise; written in this order, so a
            per-triangle face mask lines up with them.
        uv: optional (N, 2) TEXCOORD_0 (glTF convention: v down).
        colors: optional (N, 4) float RGBA in [0, 1], written as COLOR_0.
        extras: optional dict written as the scene's extras (e.g. {"diffusion3d": {...}}).
        name: Node and mesh name.

    Returns:
        The GLB file contents.
    """
    vertices = np.ascontiguousarray(vertices, dtype="<f4").reshape(-1, 3)
    faces = np.asarray(faces).reshape(-1, 3)
    if len(faces) and (int(faces.min()) < 0 or int(faces.max()) >= len(vertices)):
        raise GLBError("face indices point outside the vertex list")
    faces = np.ascontiguousarray(faces, dtype="<u4")
    blobs: list[bytes] = []
    views: list[dict] = []
    accessors: list[dict] = []

    def add(array: np.ndarray, gltf_type: str, component: int, target: int, minmax: bool = False) -> int:
        offset = sum(len(b) for b in blobs)
        raw = array.tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(raw), "target": target})
        blobs.append(_pad4(raw))
        acc = {"bufferView": len(views) - 1, "componentType": component, "count": len(array), "type": gltf_type}
        if minmax and len(array):
            acc["min"] = array.min(axis=0).tolist()
            acc["max"] = array.max(axis=0).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    attributes = {"POSITION": add(vertices, "VEC3", 5126, 34962, minmax=True)}
    if uv is not None:
        attributes["TEXCOORD_0"] = add(np.ascontiguousarray(uv, dtype="<f4").reshape(-1, 2), "VEC2", 5126, 34962)
    if colors is not None:
        attributes["COLOR_0"] = add(np.ascontiguousarray(colors, dtype="<f4").reshape(-1, 4), "VEC4", 5126, 34962)
    indices = add(faces.reshape(-1), "SCALAR", 5125, 34963)
    binary = b"".join(blobs)
    doc = {
        "asset": {"version": "2.0", "generator": "Diffusion 3D Blender add-on"},
        "scene": 0,
        "scenes": [{"nodes": [0], **({"extras": extras} if extras else {})}],
        "nodes": [{"name": name, "mesh": 0}],
        "meshes": [{"name": name, "primitives": [{"attributes": attributes, "indices": indices, "mode": 4}]}],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    json_chunk = _pad4(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    total = 12 + 8 + len(json_chunk) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", GLB_MAGIC, 2, total),
            struct.pack("<II", len(json_chunk), CHUNK_JSON),
            json_chunk,
            struct.pack("<II", len(binary), CHUNK_BIN),
            binary,
        ]
    )
