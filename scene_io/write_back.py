"""Write a parsed GLB result into the scene with foreach_set on numpy arrays (main thread only)."""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from typing import Optional

import bpy
import numpy as np

from ..formats.blender_layout import MeshArrays
from ..formats.glb import GLBMaterial, GLBScene

METADATA_KEY = "diffusion3d"


def build_mesh(name: str, arrays: MeshArrays) -> bpy.types.Mesh:
    """A new mesh datablock from prepared arrays: memory copies, no per-vertex Python loops.

    Arrays go straight into the mesh's attribute storage (`position`, `.corner_vert`,
    `.edge_verts`, ...), where foreach_set on a matching numpy dtype is a memory copy. The edges
    come prepared (`MeshArrays`, off the main thread for new results) rather than from Blender's
    `calc_edges`, which would take 0.05-0.08 s of the main thread on 1M triangles.
    """
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(arrays.vertices))
    mesh.edges.add(len(arrays.edges))
    mesh.loops.add(len(arrays.corner_vert))
    mesh.polygons.add(len(arrays.loop_start))
    attributes = mesh.attributes
    attributes["position"].data.foreach_set("vector", arrays.vertices.reshape(-1))
    attributes[".edge_verts"].data.foreach_set("value", arrays.edges.reshape(-1))
    attributes[".corner_vert"].data.foreach_set("value", arrays.corner_vert)
    attributes[".corner_edge"].data.foreach_set("value", arrays.corner_edge)
    mesh.polygons.foreach_set("loop_start", arrays.loop_start)  # per item in Blender: ~35 ms per 1M
    if arrays.corner_uv is not None:
        layer = mesh.uv_layers.new(name="UVMap", do_init=False)  # every value is set below
        attributes[layer.name].data.foreach_set("vector", arrays.corner_uv.reshape(-1))
    if arrays.colors is not None:
        attribute = mesh.color_attributes.new("Color", 'FLOAT_COLOR', 'POINT')
        attribute.data.foreach_set("color", arrays.colors.reshape(-1))  # COLOR_0 is linear, like Blender's floats
        mesh.color_attributes.active_color = attribute
        mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
    mesh.update()
    clear_selection(mesh)
    return mesh


def clear_selection(mesh: bpy.types.Mesh) -> None:
    """Nothing selected, on every Blender: adding elements selects them (4.2), Blender 5.0.1's
    `calc_edges` leaves an edge selection of arbitrary values, and foreach_set on that attribute
    segfaults. Without the attributes Edit Mode shows nothing selected, and foreach_set makes
    them anew."""
    for name in (".select_vert", ".select_edge", ".select_poly"):
        if name in mesh.attributes:
            mesh.attributes.remove(mesh.attributes[name])


def select_vertices(mesh: bpy.types.Mesh, selected: np.ndarray) -> None:
    """Select exactly these vertices, the edges and polygons between them (what Edit Mode shows)."""
    selected = np.asarray(selected, bool)
    edges = np.empty(2 * len(mesh.edges), np.int32)
    mesh.edges.foreach_get("vertices", edges)
    corners = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    starts = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    polygons = np.minimum.reduceat(selected[corners], starts) if len(starts) else np.zeros(0, bool)
    clear_selection(mesh)  # written afresh: see clear_selection
    mesh.vertices.foreach_set("select", selected)
    mesh.edges.foreach_set("select", selected[edges].reshape(-1, 2).all(axis=1))
    mesh.polygons.foreach_set("select", polygons)


def texture_folder() -> str:
    """Where 'NEXT_TO_BLEND' writes textures ("" while the .blend is not saved)."""
    return os.path.join(os.path.dirname(bpy.data.filepath), "textures") if bpy.data.filepath else ""


