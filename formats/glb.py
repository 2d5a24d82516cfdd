"""Read and write binary glTF (GLB) with numpy only.

The reader flattens a scene into named triangle parts in glTF axes (Y up), node transforms
applied; the writer emits one triangulated mesh. Both stay free of bpy, so they are tested
without Blender (the idea of glTF-Blender-IO's pure-format core).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .glb_buffers import (
    CHUNK_BIN, CHUNK_JSON, DEFAULT_LIMITS, GLB_MAGIC, Budget, Buffers, GLBError, ReadLimits, item, listed, numbers,
    split_chunks, whole,
)


@dataclass
class GLBMaterial:
    """A primitive's PBR material, values clamped to [0, 1] (glTF's defaults where absent)."""

    name: str
    base_color: tuple = (1.0, 1.0, 1.0, 1.0)  # linear RGBA
    metallic: float = 1.0
    roughness: float = 1.0
    transmission: float = 0.0  # KHR_materials_transmission


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
        material: the part's material (its first primitive's that has one), or None.
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
    material: Optional[GLBMaterial] = None


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

# A scene farther from the origin than this many times its size is read centred on request.
FAR_OFF = 100.0
_HARMLESS_EXTENSIONS = {"KHR_materials_unlit", "KHR_materials_emissive_strength", "KHR_mesh_quantization"}
_MODE_TRIANGLES, _MODE_TRIANGLE_STRIP, _MODE_TRIANGLE_FAN = 4, 5, 6
# What a malformed document the checks below did not foresee may still raise: reported as a bad
# file, never as a crash of whoever reads it (the backend, or Blender reading a remote result).
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError, OverflowError, struct.error)


def read_glb(data: bytes, centre_far_off: bool = False, limits: ReadLimits = DEFAULT_LIMITS) -> GLBScene:
    """Parse GLB bytes into named parts in glTF axes (node transforms applied).

    The bytes are hostile until checked (uploads, or a remote backend's results): every
    offset, count and index is checked before it is used, and `limits` caps what the file
    may expand to.

    Args:
        data: The whole file.
        centre_far_off: Read a scene that lies far from the origin (a scan placed by its node
            at survey coordinates, ~1e6 m) centred, its vertices relative to `origin`:
            float32 vertices at such distances keep centimetres, not the scan's detail.
        limits: Caps on vertices, triangles, nodes, images and decoded bytes.

    Returns:
        A GLBScene. Raises GLBError for anything that is not a readable GLB within the limits.
    """
    try:
        doc, binary = split_chunks(data)
        return _read_document(doc, Buffers(doc, binary, Budget(limits, len(data))), centre_far_off)
    except GLBError:
        raise
    except _MALFORMED as exc:
        raise GLBError(f"malformed GLB: {str(exc)[:200] or type(exc).__name__}") from exc


def read_glb_extras(data: bytes) -> dict:
    """The scene's `extras` without decoding any mesh (cheap). Raises GLBError for a non-GLB."""
    try:
        doc, _ = split_chunks(data)
        extras = _scene(doc).get("extras")
    except GLBError:
        raise
    except _MALFORMED as exc:
        raise GLBError(f"malformed GLB: {str(exc)[:200] or type(exc).__name__}") from exc
    return extras if isinstance(extras, dict) else {}


def _scene(doc: dict) -> dict:
    """The document's default scene; without scenes, one holding every node."""
    scenes = listed(doc, "scenes")
    if not scenes:
        return {"nodes": list(range(len(listed(doc, "nodes"))))}
    index = doc.get("scene", 0)
    index = index if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(scenes) else 0
    if not isinstance(scenes[index], dict):
        raise GLBError(f"scenes[{index}] is not a JSON object")
    return scenes[index]


def _read_document(doc: dict, buffers: Buffers, centre_far_off: bool) -> GLBScene:
    limits = buffers.budget.limits
    required = listed(doc, "extensionsRequired")
    unsupported = sorted({str(e)[:60] for e in required} - _HARMLESS_EXTENSIONS)
    if unsupported:
        raise GLBError(f"the file needs glTF extensions this reader does not support: {', '.join(unsupported)}")
    scene_doc = _scene(doc)
    asset = doc.get("asset")
    out = GLBScene(extras=_dict_or_empty(scene_doc.get("extras")),
                   asset_extras=_dict_or_empty(asset.get("extras")) if isinstance(asset, dict) else {})
    out.images = _read_images(doc, buffers)

    nodes = listed(doc, "nodes")
    if len(nodes) > limits.max_nodes:
        raise GLBError(f"the file has {len(nodes):,} nodes; the limit is {limits.max_nodes:,}")
    children = _children_of(doc, nodes)
    roots = list(dict.fromkeys(whole(n, "scene node", 0, len(nodes) - 1) for n in listed(scene_doc, "nodes")))
    with np.errstate(over="ignore", invalid="ignore"):  # transforms are checked finite where they are made
        out.parts = _walk(doc, buffers, roots, children)
    out.origin = _far_off_centre(out.parts) if centre_far_off else None
    for part in out.parts:
        with np.errstate(over="ignore"):  # past float32: inf, which whoever reads the vertices refuses
            part.vertices = np.asarray(part.vertices if out.origin is None else part.vertices - out.origin, np.float32)
    return out


def _walk(doc: dict, buffers: Buffers, roots: list[int], children: list[list[int]]) -> list[GLBPart]:
    """Depth-first from the scene's roots: each mesh node becomes a part under its world transform."""
    nodes, meshes, parts = listed(doc, "nodes"), listed(doc, "meshes"), []
    cache: dict[int, Optional[dict]] = {}
    stack, visited = [(n, np.eye(4)) for n in reversed(roots)], set()
    while stack:
        index, parent = stack.pop()
        if index in visited:  # only a cycle can lead back: every node has one parent (_children_of)
            raise GLBError(f"the node graph has a cycle through node {index}")
        visited.add(index)
        node = nodes[index]
        world = parent @ _node_matrix(node, index)
        if not np.isfinite(world).all():  # each node's numbers finite, their product too large
            raise GLBError(f"node {index} has a world transform too large to use")
        if "mesh" in node:
            mesh_index = whole(node["mesh"], f"node {index} mesh", 0, len(meshes) - 1)
            if mesh_index not in cache:
                cache[mesh_index] = _read_mesh(doc, buffers, meshes[mesh_index], mesh_index)
            part = _place(cache[mesh_index], world, buffers.budget)
            if part is not None:
                name = node.get("name") if isinstance(node.get("name"), str) else None
                mesh_name = meshes[mesh_index].get("name")
                part.name = name or (mesh_name if isinstance(mesh_name, str) else "") or f"mesh.{mesh_index}"
                parts.append(part)
        stack.extend((child, world) for child in reversed(children[index]))
    return parts


def _dict_or_empty(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _children_of(doc: dict, nodes: list) -> list[list[int]]:
    """Each node's checked children. glTF's nodes form trees: a node with two parents (shared
    subtrees can expand exponentially) is refused; a cycle is found by the walk."""
    parent_of: dict[int, int] = {}
    out = []
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise GLBError(f"nodes[{index}] is not a JSON object")
        kids = [whole(c, f"node {index} child", 0, len(nodes) - 1) for c in listed(node, "children")]
        for child in kids:
            if child in parent_of or child == index:
                raise GLBError(f"node {child} has more than one parent (nodes {parent_of.get(child, child)} and "
                               f"{index}); glTF's nodes form trees")
            parent_of[child] = index
        out.append(kids)
    return out


def _node_matrix(node: dict, index: int) -> np.ndarray:
    """The node's local 4x4 transform (column vectors), its numbers checked finite."""
    if "matrix" in node:
        return np.asarray(numbers(node["matrix"], 16, f"node {index} matrix"), np.float64).reshape(4, 4).T  # column-major
    t = np.asarray(numbers(node.get("translation", [0, 0, 0]), 3, f"node {index} translation"))
    x, y, z, w = numbers(node.get("rotation", [0, 0, 0, 1]), 4, f"node {index} rotation")
    s = np.asarray(numbers(node.get("scale", [1, 1, 1]), 3, f"node {index} scale"))
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
    if not np.isfinite(m).all():  # finite numbers can still overflow in the products
        raise GLBError(f"node {index} has a transform too large to use")
    return m


def _place(geom: Optional[dict], world: np.ndarray, budget: Budget) -> Optional[GLBPart]:
    """One instance of a mesh under its node's world transform, counted against the limits."""
    if geom is None:
        return None
    verts, normals, faces = geom["vertices"], geom["normals"], geom["faces"]
    budget.count(len(verts), len(faces))
    placed = not np.array_equal(world, np.eye(4))
    mirrored = np.linalg.det(world[:3, :3]) < 0
    budget.take(len(verts) * (36 if placed else 12) + (len(faces) * 24 if mirrored else 0)
                + (0 if normals is None or not placed else len(normals) * 36), "placing a mesh instance")
    if placed:  # the usual identity node costs no copy; non-finite vertices are the caller's to refuse
        verts = verts.astype(np.float64) @ world[:3, :3].T + world[:3, 3]  # float32 once centred
        normals = None if normals is None else _transform_normals(normals, world[:3, :3])
    if mirrored:  # mirrored node: keep faces counter-clockwise
        faces = faces[:, [0, 2, 1]]
    return GLBPart("", verts, faces, geom["colors"], geom["uv"], geom["image"], geom["base_color"], normals,
                   world if placed else None, geom["material"])


def _read_mesh(doc: dict, buffers: Buffers, mesh: Any, index: int) -> Optional[dict]:
    if not isinstance(mesh, dict):
        raise GLBError(f"meshes[{index}] is not a JSON object")
    prims = [p for p in (_read_primitive(doc, buffers, q, index) for q in listed(mesh, "primitives")) if p]
    return _merge_primitives(prims, buffers.budget) if prims else None


def _triangles(indices: np.ndarray, mode: int, budget: Budget) -> np.ndarray:
    if mode == _MODE_TRIANGLES:
        return indices[: len(indices) // 3 * 3].reshape(-1, 3)
    if len(indices) < 3:
        return np.zeros((0, 3), np.int64)
    budget.take((len(indices) - 2) * 24, "triangulating a strip or fan")
    if mode == _MODE_TRIANGLE_STRIP:
        tri = np.stack([indices[:-2], indices[1:-1], indices[2:]], axis=1)
        odd = np.arange(len(tri)) % 2 == 1
        tri[odd] = tri[odd][:, [1, 0, 2]]
        return tri
    return np.stack([np.full(len(indices) - 2, indices[0]), indices[1:-1], indices[2:]], axis=1)  # a fan


def _attribute(buffers: Buffers, attrs: dict, name: str, widths: tuple[int, ...], count: int, what: str) -> np.ndarray:
    """A vertex attribute as float32, checked to have one element per vertex of a known width."""
    values = buffers.accessor(attrs[name])
    if values.shape[1] not in widths or len(values) != count:
        raise GLBError(f"{what} {name} has {len(values)} elements of width {values.shape[1]}; "
                       f"expected {count} of width {' or '.join(map(str, widths))}")
    buffers.budget.take(values.size * 4, what)
    return values.astype(np.float32)


def _read_primitive(doc: dict, buffers: Buffers, prim: Any, mesh_index: int) -> Optional[dict]:
    what = f"mesh {mesh_index}"
    if not isinstance(prim, dict):
        raise GLBError(f"a primitive of {what} is not a JSON object")
    mode = prim.get("mode", _MODE_TRIANGLES)
    attrs = prim.get("attributes", {})
    if not isinstance(attrs, dict):
        raise GLBError(f"the attributes of a primitive of {what} are not a JSON object")
    if mode not in (_MODE_TRIANGLES, _MODE_TRIANGLE_STRIP, _MODE_TRIANGLE_FAN) or "POSITION" not in attrs:
        return None  # points and lines carry no surface
    positions = buffers.accessor(attrs["POSITION"])
    if positions.shape[1] != 3:
        raise GLBError(f"{what} POSITION must be VEC3, got width {positions.shape[1]}")
    buffers.budget.take(positions.size * 4, what)
    positions = positions.astype(np.float32)
    if "indices" in prim:
        indices = buffers.accessor(prim["indices"]).reshape(-1)
        if indices.dtype.kind not in "iu":
            raise GLBError(f"{what} indices must be integers, got {indices.dtype}")
        buffers.budget.take(len(indices) * 8, what)
        indices = indices.astype(np.int64)
    else:
        buffers.budget.take(len(positions) * 8, what)
        indices = np.arange(len(positions), dtype=np.int64)
    faces = _triangles(indices, mode, buffers.budget)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(positions)):
        raise GLBError("triangle indices point outside the vertex list")
    out = {"vertices": positions, "faces": faces, "colors": None, "uv": None, "image": None, "base_color": None,
           "normals": None, "material": None}
    if "COLOR_0" in attrs:
        col = _attribute(buffers, attrs, "COLOR_0", (3, 4), len(positions), what)
        if col.shape[1] == 3:
            col = np.concatenate([col, np.ones((len(col), 1), np.float32)], axis=1)
        out["colors"] = col
    if "TEXCOORD_0" in attrs:
        out["uv"] = _attribute(buffers, attrs, "TEXCOORD_0", (2,), len(positions), what)
    if "NORMAL" in attrs:
        out["normals"] = _attribute(buffers, attrs, "NORMAL", (3,), len(positions), what)
    if "material" in prim:
        out["base_color"], out["image"] = _material(doc, prim["material"])
        out["material"] = _pbr(doc, prim["material"], out["base_color"])
    return out


def _pbr(doc: dict, index: int, color: Optional[tuple]) -> GLBMaterial:
    """Material `index` (already checked by `_material`) as a GLBMaterial."""
    material = doc["materials"][index]
    pbr = material.get("pbrMetallicRoughness", {})
    what = f"material {index}"

    def factor(source: Any, key: str, default: float) -> float:
        if not isinstance(source, dict) or key not in source:
            return default
        return min(max(numbers([source[key]], 1, f"{what} {key}")[0], 0.0), 1.0)

    extensions = material.get("extensions")
    transmission = extensions.get("KHR_materials_transmission") if isinstance(extensions, dict) else None
    name = material.get("name")
    return GLBMaterial(name=name[:63] if isinstance(name, str) else f"material {index}",
                       base_color=tuple(min(max(c, 0.0), 1.0) for c in color) if color else (1.0, 1.0, 1.0, 1.0),
                       metallic=factor(pbr, "metallicFactor", 1.0), roughness=factor(pbr, "roughnessFactor", 1.0),
                       transmission=factor(transmission, "transmissionFactor", 0.0))


def _material(doc: dict, index: Any) -> tuple[Optional[tuple], Optional[int]]:
    """(baseColorFactor, base-colour image index) of material `index`, each None when absent."""
    pbr = item(doc, "materials", index, "material").get("pbrMetallicRoughness", {})
    if not isinstance(pbr, dict):
        raise GLBError(f"material {index} pbrMetallicRoughness is not a JSON object")
    color = tuple(numbers(pbr["baseColorFactor"], 4, f"material {index} baseColorFactor")) \
        if "baseColorFactor" in pbr else None
    texture = pbr.get("baseColorTexture")
    if texture is None:
        return color, None
    if not isinstance(texture, dict):
        raise GLBError(f"material {index} baseColorTexture is not a JSON object")
    source = item(doc, "textures", texture.get("index"), "texture").get("source")
    if source is not None:
        whole(source, "texture source", 0, len(listed(doc, "images")) - 1)
    return color, source


def _read_images(doc: dict, buffers: Buffers) -> list[GLBImage]:
    images, limits = listed(doc, "images"), buffers.budget.limits
    if len(images) > limits.max_images:
        raise GLBError(f"the file has {len(images)} images; the limit is {limits.max_images}")
    out, pixels = [], 0
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise GLBError(f"images[{i}] is not a JSON object")
        # External or data-URI images are not produced by the backend: kept empty.
        blob = buffers.image_bytes(img["bufferView"]) if "bufferView" in img else b""
        pixels += image_pixels(blob)
        if pixels > limits.max_image_pixels:
            raise GLBError(f"the file's images decode to more than {limits.max_image_pixels:,} pixels "
                           f"(at least {pixels:,}); use smaller textures")
        name = img.get("name") if isinstance(img.get("name"), str) else f"image.{i}"
        mime = img.get("mimeType") if isinstance(img.get("mimeType"), str) else "image/png"
        out.append(GLBImage(name, mime, blob))
    return out


def image_pixels(blob: bytes) -> int:
    """Width x height from a PNG's or JPEG's header, without decoding it; 0 when the bytes are
    neither or too short to say (nothing that reads images here can decode those)."""
    if blob[:8] == b"\x89PNG\r\n\x1a\n" and len(blob) >= 24:
        width, height = struct.unpack_from(">II", blob, 16)
        return width * height
    offset = 2
    while blob[:2] == b"\xff\xd8" and offset + 9 <= len(blob) and blob[offset] == 0xFF:
        marker, length = blob[offset + 1], struct.unpack_from(">H", blob, offset + 2)[0]
        # Start-of-frame markers carry the size; C4, C8 and CC are other tables.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", blob, offset + 5)
            return width * height
        offset += 2 + length
    return 0


def _merge_primitives(prims: list[dict], budget: Budget) -> dict:
    """One part from several primitives (offsets on indices; optional channels filled)."""
    if len(prims) == 1:
        return prims[0]
    budget.take(sum(p["vertices"].nbytes * 4 + p["faces"].nbytes for p in prims), "merging primitives")
    offsets = np.cumsum([0] + [len(p["vertices"]) for p in prims[:-1]])
    merged = {
        "vertices": np.concatenate([p["vertices"] for p in prims]),
        "faces": np.concatenate([p["faces"] + o for p, o in zip(prims, offsets)]),
        "image": next((p["image"] for p in prims if p["image"] is not None), None),
        "base_color": next((p["base_color"] for p in prims if p["base_color"] is not None), None),
        "material": next((p["material"] for p in prims if p["material"] is not None), None),
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


def pack_glb(doc: dict, binary: bytes = b"") -> bytes:
    """A GLB file from its glTF document and BIN chunk (none when empty), each chunk padded to
    4 bytes as the format asks (JSON with spaces, BIN with zeros)."""
    text = _pad4(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    body = struct.pack("<II", len(text), CHUNK_JSON) + text
    if binary:
        padded = _pad4(bytes(binary))
        body += struct.pack("<II", len(padded), CHUNK_BIN) + padded
    return struct.pack("<III", GLB_MAGIC, 2, 12 + len(body)) + body


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
    return pack_glb(doc, binary)
