"""The selected object as a triangulated GLB in object space (+UVs, face mask), for uploads."""

from __future__ import annotations

from typing import Optional

import bpy
import numpy as np

from ..formats.face_parts import FACE_PARTS_KEY, POLYGONS_KEY, VERTEX_IDS_KEY, encode_face_parts, encode_indices
from ..formats.glb import write_glb
from ..formats.mesh_arrays import blender_to_gltf, flip_v, weld_corners
from .write_back import METADATA_KEY, read_metadata


class ExportError(ValueError):
    """The object cannot be sent (not a mesh, empty, nothing selected)."""


def object_to_glb(obj: bpy.types.Object, with_mask: bool = False, positions: Optional[np.ndarray] = None,
                  uv_name: str = "", with_polygons: bool = False, synced: bool = False) -> tuple[bytes, Optional[bytes]]:
    """Triangulate `obj`'s mesh (no modifiers, object space unless `positions`, glTF axes) into GLB bytes.

    Args:
        obj: A mesh object. In Edit Mode its edit data is read.
        with_mask: Also return a face mask: one byte per GLB triangle, 1 where the Blender
            face it came from is selected.
        positions: (V, 3) vertex positions (Blender axes) sent instead of the mesh's own.
        uv_name: The UV map sent ("" = the active one).
        with_polygons: Also send which polygon each triangle was cut from (when any polygon
            has more than three corners), so an unwrap can keep quads and n-gons whole.
        synced: The caller has just run `update_from_editmode` (a dense mesh's sync is not free).

    Returns:
        (glb, face_mask or None). The object's `diffusion3d` metadata travels as scene extras,
        with each triangle's part when the object has part vertex groups.
    """
    if obj is None or obj.type != 'MESH':
        raise ExportError("select a mesh object")
    if obj.mode != 'EDIT':
        return _mesh_to_glb(obj, obj.data, with_mask, positions, uv_name, with_polygons)
    # In Edit Mode the mesh's layer data (UVs) is not reachable: read a synced, temporary copy.
    if not synced:
        obj.update_from_editmode()
    copy = obj.data.copy()
    try:
        return _mesh_to_glb(obj, copy, with_mask, positions, uv_name, with_polygons)
    finally:
        bpy.data.meshes.remove(copy)


def _mesh_to_glb(obj, mesh, with_mask: bool, positions: Optional[np.ndarray], uv_name: str,
                 with_polygons: bool) -> tuple[bytes, Optional[bytes]]:
    mesh.calc_loop_triangles()
    n_tris = len(mesh.loop_triangles)
    if n_tris == 0:
        raise ExportError(f"'{obj.name}' has no faces to send")
    corner_vertex = np.empty(n_tris * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", corner_vertex)
    corner_loop = np.empty(n_tris * 3, np.int32)
    mesh.loop_triangles.foreach_get("loops", corner_loop)
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    if positions is not None:
        co = np.asarray(positions, np.float32).reshape(-1)

    corner_uv = None
    layer = mesh.uv_layers.get(uv_name) if uv_name else mesh.uv_layers.active
    if layer is not None:
        loop_uv = np.empty(len(mesh.loops) * 2, np.float32)
        layer.data.foreach_get("uv", loop_uv)
        corner_uv = loop_uv.reshape(-1, 2)[corner_loop]
    source, faces, uv = weld_corners(corner_vertex, corner_uv, len(mesh.vertices))
    vertices = blender_to_gltf(co.reshape(-1, 3)[source])

    polygon = np.empty(n_tris, np.int32)  # the polygon each triangle was cut from, when needed
    if with_mask or with_polygons:
        mesh.loop_triangles.foreach_get("polygon_index", polygon)
    mask = None
    if with_mask:
        selected = np.empty(len(mesh.polygons), bool)
        mesh.polygons.foreach_get("select", selected)
        mask = selected[polygon].astype(np.uint8).tobytes()
    metadata = read_metadata(obj)
    extras = {METADATA_KEY: metadata}
    if with_polygons and n_tris > len(mesh.polygons):  # quads or n-gons: keep them whole in an unwrap
        extras[POLYGONS_KEY] = encode_indices(polygon)
    face_parts = _face_parts(obj, mesh, corner_vertex.reshape(-1, 3), metadata)
    if face_parts is not None:
        extras[FACE_PARTS_KEY] = face_parts
    extras[VERTEX_IDS_KEY] = encode_indices(source)  # which uploaded vertices are one (UV seams split them)
    glb = write_glb(vertices, faces, uv=None if uv is None else flip_v(uv), extras=extras, name=obj.name)
    return glb, mask


def _face_parts(obj, mesh, triangles: np.ndarray, metadata: dict) -> Optional[dict]:
    """Each triangle's part, from the object's vertex groups named after the parts of its result
    (a triangle belongs to the group all three corners are in, else its first corner's), so the
    backend knows the parts exactly even after the artist moved vertices. None without part groups."""
    shape = metadata.get("shape") if isinstance(metadata.get("shape"), dict) else {}
    names = [n for n in shape.get("names", []) if isinstance(n, str)]
    groups = [g for g in obj.vertex_groups if g.name in names]
    if not groups:
        return None
    column = {g.index: k for k, g in enumerate(groups)}
    member = np.zeros((len(mesh.vertices), len(groups)), bool)  # (V, G)
    for v in mesh.vertices:
        for g in v.groups:
            k = column.get(g.group)
            if k is not None and g.weight > 0:
                member[v.index, k] = True
    shared = member[triangles[:, 0]] & member[triangles[:, 1]] & member[triangles[:, 2]]  # (T, G)
    first = member[triangles[:, 0]]
    index = np.where(shared.any(1), shared.argmax(1), np.where(first.any(1), first.argmax(1), -1))
    return encode_face_parts([g.name for g in groups], index)