def load_image(result: GLBScene, index: int, name: str, storage: str) -> Optional[bpy.types.Image]:
    """The result's image `index` as a Blender image: written to `textures/` beside the saved
    .blend (a new file, never over an older texture) for 'NEXT_TO_BLEND', else packed. A
    folder that cannot be written (read-only, or a file named "textures") packs it too: a
    finished texture is never lost to a folder; `packing_note` says so."""
    image = result.images[index] if 0 <= index < len(result.images) else None
    if image is None or not image.data:
        return None
    suffix = ".jpg" if "jpeg" in image.mime_type else ".png"
    taken = {os.path.basename(i.filepath_raw) for i in bpy.data.images}  # files textures/ has or will have
    folder = texture_folder() if storage == 'NEXT_TO_BLEND' else ""
    if folder:
        try:
            return _write_beside_blend(image.data, folder, bpy.path.clean_name(name), suffix, taken)
        except OSError:
            pass  # packed below
    # Load, then pack: the .blend keeps the texture. Unpacking writes it to textures/ under the
    # name it was packed from, so that name is this image's own (two sharing one overwrite each other).
    stem = name.encode()[:55].decode(errors="ignore")  # room for ".001" within Blender's 63-byte names
    unique, n = stem, 1
    while unique in bpy.data.images or bpy.path.clean_name(unique) + suffix in taken:
        unique, n = f"{stem}.{n:03d}", n + 1
    filename = bpy.path.clean_name(unique) + suffix
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, filename)
        with open(path, "wb") as handle:
            handle.write(image.data)
        loaded = bpy.data.images.load(path)
        loaded.name = unique
        loaded.pack()
    loaded.filepath_raw = "//textures/" + filename  # not the deleted temporary folder
    return loaded


def _write_beside_blend(data: bytes, folder: str, stem: str, suffix: str, taken: set) -> bpy.types.Image:
    os.makedirs(folder, exist_ok=True)
    for n in itertools.count():
        path = os.path.join(folder, stem + (f".{n:03d}" if n else "") + suffix)
        if os.path.basename(path) in taken:  # an older material may still show it
            continue
        try:
            handle = open(path, "xb")  # never over a file, one made meanwhile included
        except FileExistsError:
            continue
        try:
            with handle:
                handle.write(data)
        except OSError:
            os.remove(path)  # no half-written texture left behind (a full disk)
            raise
        break
    loaded = bpy.data.images.load(path)
    loaded.filepath = bpy.path.relpath(path)  # "//textures/...": the project folder can move
    return loaded


def packing_note(storage: str, new_images) -> str:
    """A note when images just written were packed although the preference says to save
    them beside the .blend ("" otherwise)."""
    if storage != 'NEXT_TO_BLEND' or not any(image.packed_file for image in new_images):
        return ""
    if not bpy.data.filepath:
        return "the .blend is not saved yet, so the texture was packed into it"
    return (f"{texture_folder()} could not be written, so the texture was packed into the .blend "
            "(File > External Data > Unpack Resources writes it out once the folder can be written)")


def new_node_material(name: str) -> bpy.types.Material:
    """A material with its default node tree (Principled BSDF into the output)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:  # before Blender 5.0 a material has nodes once asked to (5.0 deprecates asking)
        material.use_nodes = True
    return material


def build_material(name: str, arrays: MeshArrays, result: GLBScene, storage: str = 'PACK') -> bpy.types.Material:
    """Principled BSDF fed by the texture, else the colour attribute, else the base colour."""
    image = load_image(result, arrays.image, name, storage) if arrays.image is not None and arrays.uv is not None else None
    material = new_node_material(name)
    tree = material.node_tree
    bsdf = next(n for n in tree.nodes if n.type == 'BSDF_PRINCIPLED')
    if image is not None:
        node = tree.nodes.new("ShaderNodeTexImage")
        node.image = image
        node.location = (bsdf.location.x - 400, bsdf.location.y)
        tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    elif arrays.colors is not None:
        node = tree.nodes.new("ShaderNodeVertexColor")
        node.layer_name = "Color"
        node.location = (bsdf.location.x - 300, bsdf.location.y)
        tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    elif arrays.base_color is not None:
        bsdf.inputs["Base Color"].default_value = arrays.base_color
    if arrays.colors is not None or image is not None:
        material.diffuse_color = (1.0, 1.0, 1.0, 1.0)  # viewport (Workbench) uses the attribute/texture
    return material


PART_MATERIAL_KEY = "diffusion3d_part_material"  # custom property: the result material a Blender material stands for


def build_part_material(name: str, source: GLBMaterial) -> bpy.types.Material:
    """A Principled BSDF set from a part's PBR material; the viewport (Workbench, Solid) shows
    the same colour, metal and roughness."""
    material = new_node_material(name)
    bsdf = next(n for n in material.node_tree.nodes if n.type == 'BSDF_PRINCIPLED')
    bsdf.inputs["Base Color"].default_value = source.base_color
    bsdf.inputs["Metallic"].default_value = source.metallic
    bsdf.inputs["Roughness"].default_value = source.roughness
    bsdf.inputs["Transmission Weight"].default_value = source.transmission
    material.diffuse_color = source.base_color
    material.metallic, material.roughness = source.metallic, source.roughness
    material[PART_MATERIAL_KEY] = source.name
    return material


def build_materials(name: str, arrays: MeshArrays, result: GLBScene, storage: str) -> list[bpy.types.Material]:
    """The result's materials: one per part material (named after the object and the part),
    else one for the whole result."""
    if not arrays.materials:
        return [build_material(name, arrays, result, storage)]
    return [build_part_material(f"{name} {source.name}", source) for source in arrays.materials]


def attach_materials(mesh: bpy.types.Mesh, materials: list, arrays: MeshArrays) -> None:
    """`materials` into the mesh's slots, each triangle on its part's."""
    for material in materials:
        mesh.materials.append(material)
    if arrays.face_material is not None:
        mesh.polygons.foreach_set("material_index", arrays.face_material)


def _set_part_groups(obj: bpy.types.Object, arrays: MeshArrays) -> None:
    """One vertex group per part, so a part is selected in Edit Mode with the group's Select."""
    obj.vertex_groups.clear()
    if len(arrays.part_ranges) < 2:  # a single part: nothing to choose between
        return
    for name, start, end in arrays.part_ranges:
        group = obj.vertex_groups.get(name) or obj.vertex_groups.new(name=name)
        group.add(np.arange(start, end).tolist(), 1.0, 'REPLACE')


