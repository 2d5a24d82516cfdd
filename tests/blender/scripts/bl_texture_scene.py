"""Texture Selected paints objects as the scene shows them: rotation, scale, pose and shape keys
applied; the rendered UV map; linked duplicates once; what cannot be textured skipped; each
packed image its own file; Solid shading in the texture's colour; a renamed target still found."""

import json
import math
import os

import bpy
import numpy as np
from bl_harness import MODULE, addon_module, done, empty_scene, install
from bl_texture_probe import face_colour_reader

install()
jobs = addon_module("operators.jobs")
export = addon_module("scene_io.texture_export")
read_glb = addon_module("formats.glb").read_glb
gltf_to_blender = addon_module("formats.mesh_arrays").gltf_to_blender
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.startup_timeout = 120.0
context = bpy.context
empty_scene()


def sent_corners(upload):
    """The uploaded triangles' corner positions (Blender axes) and UVs (Blender's v up)."""
    part = read_glb(upload.glb).parts[0]
    corners = part.faces.reshape(-1)
    uv = part.uv[corners] * np.array([1.0, -1.0]) + np.array([0.0, 1.0])
    return gltf_to_blender(part.vertices[corners]), uv


def loop_triangle_corners(mesh, values):
    """Per-vertex (V, k) values at the mesh's loop-triangle corners, in upload order."""
    mesh.calc_loop_triangles()
    index = np.empty(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", index)
    return values[index]


def vertex_positions(mesh):
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


# 1. Rotation and scale are applied, the location is not; shape keys are applied.
bpy.ops.mesh.primitive_cube_add(location=(5.0, 5.0, 5.0), rotation=(math.pi / 2, 0.0, 0.3), scale=(1.0, 2.0, 3.0))
cube = context.object
cube.shape_key_add(name="Basis")
lifted = cube.shape_key_add(name="Lifted")
lifted.data[0].co.z += 1.0
lifted.value = 1.0
upload = export.texture_upload(context, cube)
co, _ = sent_corners(upload)
shown = vertex_positions(cube.data)
shown[0, 2] += 1.0  # the shape key as the viewport shows it
expected = loop_triangle_corners(cube.data, shown @ np.array(cube.matrix_world.to_3x3()).T)
assert np.allclose(co, expected, atol=1e-5), np.abs(co - expected).max()
assert upload.note == ""

# 2. A modifier that changes the faces cannot be applied (the UVs go back onto the mesh's
# loops): it alone is left out, the note names it, and the shape key still counts.
subdivision = cube.modifiers.new("Smooth it", 'SUBSURF')
cube.modifiers.new("Bend", 'SIMPLE_DEFORM').deform_axis = 'X'  # keeps the topology: stays applied
upload = export.texture_upload(context, cube)
subdivision.show_viewport = False
evaluated = cube.evaluated_get(context.evaluated_depsgraph_get())
bent = vertex_positions(evaluated.to_mesh())
evaluated.to_mesh_clear()
subdivision.show_viewport = True
co, _ = sent_corners(upload)
assert np.allclose(co, loop_triangle_corners(cube.data, bent @ np.array(cube.matrix_world.to_3x3()).T), atol=1e-5)
assert not np.allclose(bent, vertex_positions(cube.data), atol=1e-3)  # the bend and the shape key moved it
assert "Smooth it" in upload.note and "Bend" not in upload.note and "apply them first" in upload.note, upload.note
assert subdivision.show_viewport  # switched back on
# In Edit Mode the cage is what is edited and sent, and the note says what that leaves out.
context.view_layer.objects.active = cube
bpy.ops.object.mode_set(mode='EDIT')
note = export.texture_upload(context, cube).note
bpy.ops.object.mode_set(mode='OBJECT')
assert "Edit Mode cage" in note and "Smooth it" in note and "shape keys" in note, note
cube.modifiers.clear()
cube.shape_key_clear()

# 3. The UV map used for rendering is sent, not the one being edited.
mesh = cube.data
mesh.uv_layers.new(name="Lightmap")
shifted = np.empty(len(mesh.loops) * 2, np.float32)
mesh.uv_layers["Lightmap"].data.foreach_get("uv", shifted)
mesh.uv_layers["Lightmap"].data.foreach_set("uv", shifted * 0.5 + 0.25)
mesh.uv_layers["Lightmap"].active_render = True
mesh.uv_layers.active = mesh.uv_layers["UVMap"]
_, uv = sent_corners(export.texture_upload(context, cube))
mesh.calc_loop_triangles()
loops = np.empty(len(mesh.loop_triangles) * 3, np.int32)
mesh.loop_triangles.foreach_get("loops", loops)
assert np.allclose(uv, (shifted * 0.5 + 0.25).reshape(-1, 2)[loops], atol=1e-5)
mesh.uv_layers.remove(mesh.uv_layers["Lightmap"])

# 4. The fingerprint changes with the mesh, and only with it.
first = export.texture_upload(context, cube).fingerprint
cube.rotation_euler.x += 0.5  # moving the object is not an edit of its mesh
assert export.texture_upload(context, cube).fingerprint == first
mesh.vertices[3].co.x += 0.01
assert export.texture_upload(context, cube).fingerprint != first

# 5. Painted as shown: the top of a cube lying on its side (rotated 90 degrees about X) is
# painted by the view from above. The test model paints in the colour of the view's direction:
# from above (glTF +Y) green leads; the face's own local side (-Y, glTF +Z) would be blue-ish.
cube.rotation_euler = (math.pi / 2, 0.0, 0.0)
cube.scale = (1.0, 1.0, 1.0)
mesh.vertices[3].co.x -= 0.01
bpy.ops.object.select_all(action='DESELECT')
cube.select_set(True)
context.view_layer.objects.active = cube
assert bpy.ops.diffusion3d.texture_mesh(prompt="brick", model="test-texture", seed=3) == {'FINISHED'}
material = mesh.materials[-1]
image = material.node_tree.nodes["Image Texture"].image
world = cube.matrix_world.to_3x3()
top = next(p for p in mesh.polygons if (world @ p.normal).z > 0.9)
uv_map = material.node_tree.nodes["UV Map"].uv_map
red, green, blue = face_colour_reader(cube, image, uv_map)(top)
print("top of the lying cube:", red, green, blue)
assert green > red + 0.2 and green > blue + 0.2, (red, green, blue)
# Solid shading shows the texture's average colour (the backend's), not white.
average = json.loads(cube["diffusion3d"])["texture"]["average_color"]
assert np.allclose(material.diffuse_color[:3], average, atol=1e-4) and min(average) < 0.9, average

# 6. Two textures of one object, packed: each has a file name of its own for unpacking.
assert bpy.ops.diffusion3d.texture_mesh(prompt="moss", model="test-texture", seed=4) == {'FINISHED'}
images = [m.node_tree.nodes["Image Texture"].image for m in mesh.materials]
names = [os.path.basename(i.packed_files[0].filepath) for i in images]
assert all(i.packed_file is not None for i in images) and len(set(names)) == 2, names
assert [i.filepath for i in images] == [f"//textures/{n}" for n in names], [i.filepath for i in images]
# "Next to .blend" with the .blend not saved yet: packed, and the job says so.
prefs.texture_storage = 'NEXT_TO_BLEND'
assert bpy.ops.diffusion3d.texture_mesh(prompt="moss", model="test-texture", seed=4) == {'FINISHED'}
assert mesh.materials[-1].node_tree.nodes["Image Texture"].image.packed_file is not None
assert any("not saved yet" in note for note in jobs.JOBS[0].notes), jobs.JOBS[0].notes
prefs.texture_storage = 'PACK'

# 7. Linked duplicates share a mesh: one job paints it, and both show it.
twin = cube.copy()  # same mesh
context.scene.collection.objects.link(twin)
slots = len(mesh.materials)
bpy.ops.object.select_all(action='DESELECT')
twin.select_set(True)
cube.select_set(True)
context.view_layer.objects.active = twin
count = len(jobs.JOBS)
assert bpy.ops.diffusion3d.texture_mesh(prompt="gold", model="test-texture", seed=5) == {'FINISHED'}
assert len(jobs.JOBS) == count + 1 and jobs.JOBS[0].applied_to == twin.name, [j.label for j in jobs.JOBS[:2]]
assert len(mesh.materials) == slots + 1 and twin.active_material == cube.active_material == mesh.materials[-1]

# 8. Selections mixing what cannot be textured: an empty mesh and a curve are skipped, the
# cube is painted; only a selection with nothing to paint is refused.
empty_mesh = bpy.data.objects.new("Nothing", bpy.data.meshes.new("Nothing"))
curve = bpy.data.objects.new("Curve", bpy.data.curves.new("Curve", 'CURVE'))
for obj in (empty_mesh, curve):
    context.scene.collection.objects.link(obj)
bpy.ops.object.select_all(action='DESELECT')
for obj in (empty_mesh, curve, cube):
    obj.select_set(True)
slots = len(mesh.materials)
assert bpy.ops.diffusion3d.texture_mesh(prompt="gold", model="test-texture", seed=5) == {'FINISHED'}
assert len(mesh.materials) == slots + 1 and not empty_mesh.data.materials
cube.select_set(False)
try:
    bpy.ops.diffusion3d.texture_mesh(prompt="gold", model="test-texture")
    raise AssertionError("a selection with nothing to texture was accepted")
except RuntimeError as exc:
    assert "none of the selected meshes can be textured: 'Nothing': it has no faces" in str(exc), exc

# 9. A result finds its object by identity: renamed while the job ran, it is still the target.
request = jobs.JobRequest("texture", {}, "label", target=cube.name, target_uid=cube.session_uid)
cube.name = "Renamed cube"
assert addon_module("operators.write_guard").find_target(context, request) == cube
done()
