"""GLB in and out: a pipeline's MeshResult to GLB bytes, and uploaded GLBs back to parts.

Writing goes through trimesh. Reading goes through the add-on's own parser (formats/glb.py,
numpy only), because the order of triangles must be exactly the file's (a face mask refers
to it) and both sides must read a file the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import GenerationFailed, InputError
from ..results import Material, MeshPart, MeshResult

EXTRAS_KEY = "diffusion3d"



def mesh_result_to_glb(result: MeshResult) -> bytes:
    """Encode a pipeline result as a binary glTF.

    Each part becomes its own named node (in the frame of the node it was read from, or at its
    `origin`, if it has either); vertex colours travel as `COLOR_0`, normals as `NORMAL`, UVs
    as `TEXCOORD_0` with `result.texture` as the `baseColorTexture` of one material all parts
    with UVs share, a part's own `material` as a named PBR material (transmission through
    `KHR_materials_transmission`), and `result.metadata` as the scene's `extras["diffusion3d"]`.

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
    # One textured material for every part with UVs (the texture is stored once), one plain for
    # the others: glTF's defaults, for a part without a material too, are metallic 1 and
    # roughness 1, which viewers show as tinted metal. These are Blender's Principled BSDF
    # defaults, as the add-on's own material.
    painted, plain = (trimesh.visual.material.PBRMaterial(name=name, baseColorTexture=image, metallicFactor=0.0,
                                                          roughnessFactor=0.5)
                      for name, image in (("diffusion3d_texture", texture), ("diffusion3d", None)))
    scene = trimesh.Scene()
    used: set[str] = set()
    transmission: dict[str, float] = {}
    for part in result.parts:
        vertices, faces, normals, place = _in_node_frame(part)
        if len(vertices) == 0 or len(faces) == 0:
            raise GenerationFailed(f"part {part.name!r} is empty (no vertices or no triangles)")
        colors = None if part.vertex_colors is None else _rgba_u8(part.vertex_colors)
        # process=False keeps vertex order and count as the pipeline made them; normals given
        # here are written (NORMAL), and a part without them is shaded flat, as glTF says.
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_normals=normals, process=False)
        uv = None
        if part.uv is not None:
            uv = np.array(part.uv, dtype=np.float64).reshape(-1, 2)
            uv[:, 1] = 1.0 - uv[:, 1]  # trimesh keeps v up and flips it back on export
        material = painted if uv is not None and texture is not None else plain
        if part.material is not None and material is plain:
            material = _pbr(part.material)
            transmission[part.material.name] = part.material.transmission
        mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        if colors is not None:
            mesh.visual.vertex_attributes["color"] = colors  # COLOR_0
        name = _unique(part.name or "mesh", used)
        scene.add_geometry(mesh, node_name=name, geom_name=name, transform=place)
    scene.metadata[EXTRAS_KEY] = result.metadata
    data = _with_transmission(scene.export(file_type="glb"), transmission)
    if result.metadata and EXTRAS_KEY not in read_glb_extras(data):
        raise TypeError("the result metadata is not JSON-serialisable")  # a pipeline bug, not the user's
    return data


def _pbr(material: Material):
    import trimesh

    return trimesh.visual.material.PBRMaterial(
        name=material.name, baseColorFactor=np.clip(material.base_color, 0, 1), metallicFactor=float(material.metallic),
        roughnessFactor=float(material.roughness))


def _with_transmission(data: bytes, transmission: dict[str, float]) -> bytes:
    """The GLB with `KHR_materials_transmission` on the named materials that transmit light
    (trimesh writes no material extensions): its document rewritten, the BIN chunk kept."""
    from formats.glb import pack_glb
    from formats.glb_buffers import split_chunks

    if not any(v > 0 for v in transmission.values()):
        return data
    doc, binary = split_chunks(data)
    for material in doc.get("materials", []):
        if transmission.get(material.get("name"), 0.0) > 0:
            factor = float(transmission[material["name"]])
            material.setdefault("extensions", {})["KHR_materials_transmission"] = {"transmissionFactor": factor}
    used = doc.setdefault("extensionsUsed", [])
    if "KHR_materials_transmission" not in used:
        used.append("KHR_materials_transmission")
    return pack_glb(doc, binary)


