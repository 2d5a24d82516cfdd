"""Write a `texture` result onto the object it was made for, keeping the artist's mesh (main thread only).

The backend returns the uploaded triangles in the same order (vertices possibly split at
new UV seams). The upload was the object's `loop_triangles`, so triangle corner i of the
result is loop `loop_triangles[i // 3].loops[i % 3]` of the mesh. The material reads the
UV map that already holds the result's UVs (the artist's own, when the mesh had usable ones);
else they become a new UV map "Diffusion 3D" on the existing loops ("Diffusion 3D.001" when
that name is taken by other UVs): no map a material reads is ever given other UVs. Vertices,
polygons, modifiers, vertex groups and the transform stay as they are; the texture gets a new
material in a new slot.

Quads and n-gons are sent as several triangles. When the object had a UV map, the backend
keeps it, so the triangles of one polygon agree on every shared corner. When it had none,
the backend unwraps it keeping each polygon's triangles in one chart (the upload says which
polygon each triangle came from), except where no chart can take them without an overlap.
One loop cannot hold two UVs, so just those polygons are split into the triangles that were
painted (bmesh keeps their attributes), every other polygon keeps its shape, and
`texture_notes` tells the artist.
"""

from __future__ import annotations

import json
from typing import Optional

import bmesh
import bpy
import numpy as np

from ..formats.glb import GLBScene
from ..formats.mesh_arrays import flip_v
from .texture_export import mesh_fingerprint
from .write_back import METADATA_KEY, load_image, new_node_material, read_metadata

UV_MAP = "Diffusion 3D"
UV_TOLERANCE = 1e-5  # UV units: corners closer than this are the same UV
MAX_UV_MAPS = 8  # Blender's limit per mesh


