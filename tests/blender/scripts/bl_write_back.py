"""Write-back of synthetic GLBs into the scene, and mesh export, inside Blender."""

import json
import os
import sys
import tempfile
import types

import bpy
import bmesh
import numpy as np
import trimesh
from PIL import Image
from bl_harness import addon_module, done, install

install()
write_back = addon_module("scene_io.write_back")
mesh_export = addon_module("scene_io.mesh_export")
glb = addon_module("formats.glb")
context = bpy.context


def chair_glb() -> bytes:
    seat = trimesh.creation.box(extents=(1.0, 0.1, 1.0))
    seat.visual.vertex_colors = np.tile([255, 0, 0, 255], (len(seat.vertices), 1)).astype(np.uint8)
    leg = trimesh.creation.box(extents=(0.1, 1.0, 0.1))
    leg.visual.vertex_colors = np.tile([0, 0, 255, 255], (len(leg.vertices), 1)).astype(np.uint8)
    scene = trimesh.Scene()
    scene.add_geometry(seat, node_name="seat", geom_name="seat",
                       transform=trimesh.transformations.translation_matrix([0, 1.0, 0]))
    scene.add_geometry(leg, node_name="leg.0", geom_name="leg.0")
    scene.metadata["diffusion3d"] = {"model": "builtin", "prompt": "a chair"}
    return scene.export(file_type="glb")


def textured_glb() -> bytes:
    box = trimesh.creation.box()
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    image = Image.fromarray(np.full((8, 8, 3), [10, 200, 30], np.uint8))
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    return trimesh.Scene(box).export(file_type="glb"), uv


# 1. A new object: name, place, selection, geometry, axes, parts, colours, material, metadata.
context.scene.cursor.location = (1.0, 2.0, 3.0)
bpy.ops.ed.undo_push(message="before write-back")
result = glb.read_glb(chair_glb())
obj = write_back.new_object(context, "a chair", result)
mesh = obj.data
assert obj.name == "a chair" and tuple(obj.location) == (1.0, 2.0, 3.0)
assert obj.select_get() and context.view_layer.objects.active == obj
assert [o.name for o in context.selected_objects] == ["a chair"]
assert len(mesh.vertices) == 16 and len(mesh.polygons) == 24, (len(mesh.vertices), len(mesh.polygons))
co = np.empty(len(mesh.vertices) * 3, np.float32)
mesh.vertices.foreach_get("co", co)
co = co.reshape(-1, 3)
assert np.isclose(co[:8, 2].min(), 0.95) and np.isclose(co[:8, 2].max(), 1.05), co[:8]  # glTF +y (seat) → Blender +z
assert np.isclose(co[8:, 2].max(), 0.5)
assert [g.name for g in obj.vertex_groups] == ["seat", "leg.0"]
in_seat = [v.index for v in mesh.vertices if any(g.group == 0 for g in v.groups)]
assert in_seat == list(range(8)), in_seat
colors = np.empty(len(mesh.vertices) * 4, np.float32)
mesh.color_attributes["Color"].data.foreach_get("color", colors)
colors = colors.reshape(-1, 4)
assert np.allclose(colors[:8], [1, 0, 0, 1]) and np.allclose(colors[8:], [0, 0, 1, 1])
material = mesh.materials[0]
bsdf = next(n for n in material.node_tree.nodes if n.type == 'BSDF_PRINCIPLED')
link = bsdf.inputs["Base Color"].links[0]
assert link.from_node.type == 'VERTEX_COLOR' and link.from_node.layer_name == "Color"
assert json.loads(obj["diffusion3d"]) == {"model": "builtin", "prompt": "a chair"}
assert mesh.validate() is False  # nothing needed fixing
edges = {tuple(sorted(e.vertices)) for e in mesh.edges}
assert edges == {tuple(sorted((p.vertices[i], p.vertices[i - 1]))) for p in mesh.polygons for i in range(3)}
assert not any(x.select for x in [*mesh.vertices, *mesh.edges, *mesh.polygons])  # Edit Mode: nothing selected

# 2. Undo removes it again (one step).
bpy.ops.ed.undo_push(message="after write-back")
bpy.ops.ed.undo()
assert "a chair" not in bpy.data.objects
bpy.ops.ed.redo()
assert "a chair" in bpy.data.objects

# 3. A textured result: UVs (v flipped), packed image feeding the Base Color.
data, uv = textured_glb()
tex_obj = write_back.new_object(context, "textured", glb.read_glb(data))
tex_mesh = tex_obj.data
assert tex_mesh.uv_layers.active is not None
loop_uv = np.empty(len(tex_mesh.loops) * 2, np.float32)
tex_mesh.uv_layers.active.data.foreach_get("uv", loop_uv)
loop_vert = np.empty(len(tex_mesh.loops), np.int32)
tex_mesh.loops.foreach_get("vertex_index", loop_vert)
# trimesh writes v flipped (glTF convention), we flip back: Blender's uv equals trimesh's uv.
assert np.allclose(loop_uv.reshape(-1, 2), uv[loop_vert], atol=1e-6)
tex_node = tex_mesh.materials[0].node_tree.nodes["Image Texture"]
assert tex_node.image.packed_file is not None and tuple(tex_node.image.size) == (8, 8)
assert tex_node.outputs["Color"].links[0].to_socket.name == "Base Color"

