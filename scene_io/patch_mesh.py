"""Edit the artist's own mesh in place: delete the triangles an edit replaced, add the new parts.

For a mesh the built-in model fitted parts to, the backend says which uploaded triangles it
kept (`metadata["patch"]`). Replacing the whole mesh would turn the kept quads into triangles
and drop their UVs, materials, custom attributes and the artist's vertex groups; patching
leaves every kept polygon exactly as it was (main thread only).
"""

from __future__ import annotations

from typing import Optional

import bmesh
import bpy
import numpy as np

from ..formats.blender_layout import MeshArrays
from ..formats.face_parts import from_runs
from ..formats.glb import GLBScene
from .write_back import (PART_MATERIAL_KEY, build_material, build_mesh, build_part_material, read_metadata, release_mesh,
                         select_vertices, store_metadata)

NEW_PARTS_TAG = "diffusion3d_new_parts"  # custom property of the material generated parts share


def patchable(obj: bpy.types.Object, result: GLBScene) -> Optional[dict]:
    """The result's patch when it applies to `obj` as it is now (same triangle count), else None."""
    patch = result.metadata.get("patch")
    if not isinstance(patch, dict) or obj.type != 'MESH':
        return None
    mesh = obj.data
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    mesh.calc_loop_triangles()
    return patch if int(patch.get("triangles", -1)) == len(mesh.loop_triangles) else None


def _new_part_slots(obj, mesh: bpy.types.Mesh, arrays: MeshArrays, result: GLBScene, storage: str) -> np.ndarray:
    """The material slot of each new triangle: the parts' own materials (a slot already standing
    for the same material is reused), else one slot all generated parts share."""
    if arrays.materials:
        slots = []
        for source in arrays.materials:
            slot = next((k for k, m in enumerate(mesh.materials) if m is not None and m.get(PART_MATERIAL_KEY) == source.name), None)
            if slot is None:
                mesh.materials.append(build_part_material(f"{obj.name} {source.name}", source))
                slot = len(mesh.materials) - 1
            slots.append(slot)
        return np.asarray(slots, np.int32)[arrays.face_material]
    slot = next((k for k, m in enumerate(mesh.materials) if m is not None and m.get(NEW_PARTS_TAG)), None)
    if slot is None:  # the first edit: a slot for generated parts (later edits reuse it)
        material = build_material(f"{obj.name} (new parts)", arrays, result, storage)
        material[NEW_PARTS_TAG] = True
        mesh.materials.append(material)
        slot = len(mesh.materials) - 1
    return np.full(len(arrays.faces), slot, np.int32)


def patch_mesh(context, obj: bpy.types.Object, result: GLBScene, patch: dict, storage: str = 'PACK') -> bpy.types.Object:
    """Keep the polygons whose triangles the edit kept, delete the others, add the new parts with
    their own material slot and one vertex group per part; the transform stays, undo restores."""
    if obj.mode != 'OBJECT':
        with context.temp_override(active_object=obj, object=obj):
            bpy.ops.object.mode_set(mode='OBJECT')
    old = obj.data
    mesh = old.copy()  # a new datablock, as in replace_mesh: undo brings the old one back
    mesh.calc_loop_triangles()
    n_tris = len(mesh.loop_triangles)
    kept_parts = {name: from_runs(runs, n_tris) for name, runs in dict(patch.get("keep", {})).items()}
    keep = np.zeros(n_tris, bool)
    for mask in kept_parts.values():
        keep |= mask
    polygon = np.empty(n_tris, np.int32)
    mesh.loop_triangles.foreach_get("polygon_index", polygon)
    doomed = np.unique(polygon[~keep])
    corners = np.empty(n_tris * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", corners)
    obj.data = mesh

    # Part groups: the kept parts' vertices (the corners of their kept triangles) get their
    # groups before the deletion renumbers them; older part groups are replaced.
    shape = result.metadata.get("shape", {})
    names = list(shape.get("names", [])) if isinstance(shape, dict) else []
    previous = (read_metadata(obj).get("shape") or {}).get("names", [])
    for group in list(obj.vertex_groups):
        if group.name in previous or group.name in names:
            obj.vertex_groups.remove(group)
    for name, mask in kept_parts.items():
        vertices = np.unique(corners.reshape(-1, 3)[mask])
        if len(vertices):
            obj.vertex_groups.new(name=name).add(vertices.tolist(), 1.0, 'REPLACE')

    # Delete the replaced polygons, then append the new parts.
    new_names = set(patch.get("new_parts", []))
    fresh = [p for p in result.parts if p.name in new_names and len(p.faces)]
    bm = bmesh.new()
    bm.from_mesh(mesh)
    bm.faces.ensure_lookup_table()
    bmesh.ops.delete(bm, geom=[bm.faces[int(i)] for i in doomed], context='FACES')
    first_new = len(bm.verts)
    arrays = None
    if fresh:
        arrays = MeshArrays(GLBScene(parts=fresh, images=result.images, extras=result.extras))
        addition = build_mesh("diffusion3d-new-parts", arrays)
        addition.polygons.foreach_set("material_index", _new_part_slots(obj, mesh, arrays, result, storage))
        bm.from_mesh(addition)
        bpy.data.meshes.remove(addition)
    bm.to_mesh(mesh)
    bm.free()
    mesh.update()
    select_vertices(mesh, np.arange(len(mesh.vertices)) >= first_new)  # the new parts, ready for another try
    for name, start, end in (arrays.part_ranges if arrays is not None else []):
        group = obj.vertex_groups.get(name) or obj.vertex_groups.new(name=name)
        group.add(list(range(first_new + start, first_new + end)), 1.0, 'REPLACE')
    release_mesh(old, mesh)
    store_metadata(obj, result.metadata)
    return obj