def apply_texture(context, obj: bpy.types.Object, result: GLBScene, storage: str = 'PACK',
                  fingerprint: str = "", only_slot: Optional[int] = None) -> bpy.types.Object:
    """Give `obj` the result's UVs and a new textured material in a new slot.

    Args:
        context: Blender context.
        obj: The mesh object that was sent.
        result: The parsed `texture` result.
        storage: 'PACK' or 'NEXT_TO_BLEND' (preference), where the image goes.
        fingerprint: `mesh_fingerprint` of the mesh when it was sent ("" = not checked).
        only_slot: Only the faces of this material slot take the new material (a repaint of
            faces in one flat colour); None = every face.

    Returns:
        The object.

    Raises:
        ValueError: the result has no texture or UVs, the mesh changed since it was sent, or
            it has no room for another UV map. Nothing has changed then, not even the mode.
    """
    parts = [p for p in result.parts if len(p.faces)]
    image_index = next((p.image for p in parts if p.image is not None), None)
    if not parts or image_index is None or any(p.uv is None for p in parts):
        raise ValueError("the result has no texture with UVs")
    # Every check comes before anything changes, the mode included: a refused write leaves the
    # artist where they were. In Edit Mode the mesh is read as edited, synced without leaving it.
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    mesh = obj.data
    corner_uv = flip_v(np.concatenate([p.uv[p.faces.reshape(-1)] for p in parts]))  # (3M, 2) Blender's v-up
    tri_vertex, tri_loop, tri_polygon = _loop_triangles(mesh)
    if len(tri_vertex) != len(corner_uv) or (fingerprint and mesh_fingerprint(mesh, tri_vertex) != fingerprint):
        raise ValueError(f"'{obj.name}' was edited while its texture was painted; "
                         "import the result from the job list, or texture it again")
    probe = mesh.copy() if obj.mode == 'EDIT' else mesh  # Edit Mode keeps the UVs out of reach but on a copy
    try:
        reused, maps = _matching_uv_map(probe, tri_loop, corner_uv), len(probe.uv_layers)
    finally:
        if probe is not mesh:
            bpy.data.meshes.remove(probe)
    if reused is None and maps >= MAX_UV_MAPS:
        raise ValueError(f"'{obj.name}' already has {MAX_UV_MAPS} UV maps, the most a mesh can have; remove one")
    name = f"{obj.name} texture"
    image = load_image(result, image_index, name, storage)
    if obj.mode != 'OBJECT':  # edit-mode data would overwrite what is written here
        with context.temp_override(active_object=obj, object=obj):
            bpy.ops.object.mode_set(mode='OBJECT')
        tri_vertex, tri_loop, tri_polygon = _loop_triangles(mesh)  # as Object Mode wrote the mesh

    # Loops get the UV of their triangle corner; loops shared by two triangles of one
    # polygon must agree, else that polygon is split into its painted triangles.
    loop_uv = np.zeros((len(mesh.loops), 2), np.float32)
    loop_uv[tri_loop] = corner_uv
    disagree = np.abs(loop_uv[tri_loop] - corner_uv).max(axis=1) > UV_TOLERANCE  # (3M,)
    split = np.unique(tri_polygon[disagree.reshape(-1, 3).any(axis=1)])
    if len(split):
        _triangulate(mesh, split)
        new_vertex, new_loop, _ = _loop_triangles(mesh)
        loop_uv = np.zeros((len(mesh.loops), 2), np.float32)
        loop_uv[new_loop] = _uv_by_triangle(tri_vertex, corner_uv, new_vertex)

    layer_name = reused
    if layer_name is None:  # (a map that matched needs no write, and never a split: its loops agree)
        layer_name = mesh.uv_layers.new(name=UV_MAP, do_init=False).name  # "Diffusion 3D.001" when taken
        mesh.attributes[layer_name].data.foreach_set("vector", loop_uv.reshape(-1))

    material = _textured_material(name, image, layer_name, result.metadata.get("texture", {}).get("average_color"))
    mesh.materials.append(material)
    slot = len(mesh.materials) - 1
    index = np.full(len(mesh.polygons), slot, np.int32)
    if only_slot is not None:  # polygons split above keep their slot, so this reads the mesh as it is now
        before = np.empty(len(mesh.polygons), np.int32)
        mesh.polygons.foreach_get("material_index", before)
        index = np.where(before == min(only_slot, slot - 1) if slot else True, slot, before)
    mesh.polygons.foreach_set("material_index", index)
    mesh.update()
    for user in (o for o in bpy.data.objects if o.data == mesh):  # linked duplicates too
        user.active_material_index = slot  # the Material tab shows the new material, not the old first one

    # Keep what the object already carried (parts, prompt) and add what the texture was made from.
    metadata = read_metadata(obj)
    metadata["texture"] = dict(result.metadata.get("texture", result.metadata))
    metadata["texture"]["split_polygons"] = int(len(split))  # quads/n-gons the unwrap cut, now triangles
    obj[METADATA_KEY] = json.dumps(metadata)
    return obj


def _matching_uv_map(mesh, tri_loop: np.ndarray, corner_uv: np.ndarray) -> str | None:
    """The name of a UV map whose UVs are these, the one used for rendering first, else None.

    The painted UVs are the mesh's own whenever it had usable ones, so the texture reads the
    artist's map itself: no duplicate, and exporters write it as the first texture coordinates,
    which many engines read alone. A map is never given other UVs than it has: a texture for
    other UVs (an unwrap, or a map unwrapped again since) gets a map of its own.
    """
    layers = sorted(mesh.uv_layers, key=lambda layer: not layer.active_render)
    for layer in layers:
        uv = np.empty(len(mesh.loops) * 2, np.float32)
        mesh.attributes[layer.name].data.foreach_get("vector", uv)
        if np.abs(uv.reshape(-1, 2)[tri_loop] - corner_uv).max(initial=0.0) <= UV_TOLERANCE:
            return layer.name
    return None


def texture_notes(obj: bpy.types.Object) -> list[str]:
    """What the artist should know about a texture just written to `obj`."""
    split = read_metadata(obj).get("texture", {}).get("split_polygons", 0)
    if not split:
        return []
    return [f"the UV unwrap cut {split} quads or n-gons into triangles, as it painted them "
            "(a mesh that has a UV map keeps every face)"]


