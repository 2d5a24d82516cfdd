"""What Texture Selected sends for one object: its mesh as the viewport shows it.

The views go round the object as the artist sees it, so its rotation and scale are applied
(not its location: the backend frames the mesh itself). An FBX import lying on its back
is painted standing up, and a stretched object is painted stretched. Shape keys and
modifiers that only move vertices (armature pose, lattice, displace) are applied too.
Modifiers that change the faces (Subdivision, Mirror) cannot be, because the result's UVs
go back onto the mesh's own loops; they are left out and the artist is told.

The fingerprint lets the write refuse a mesh that was edited in the meantime, whatever
frame and modifiers it was painted with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import bpy
import numpy as np

from .mesh_export import ExportError, object_to_glb

# Modifier types that move, weight or shade vertices without adding or removing any.
KEEPS_TOPOLOGY = frozenset({
    'ARMATURE', 'CAST', 'CORRECTIVE_SMOOTH', 'CURVE', 'DATA_TRANSFER', 'DISPLACE', 'HOOK', 'LAPLACIANDEFORM',
    'LAPLACIANSMOOTH', 'LATTICE', 'MESH_CACHE', 'MESH_DEFORM', 'NORMAL_EDIT', 'SHRINKWRAP', 'SIMPLE_DEFORM',
    'SMOOTH', 'SURFACE_DEFORM', 'UV_PROJECT', 'UV_WARP', 'VERTEX_WEIGHT_EDIT', 'VERTEX_WEIGHT_MIX',
    'VERTEX_WEIGHT_PROXIMITY', 'VOLUME_DISPLACE', 'WARP', 'WAVE', 'WEIGHTED_NORMAL',
})


@dataclass
class TextureUpload:
    """One object's upload.

    Attributes:
        glb: The triangulated mesh with its UVs (the UV map used for rendering).
        fingerprint: `mesh_fingerprint` of the mesh when it was sent.
        note: "" or what the sent shape leaves out of what the viewport shows.
        face_mask: One byte per triangle, 1 on selected faces (when asked for).
    """

    glb: bytes
    fingerprint: str
    note: str = ""
    face_mask: Optional[bytes] = None


def texture_upload(context, obj: bpy.types.Object, uv_name: str = "", with_mask: bool = False) -> TextureUpload:
    """The object's mesh, posed and placed as shown, ready for the `texture` task.

    Args:
        uv_name: The UV map to send ("" = the one used for rendering).
        with_mask: Also send which triangles lie on selected faces (a repaint).

    Raises:
        ExportError: not a mesh, or no faces (the message says what to do).
    """
    if obj is None or obj.type != 'MESH':
        raise ExportError("select a mesh object")
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    mesh = obj.data
    if not len(mesh.polygons):
        raise ExportError(_why_no_faces(context, obj))
    co, note = _shown_positions(context, obj)
    placed = co @ np.array(obj.matrix_world.to_3x3(), np.float32).T  # rotation and scale, no location
    uv_name = uv_name or next((layer.name for layer in mesh.uv_layers if layer.active_render), "")
    glb, mask = object_to_glb(obj, with_mask=with_mask, positions=placed, uv_name=uv_name, with_polygons=True, synced=True)
    return TextureUpload(glb=glb, fingerprint=mesh_fingerprint(mesh), note=note, face_mask=mask)


def unchanged_since(obj: bpy.types.Object, fingerprint: str) -> bool:
    """Whether `obj`'s mesh is still the one `fingerprint` was taken of (Edit Mode edits included)."""
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    return bool(fingerprint) and mesh_fingerprint(obj.data) == fingerprint


def _why_no_faces(context, obj) -> str:
    evaluated = obj.evaluated_get(context.evaluated_depsgraph_get())
    if obj.mode != 'EDIT' and len(evaluated.data.polygons):  # Skin, Screw, Geometry Nodes...
        return ("its faces come from its modifiers, and a texture needs faces of its own: "
                "Object > Apply > Visual Geometry to Mesh first")
    return "it has no faces to paint (only vertices or edges)"


def mesh_fingerprint(mesh: bpy.types.Mesh, triangles: np.ndarray | None = None) -> str:
    """A digest of the mesh's vertex positions and triangles: equal only for an unchanged mesh.

    Args:
        triangles: (3M,) int32 vertex per `loop_triangles` corner, when the caller has read them.
    """
    if triangles is None:
        mesh.calc_loop_triangles()
        triangles = np.empty(len(mesh.loop_triangles) * 3, np.int32)
        mesh.loop_triangles.foreach_get("vertices", triangles)
    return hashlib.sha1(_vertex_positions(mesh).tobytes() + b"|" + triangles.tobytes()).hexdigest()


def _shown_positions(context, obj) -> tuple[np.ndarray, str]:
    """(V, 3) vertex positions as shown, without the modifiers that change the topology (and
    a note naming those), else the mesh's own positions."""
    mesh = obj.data
    if obj.mode == 'EDIT':  # Edit Mode shows the cage being edited
        bent = [m.name for m in obj.modifiers if m.show_viewport] + (["shape keys"] if mesh.shape_keys else [])
        note = (f"'{obj.name}' was painted as its Edit Mode cage, without {', '.join(bent)}: "
                "texture it in Object Mode to paint the shape the scene shows") if bent else ""
        return _vertex_positions(mesh), note
    co = _evaluated_positions(context, obj)
    if co is not None:
        return co, ""
    reshaping = [m for m in obj.modifiers if m.show_viewport and m.type not in KEEPS_TOPOLOGY]
    left_out = ", ".join(m.name for m in reshaping) or "its modifiers"
    note = f"'{obj.name}' was painted without {left_out}, which change its faces: apply them first to paint the shape you see"
    for modifier in reshaping:
        modifier.show_viewport = False
    try:
        co = _evaluated_positions(context, obj) if reshaping else None
    finally:
        for modifier in reshaping:
            modifier.show_viewport = True
    return (_vertex_positions(mesh) if co is None else co), note


def _evaluated_positions(context, obj) -> np.ndarray | None:
    """(V, 3) positions of the evaluated mesh, or None when its topology is not the mesh's."""
    evaluated = obj.evaluated_get(context.evaluated_depsgraph_get())
    shown = evaluated.to_mesh()
    try:
        return _vertex_positions(shown) if _same_topology(obj.data, shown) else None
    finally:
        evaluated.to_mesh_clear()


def _vertex_positions(mesh: bpy.types.Mesh) -> np.ndarray:
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def _same_topology(mesh: bpy.types.Mesh, other: bpy.types.Mesh) -> bool:
    """Same vertices, polygons and corners, in the same order."""
    if (len(mesh.vertices), len(mesh.polygons), len(mesh.loops)) != (len(other.vertices), len(other.polygons), len(other.loops)):
        return False
    corners = [np.empty(len(m.loops), np.int32) for m in (mesh, other)]
    for m, array in zip((mesh, other), corners):
        m.loops.foreach_get("vertex_index", array)
    return bool(np.array_equal(*corners))