# 4. Export: a cube as GLB in object space, glTF axes, with UVs; the face mask from Edit Mode.
bpy.ops.mesh.primitive_cube_add(size=2.0, location=(5, 0, 0), rotation=(0.3, 0.2, 0.1))
cube = context.active_object
cube["diffusion3d"] = json.dumps({"parts": ["body"]})
data, mask = mesh_export.object_to_glb(cube)
back = glb.read_glb(data)
(part,) = back.parts
assert len(part.faces) == 12 and mask is None and back.metadata == {"parts": ["body"]}
assert np.allclose(np.abs(part.vertices), 1.0)  # object space: the transform is not applied
assert part.uv is not None and len(part.vertices) >= 8
bpy.ops.object.mode_set(mode='EDIT')
bm = bmesh.from_edit_mesh(cube.data)
for face in bm.faces:
    face.select_set(face.index == 2)
bmesh.update_edit_mesh(cube.data)
data, mask = mesh_export.object_to_glb(cube, with_mask=True)
mask = np.frombuffer(mask, np.uint8)
assert len(mask) == 12 and mask.sum() == 2, mask

# 5. Replacing the mesh of the same object keeps its transform; undo brings the cube back.
bpy.ops.ed.undo_push(message="before replace")
matrix = cube.matrix_world.copy()
mesh_name = cube.data.name
write_back.replace_mesh(context, cube, glb.read_glb(chair_glb()))
assert cube.mode == 'OBJECT' and len(cube.data.vertices) == 16
assert cube.data.name == mesh_name and mesh_name + ".001" not in bpy.data.meshes  # no name drift per edit
assert cube.matrix_world == matrix
assert [g.name for g in cube.vertex_groups] == ["seat", "leg.0"]
bpy.ops.ed.undo_push(message="after replace")
bpy.ops.ed.undo()
cube = bpy.data.objects["Cube"]
assert len(cube.data.vertices) == 8, len(cube.data.vertices)

# 6. A result without triangles is refused before the scene is touched.
count = len(bpy.data.objects)
empty = glb.read_glb(glb.write_glb(np.zeros((0, 3)), np.zeros((0, 3), int)))
try:
    write_back.new_object(context, "empty", empty)
except ValueError as exc:
    assert "no triangles" in str(exc)
else:
    raise AssertionError("an empty result was written")
assert len(bpy.data.objects) == count and "empty" not in bpy.data.meshes

# 7. A job's worker lays a new mesh out before publishing the result; the main thread only
#    copies it in, then lets it go. A texture result is not laid out (its mesh is the artist's).
jobs = addon_module("operators.jobs")
session = addon_module("service.session")
settings = session.BackendSettings(user_dir=tempfile.mkdtemp())
client = types.SimpleNamespace(result=lambda backend_id, timeout: chair_glb())
generated = jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "a chair"}, "laid out"))
generated.backend_id, generated.state = "job-1", "succeeded"
jobs.fetch_result(generated, client, settings)
assert isinstance(generated.arrays, addon_module("formats.blender_layout").MeshArrays)
assert os.path.isfile(generated.result_path) and len(generated.arrays.faces) == 24
obj = jobs.apply_result(context, generated)
assert obj is not None and obj.name == "laid out" and len(obj.data.polygons) == 24, generated.error
assert obj.data.validate() is False and generated.arrays is None and generated.result is None
textured = jobs.Job(jobs.JobRequest("texture", {"prompt": "bronze"}, "texture", target="Cube"))
textured.backend_id = "job-2"
jobs.fetch_result(textured, client, settings)
assert textured.result is not None and textured.arrays is None
# The user folder keeps the newest KEPT_FILES downloads per folder, not every one ever made.
jobs.KEPT_FILES = 2
for n, name in enumerate(["job-1", "job-2", "job-3"]):
    os.utime(jobs.keep_download(settings, "results", f"{name}.glb", b"glb"), (1000 + n, 1000 + n))
assert sorted(os.listdir(os.path.join(settings.user_dir, "results"))) == ["job-2.glb", "job-3.glb"]

# 8. Parts with materials of their own (the built-in model's, from the backend's writer): one
#    named slot per material, each triangle on its part's, Principled BSDF and viewport set.
with open(sys.argv[1], "rb") as handle:
    table = glb.read_glb(handle.read())
obj = write_back.new_object(context, "Table", table)
assert [m.name for m in obj.data.materials] == ["Table top (glass)", "Table leg (black metal)"], obj.data.materials[:]
slots = np.empty(len(obj.data.polygons), np.int32)
obj.data.polygons.foreach_get("material_index", slots)
assert slots.tolist() == [0] * 12 + [1] * 24, slots
glass, metal = (next(n for n in m.node_tree.nodes if n.type == 'BSDF_PRINCIPLED') for m in obj.data.materials)
assert glass.inputs["Transmission Weight"].default_value == 1.0 and abs(glass.inputs["Roughness"].default_value - 0.05) < 1e-6
assert metal.inputs["Metallic"].default_value == 1.0 and not metal.inputs["Base Color"].links
black = tuple(table.parts[1].material.base_color)
assert np.allclose(metal.inputs["Base Color"].default_value, black) and np.allclose(obj.data.materials[1].diffuse_color, black)
write_back.replace_mesh(context, obj, table)  # an edit's result: the same slots again, not one shared material
assert len(obj.data.materials) == 2 and obj.data.materials[1]["diffusion3d_part_material"] == "leg (black metal)"
done()