def _loop_triangles(mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3M,) vertex and loop per triangle corner and (M,) polygon per triangle, as exported."""
    mesh.calc_loop_triangles()
    n = len(mesh.loop_triangles)
    vertex, loop, polygon = np.empty(3 * n, np.int32), np.empty(3 * n, np.int32), np.empty(n, np.int32)
    mesh.loop_triangles.foreach_get("vertices", vertex)
    mesh.loop_triangles.foreach_get("loops", loop)
    mesh.loop_triangles.foreach_get("polygon_index", polygon)
    return vertex, loop, polygon


def _triangulate(mesh, polygons: np.ndarray) -> None:
    """Split the given polygons into triangles the way `loop_triangles` does (first-to-third
    diagonal for quads, ear clipping for n-gons), keeping every attribute."""
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        bm.faces.ensure_lookup_table()
        faces = [bm.faces[int(i)] for i in polygons]
        bmesh.ops.triangulate(bm, faces=faces, quad_method='FIXED', ngon_method='EAR_CLIP')
        bm.to_mesh(mesh)
    finally:
        bm.free()


def _uv_by_triangle(old_vertex: np.ndarray, old_uv: np.ndarray, new_vertex: np.ndarray) -> np.ndarray:
    """UVs for the corners of a re-triangulated mesh, found by each triangle's three vertices.

    Args:
        old_vertex: (3M,) vertex per corner of the painted triangles; old_uv: (3M, 2) their UVs.
        new_vertex: (3K,) vertex per corner of the mesh's triangles now.

    Returns:
        (3K, 2) UV per new corner. A triangle not found among the painted ones (a split that
        differs) takes, per corner, the first painted UV of its vertex.
    """
    old_tri, new_tri = old_vertex.reshape(-1, 3), new_vertex.reshape(-1, 3)
    old_order, new_order = np.argsort(old_tri, axis=1), np.argsort(new_tri, axis=1)
    old_key = np.take_along_axis(old_tri, old_order, axis=1)  # (M, 3) sorted vertices
    new_key = np.take_along_axis(new_tri, new_order, axis=1)  # (K, 3)
    sorted_uv = np.take_along_axis(old_uv.reshape(-1, 3, 2), old_order[..., None], axis=1)  # (M, 3, 2)
    _, index, inverse = np.unique(np.concatenate([old_key, new_key]), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    match = index[inverse[len(old_key):]]  # (K,) first row with the same key
    found = match < len(old_key)
    uv = np.empty((len(new_key), 3, 2), np.float32)
    uv_sorted = sorted_uv[np.where(found, match, 0)]  # (K, 3, 2) in sorted-vertex order
    back = np.argsort(new_order, axis=1)  # sorted position of each corner
    uv[:] = np.take_along_axis(uv_sorted, back[..., None], axis=1)
    if not found.all():
        first = np.zeros((int(old_vertex.max()) + 1, 2), np.float32)
        first[old_vertex[::-1]] = old_uv[::-1]  # reversed: the first corner of each vertex wins
        missing = ~found
        uv[missing] = first[new_tri[missing]]
    return uv.reshape(-1, 2)


def _textured_material(name: str, image: bpy.types.Image, uv_map_name: str, average_color=None) -> bpy.types.Material:
    """Principled BSDF whose Base Color is the image, read through its UV map by name
    (explicitly, so the object's other UV maps may stay active). Solid shading shows the
    texture's average colour (linear RGB from the backend), not white."""
    material = new_node_material(name)
    tree = material.node_tree
    bsdf = next(n for n in tree.nodes if n.type == 'BSDF_PRINCIPLED')
    texture = tree.nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.location = (bsdf.location.x - 400, bsdf.location.y)
    uv_map = tree.nodes.new("ShaderNodeUVMap")
    uv_map.uv_map = uv_map_name
    uv_map.location = (texture.location.x - 250, texture.location.y - 100)
    tree.links.new(uv_map.outputs["UV"], texture.inputs["Vector"])
    tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    if isinstance(average_color, list) and len(average_color) == 3:
        material.diffuse_color = (*(min(max(float(c), 0.0), 1.0) for c in average_color), 1.0)
    return material