def release_mesh(old: bpy.types.Mesh, new: bpy.types.Mesh) -> None:
    """Remove the mesh a result replaced when nothing else uses it, the new one taking its name
    (else every edit would leave "Mesh.001", "Mesh.002", ...). Undo brings the old one back."""
    if old.users == 0:
        name = old.name
        bpy.data.meshes.remove(old)
        new.name = name


def store_metadata(obj: bpy.types.Object, metadata: dict) -> None:
    obj[METADATA_KEY] = json.dumps(metadata)


def read_metadata(obj: bpy.types.Object) -> dict:
    """The object's stored result metadata ({} when none or unreadable)."""
    try:
        value = json.loads(obj.get(METADATA_KEY, "{}"))
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def new_object(
    context, name: str, result: GLBScene, storage: str = 'PACK', arrays: Optional[MeshArrays] = None,
    location=None,
) -> bpy.types.Object:
    """A new object from the result, selected and active, at `location` (else the 3D cursor).
    `arrays`: the result's `MeshArrays` when already prepared (off the main thread), else made here."""
    arrays = arrays if arrays is not None else MeshArrays(result)
    materials = build_materials(name, arrays, result, storage)  # first: the image is what may fail
    mesh = build_mesh(name, arrays)
    attach_materials(mesh, materials, arrays)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = context.scene.cursor.location if location is None else location
    collection = context.collection
    if collection is None or collection.library is not None:  # a linked collection takes no new objects
        collection = context.scene.collection
    collection.objects.link(obj)
    _set_part_groups(obj, arrays)
    store_metadata(obj, result.metadata)
    for other in list(context.view_layer.objects.selected):
        if other is not None:  # stale entries right after objects were removed
            other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def replace_mesh(
    context, obj: bpy.types.Object, result: GLBScene, storage: str = 'PACK', arrays: Optional[MeshArrays] = None
) -> bpy.types.Object:
    """Give `obj` the result as new mesh data; its transform stays, undo brings the old mesh back."""
    arrays = arrays if arrays is not None else MeshArrays(result)
    if obj.mode != 'OBJECT':
        with context.temp_override(active_object=obj, object=obj):
            bpy.ops.object.mode_set(mode='OBJECT')
    old = obj.data
    materials = build_materials(obj.name, arrays, result, storage)
    mesh = build_mesh(old.name, arrays)
    attach_materials(mesh, materials, arrays)
    new = set((result.metadata.get("patch") or {}).get("new_parts", result.metadata.get("changed", [])))
    if new:  # an edit: its new parts come back selected, ready for another try in Edit Mode
        chosen = np.zeros(len(arrays.vertices), bool)
        for name, start, end in arrays.part_ranges:
            chosen[start:end] |= name in new
        select_vertices(mesh, chosen)
    obj.data = mesh
    release_mesh(old, mesh)
    _set_part_groups(obj, arrays)
    store_metadata(obj, result.metadata)
    return obj