def _in_node_frame(part: MeshPart) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    """(vertices, faces, normals, node transform or None) to write `part` with: back in the frame
    of the node it was read from (`node_matrix`; float64, so far-off nodes keep their detail),
    else placed at its `origin`."""
    vertices = np.asarray(part.vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(part.faces, dtype=np.int64).reshape(-1, 3)
    origin = np.zeros(3) if part.origin is None else np.asarray(part.origin, np.float64)
    matrix = part.node_matrix
    if matrix is None or not _decomposable(matrix[:3, :3]):
        place = None if part.origin is None else np.block([[np.eye(3), origin[:, None]], [np.zeros((1, 3)), 1.0]])
        return vertices.astype(np.float32), faces, part.normals, place
    linear = matrix[:3, :3]
    local = (vertices + origin - matrix[:3, 3]) @ np.linalg.inv(linear).T
    normals = None
    if part.normals is not None:  # they turned by the inverse transpose: back by the transpose
        normals = np.asarray(part.normals, np.float64) @ linear
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    if np.linalg.det(linear) < 0:  # the reader turned a mirrored node's faces: as they were
        faces = faces[:, [0, 2, 1]]
    return local.astype(np.float32), faces, normals, matrix


def _decomposable(linear: np.ndarray) -> bool:
    """Whether a node may carry this 3x3 transform: rotation times scale, as glTF requires. A
    flattened hierarchy (a rotated child of a stretched parent) is sheared, and one scaled to
    nothing has no inverse: such parts are written baked."""
    gram = linear.T @ linear  # diagonal exactly when the columns are orthogonal
    scale = float(np.abs(np.diag(gram)).max())
    return abs(np.linalg.det(linear)) > 1e-12 and float(np.abs(gram - np.diag(np.diag(gram))).max()) <= 1e-9 * scale


def read_glb_meshes(data: bytes, centre_far_off: bool = False) -> tuple[list[MeshPart], dict[str, Any]]:
    """Decode an uploaded GLB into parts, with node transforms applied.

    The add-on's reader (formats/glb.py, numpy only) does the parsing, so both sides read a
    file the same way; the order of triangles is the file's, which a face mask relies on.

    Args:
        data: The GLB file.
        centre_far_off: Read a scene far from the origin centred, each part's `origin` saying
            where (for a pipeline whose result keeps its parts' `origin`).

    Returns:
        (parts, extras): one MeshPart per mesh node with triangles, named after the node (its
        mesh's name, or "mesh.<i>", when unnamed; repeated names get ".1", ".2"), in the file's
        triangle order (with `polygons` when the add-on sent which polygon each triangle
        was cut from); and the scene's `extras` dict (our metadata sits under `extras["diffusion3d"]`).

    Raises:
        InputError: the bytes are not a readable GLB, or it holds no triangles.
    """
    from formats.face_parts import POLYGONS_KEY, decode_indices
    from formats.glb import GLBError, read_glb

    try:
        scene = read_glb(data, centre_far_off)
    except GLBError as e:
        raise InputError(f"the mesh is not a readable GLB file ({e})") from None
    used: set[str] = set()
    parts = [MeshPart(_unique(p.name, used), p.vertices, p.faces.astype(np.int64, copy=False),
                      None if p.colors is None else _rgba_u8(p.colors), p.uv, normals=p.normals, origin=scene.origin,
                      node_matrix=p.node_matrix, material=_material(p.material))
             for p in scene.parts if len(p.faces)]
    if not parts:
        raise InputError("the GLB holds no triangle meshes")
    polygons = decode_indices(scene.extras.get(POLYGONS_KEY), sum(len(p.faces) for p in parts))
    if polygons is not None:  # the add-on's: file order, across the parts
        offsets = np.cumsum([0] + [len(p.faces) for p in parts])
        for part, start, stop in zip(parts, offsets[:-1], offsets[1:]):
            part.polygons = polygons[start:stop]
    return parts, dict(scene.extras)


def read_glb_extras(data: bytes) -> dict[str, Any]:
    """The scene `extras` of a GLB, without decoding its meshes (cheap; {} for an unreadable file)."""
    from formats.glb import GLBError
    from formats.glb import read_glb_extras as read_extras

    try:
        return read_extras(data)
    except GLBError:
        return {}


def _material(material) -> Any:
    """A read GLBMaterial as the backend's Material (None stays None)."""
    if material is None:
        return None
    return Material(material.name, tuple(material.base_color), material.metallic, material.roughness,
                    material.transmission)


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
