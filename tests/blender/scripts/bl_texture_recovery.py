"""Texture results are never lost, and the add-on never changes UVs a material reads: Import
paints a texture onto its object again (or adds it where that object was), a refused write
leaves the artist in Edit Mode, a folder that cannot be written packs the image, a texture
reads the mesh's own UV map, new UVs get a map of their own, and what the upload left out
reaches the job's notes."""

import os

import bpy
import numpy as np
from bl_harness import MODULE, addon_module, done, empty_scene, install

install()
jobs = addon_module("operators.jobs")
apply_texture = addon_module("scene_io.apply_texture")
read_glb = addon_module("formats.glb").read_glb
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.startup_timeout = 120.0
context = bpy.context
empty_scene()


def texture(*how, **kwargs):
    return bpy.ops.diffusion3d.texture_mesh(*how, prompt="moss", model="test-texture", seed=1, **kwargs)


def world_corners(obj):
    """The object's distinct vertex positions in world space, sorted."""
    world = np.array([tuple(obj.matrix_world @ v.co) for v in obj.data.vertices])
    return np.unique(np.round(world, 4), axis=0)


def only_selected(obj):
    bpy.ops.object.select_all(action='DESELECT')
    obj.select_set(True)
    context.view_layer.objects.active = obj


def uv_map(mesh, name):
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.attributes[name].data.foreach_get("vector", uv)
    return uv.reshape(-1, 2)


def read_uv_name(material):
    return material.node_tree.nodes["UV Map"].uv_map


# 1. A texture undone by mistake: Import paints it onto the object again, not a copy at the cursor.
bpy.ops.mesh.primitive_cube_add(location=(5.0, 0.0, 0.0), rotation=(0.7, 0.0, 0.0), scale=(2.0, 1.0, 1.0))
shown = world_corners(context.object)
bpy.ops.ed.undo_push(message="before texture")
assert texture('EXEC_DEFAULT', True) == {'FINISHED'}  # as the UI runs it: with its undo step
job = jobs.JOBS[0]
bpy.ops.ed.undo()
cube = bpy.data.objects["Cube"]
assert not cube.data.materials
objects = len(bpy.data.objects)
assert bpy.ops.diffusion3d.import_result(key=job.key) == {'FINISHED'}
assert len(bpy.data.objects) == objects and len(cube.data.materials) == 1 and len(cube.data.vertices) == 8
assert job.applied_to == cube.name
# With the texture on it, Import adds a copy rather than a second slot.
assert bpy.ops.diffusion3d.import_result(key=job.key) == {'FINISHED'}
assert len(bpy.data.objects) == objects + 1 and len(cube.data.materials) == 1
bpy.data.objects.remove(context.object)

# 2. The texture gone and the object edited since: Import adds the painted shape as a new
# object where the object was (its rotation and scale are in the result's vertices, its
# location is not).
cube.data.materials.clear()
only_selected(cube)
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_all(action='SELECT')
bpy.ops.transform.translate(value=(0.0, 0.0, 1.0))
bpy.ops.object.mode_set(mode='OBJECT')
assert bpy.ops.diffusion3d.import_result(key=job.key) == {'FINISHED'}
copy = context.object
assert copy != cube and copy.data.materials[0].node_tree.nodes["Image Texture"].image is not None
assert np.allclose(world_corners(copy), shown, atol=1e-3), (world_corners(copy), shown)

# 3. A write the checks refuse (the mesh was edited in Edit Mode meanwhile) leaves the artist in
# Edit Mode, nothing changed.
with open(job.result_path, "rb") as handle:
    painted = read_glb(handle.read())
only_selected(cube)
bpy.ops.object.mode_set(mode='EDIT')
slots = len(cube.data.materials)
try:
    apply_texture.apply_texture(context, cube, painted, fingerprint=job.request.fingerprint)
    raise AssertionError("a texture for another shape was written")
except ValueError as exc:
    assert "was edited" in str(exc), exc
assert cube.mode == 'EDIT' and len(cube.data.materials) == slots
bpy.ops.object.mode_set(mode='OBJECT')

# 4. "Next to .blend" where textures/ cannot be made (a file has the name): the texture is
# packed instead, and the job says so.
prefs.texture_storage = 'NEXT_TO_BLEND'
blocked = os.path.join(os.environ["DIFFUSION3D_TMP"], "blocked")
os.makedirs(blocked)
open(os.path.join(blocked, "textures"), "w").close()
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(blocked, "scene.blend"))
cube = bpy.data.objects["Cube"]
only_selected(cube)
assert texture() == {'FINISHED'}
assert cube.data.materials[-1].node_tree.nodes["Image Texture"].image.packed_file is not None
assert any("could not be written, so the texture was packed" in note for note in jobs.JOBS[0].notes), jobs.JOBS[0].notes
prefs.texture_storage = 'PACK'

# 5. A mesh's own UVs are read where they are: no copy, and painting again shares them. UVs no
# map holds (a map added but never unwrapped is unwrapped anew) get a map of their own, under a
# new name when "Diffusion 3D" holds other UVs: an earlier material keeps reading its own.
own_before = uv_map(cube.data, "UVMap").copy()
assert texture() == {'FINISHED'}
assert read_uv_name(cube.data.materials[-1]) == read_uv_name(cube.data.materials[-2]) == "UVMap"
assert [layer.name for layer in cube.data.uv_layers] == ["UVMap"] and np.array_equal(uv_map(cube.data, "UVMap"), own_before)
cube.data.attributes["UVMap"].data.foreach_set("vector", np.zeros(2 * len(cube.data.loops), np.float32))
assert texture() == {'FINISHED'}
assert read_uv_name(cube.data.materials[-1]) == apply_texture.UV_MAP
assert any("was unwrapped anew" in note for note in jobs.JOBS[0].notes), jobs.JOBS[0].notes
unwrapped = uv_map(cube.data, apply_texture.UV_MAP)
cube.data.attributes[apply_texture.UV_MAP].data.foreach_set("vector", (unwrapped * 0.5).reshape(-1))  # edited since
assert texture() == {'FINISHED'}
assert read_uv_name(cube.data.materials[-1]) == apply_texture.UV_MAP + ".001"
assert np.allclose(uv_map(cube.data, apply_texture.UV_MAP), unwrapped * 0.5)  # the earlier material's, untouched
assert np.allclose(uv_map(cube.data, apply_texture.UV_MAP + ".001"), unwrapped, atol=1e-5)

# 6. What the upload left out (a Subdivision modifier) is in the job's notes, not only in a report.
cube.modifiers.new("Smooth", 'SUBSURF')
assert texture() == {'FINISHED'}
assert any("without Smooth" in note for note in jobs.JOBS[0].notes), jobs.JOBS[0].notes

# 7. Meshes whose faces only modifiers make (Skin, Geometry Nodes) are skipped with the fix.
line = bpy.data.meshes.new("Line")
line.from_pydata([(0, 0, 0), (0, 0, 1)], [(0, 1)], [])
wire = bpy.data.objects.new("Wire", line)
context.scene.collection.objects.link(wire)
wire.modifiers.new("Skin", 'SKIN')
only_selected(wire)
try:
    texture()
    raise AssertionError("a mesh without faces was accepted")
except RuntimeError as exc:
    assert "Visual Geometry to Mesh" in str(exc), exc
done()
