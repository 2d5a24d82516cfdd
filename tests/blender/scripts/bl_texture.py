"""Texture Selected in background mode against a real backend (test-texture model): new UV map,
new material in a new slot, the artist's mesh and old materials kept, one undo step back."""

import json
import os
import types

import bpy
import numpy as np
from bl_harness import MODULE, addon_module, done, empty_scene, install
from bl_texture_probe import face_colour_reader

install()
jobs = addon_module("operators.jobs")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.startup_timeout = 120.0
context = bpy.context
UV_MAP = addon_module("scene_io.apply_texture").UV_MAP


def call(operator, *args, **kwargs):
    try:
        return operator(*args, **kwargs), ""
    except RuntimeError as exc:
        return {'CANCELLED'}, str(exc)


def state(obj):
    """What texturing may change, and what it must not."""
    mesh = obj.data
    index = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", index)
    return ([m.name if m else None for m in mesh.materials], sorted(l.name for l in mesh.uv_layers),
            len(mesh.vertices), len(mesh.polygons), index.tolist(), tuple(obj.matrix_world.col[3]))


def material_uv_map(material):
    """The UV map a texture material reads the image through."""
    node = next(n for n in material.node_tree.nodes if n.type == 'TEX_IMAGE')
    return node.inputs["Vector"].links[0].from_node.uv_map


def side_colours(obj, image):
    """Mean texture colour of the faces looking along +X and along -X (object space)."""
    colour = face_colour_reader(obj, image, material_uv_map(obj.data.materials[-1]))
    colours = {}
    for sign in (1, -1):
        picked = [colour(p) for p in obj.data.polygons if sign * p.normal.x > 0.8]
        assert picked, f"no face of {obj.name} looks along {sign}X"
        colours[sign] = np.mean(picked, axis=0)
    return colours


# 1. Suzanne (its own UVs, no material) and a second Suzanne without UVs but with a material.
empty_scene()
bpy.ops.mesh.primitive_monkey_add(location=(0.0, 0.0, 0.0))
suzanne = context.object
suzanne.rotation_euler = (0.0, 0.0, 0.4)
bpy.ops.mesh.primitive_monkey_add(location=(3.0, 0.0, 0.0))
other = context.object
other.name = "Painted"
other.data.uv_layers.remove(other.data.uv_layers[0])  # the backend unwraps it (xatlas cuts some quads)
old = bpy.data.materials.new("Old paint")
other.data.materials.append(old)
suzanne.select_set(True)
own_uv = np.empty(len(suzanne.data.loops) * 2, np.float32)
suzanne.data.uv_layers[0].data.foreach_get("uv", own_uv)
before = {o.name: state(o) for o in (suzanne, other)}

# 2. The default model's weights are not here: a readable error, nothing changes.
bpy.ops.ed.undo_push(message="before texture")
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="weathered bronze")
print("default model:", result, error)
assert result == {'CANCELLED'} and "not downloaded" in error, error
assert {o.name: state(o) for o in (suzanne, other)} == before
prefs.backend_mode, prefs.remote_url = 'REMOTE', "http://127.0.0.1:9"  # a backend that is down
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="weathered bronze", model="test-texture")
assert result == {'CANCELLED'} and "not running" in error, error
assert {o.name: state(o) for o in (suzanne, other)} == before
prefs.backend_mode = 'LOCAL'

# 3. Both selected objects are textured by the test model, blocking, in one operator call.
# ('EXEC_DEFAULT', True): run as the UI would, pushing the operator's undo step.
result = bpy.ops.diffusion3d.texture_mesh('EXEC_DEFAULT', True, prompt="weathered bronze", model="test-texture",
                                          texture_size=1024, seed=5)
assert result == {'FINISHED'}, result
assert sorted(j.applied_to for j in jobs.JOBS[:2]) == ["Painted", "Suzanne"], [j.applied_to for j in jobs.JOBS[:2]]
assert all(j.state == "succeeded" for j in jobs.JOBS[:2])
for obj in (suzanne, other):
    materials, uv_maps, n_verts, n_polys, index, location = state(obj)
    old_materials = before[obj.name][0]
    assert materials[:-1] == old_materials and len(materials) == len(old_materials) + 1, materials
    assert set(index) == {len(materials) - 1}, "every face uses the new slot"
    assert obj.active_material == obj.data.materials[-1], "the new material is the active one"
    assert n_verts == before[obj.name][2] and location == before[obj.name][5]
    material = obj.data.materials[-1]
    node = next(n for n in material.node_tree.nodes if n.type == 'TEX_IMAGE')
    bsdf = next(n for n in material.node_tree.nodes if n.type == 'BSDF_PRINCIPLED')
    assert bsdf.inputs["Base Color"].links[0].from_node == node
    # Suzanne's own UVs were kept: the texture reads her map itself (no copy); the copy
    # without UVs was unwrapped into a new map.
    assert material_uv_map(material) == ("UVMap" if obj == suzanne else UV_MAP), material_uv_map(material)
    assert uv_maps == (before[obj.name][1] if obj == suzanne else [UV_MAP]), uv_maps
    image = node.image
    assert tuple(image.size) == (1024, 1024) and image.packed_file is not None  # unsaved .blend: packed
    colours = side_colours(obj, image)
    print(obj.name, "polygons", before[obj.name][3], "->", n_polys, "+X", colours[1], "-X", colours[-1])
    assert np.abs(colours[1] - colours[-1]).max() > 0.2, colours  # each side its own colour
    assert colours[1][0] > colours[-1][0]  # the +X view paints redder (direction -> RGB)
    meta = json.loads(obj["diffusion3d"])
    assert meta["texture"]["size"] == 1024 and meta["texture"]["seed"] == 5, meta
# Suzanne's own UVs are untouched, and no polygon was split.
new_uv = np.empty(len(suzanne.data.loops) * 2, np.float32)
suzanne.data.uv_layers["UVMap"].data.foreach_get("uv", new_uv)
assert np.array_equal(new_uv, own_uv) and len(suzanne.data.polygons) == before[suzanne.name][3]
# The copy without UVs was unwrapped with its quads kept whole (the upload says which polygon
# each triangle came from).
assert json.loads(suzanne["diffusion3d"])["texture"]["split_polygons"] == 0
assert json.loads(other["diffusion3d"])["texture"]["split_polygons"] == 0
assert len(other.data.polygons) == before["Painted"][3]
assert not any("cut" in note for job in jobs.JOBS[:2] for note in job.notes), [j.notes for j in jobs.JOBS[:2]]
assert suzanne.data.uv_layers.active.name == "UVMap"  # the artist's map stays active

# 4. One undo step restores the previous materials, UV maps and geometry of both objects.
bpy.ops.ed.undo()
suzanne, other = bpy.data.objects["Suzanne"], bpy.data.objects["Painted"]
assert {o.name: state(o) for o in (suzanne, other)} == before, {o.name: state(o) for o in (suzanne, other)}

# 4b. A backend that cuts quads between charts anyway (an older server ignores the polygons sent):
# just the cut polygons become triangles, and the artist is told how many.
export = addon_module("scene_io.texture_export")
send = export.object_to_glb
export.object_to_glb = lambda *args, **kwargs: send(*args, **{**kwargs, "with_polygons": False})
bpy.ops.object.select_all(action='DESELECT')
other.select_set(True)
context.view_layer.objects.active = other
assert bpy.ops.diffusion3d.texture_mesh(prompt="weathered bronze", model="test-texture", seed=5) == {'FINISHED'}
export.object_to_glb = send
split = json.loads(other["diffusion3d"])["texture"]["split_polygons"]
assert len(other.data.polygons) == before["Painted"][3] + split > before["Painted"][3]  # each cut quad: 2 triangles
assert any(f"cut {split} quads" in note for note in jobs.JOBS[0].notes), jobs.JOBS[0].notes

# 5. With the preference "next to .blend" and a saved .blend, the image is a file in textures/.
prefs.texture_storage = 'NEXT_TO_BLEND'
blend = os.path.join(os.environ["DIFFUSION3D_TMP"], "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=blend)
bpy.ops.object.select_all(action='DESELECT')
suzanne = bpy.data.objects["Suzanne"]
suzanne.select_set(True)
context.view_layer.objects.active = suzanne
for _ in range(2):  # a second run writes a second file: the first material keeps its image
    assert bpy.ops.diffusion3d.texture_mesh(prompt="moss", model="test-texture", seed=1) == {'FINISHED'}
paths = [bpy.path.abspath(m.node_tree.nodes["Image Texture"].image.filepath) for m in suzanne.data.materials]
print("saved textures:", paths)
assert len(set(paths)) == 2 and all(os.path.isfile(p) and os.sep + "textures" + os.sep in p for p in paths)
assert all(m.node_tree.nodes["Image Texture"].image.packed_file is None for m in suzanne.data.materials)
assert all(m.node_tree.nodes["Image Texture"].image.filepath.startswith("//textures") for m in suzanne.data.materials)

# 5b. A write refused after the painting (the mesh was edited meanwhile) touches nothing:
# no UV map, no split quads, no material (bl_texture_recovery: the artist stays in Edit Mode).
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_cube_add(location=(0.0, 6.0, 0.0))
cube = context.object
untouched = state(cube)
real_upload = export.texture_upload
export.texture_upload = lambda *args, **kwargs: types.SimpleNamespace(
    **{**vars(real_upload(*args, **kwargs)), "fingerprint": "another mesh"})
texture_operator = addon_module("operators.texture_mesh")
texture_operator.texture_upload = export.texture_upload
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="moss", model="test-texture", seed=1)
texture_operator.texture_upload = export.texture_upload = real_upload
assert result == {'CANCELLED'} and "was edited while its texture was painted" in error, error
assert state(cube) == untouched, (state(cube), untouched)
bpy.data.objects.remove(cube)

# 5c. The panel's settings: size, views, a fixed seed, what to avoid.
settings = context.scene.diffusion3d
settings.texture_size, settings.texture_views, settings.texture_random_seed, settings.texture_seed = '2048', 2, False, 7
settings.texture_negative_prompt = "blurry"
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_cube_add(location=(0.0, 9.0, 0.0))
cube = context.object
assert bpy.ops.diffusion3d.texture_mesh(prompt="brick", model="test-texture") == {'FINISHED'}
meta = json.loads(cube["diffusion3d"])["texture"]
assert (meta["size"], meta["seed"], meta["negative_prompt"]) == (2048, 7, "blurry"), meta
assert "num_inference_steps" not in jobs.JOBS[0].request.params  # the model's own steps and guidance
# Front and back (2 views), top and bottom; the cube's left and right faces are edge-on to all
# four, so both fill views go to them.
assert (meta["views"], meta["fill_views"]) == (6, 2) and meta["unseen_fraction"] < 0.05, meta  # else 1/3 unseen
assert tuple(cube.data.materials[-1].node_tree.nodes["Image Texture"].image.size) == (2048, 2048)
settings.property_unset("texture_size")  # checked: the runs below paint at the default 1024, 4x faster
settings.texture_fill_views = 0  # "Extra" views off: the side faces stay unseen
settings.texture_custom_sampling, settings.texture_steps, settings.texture_guidance = True, 3, 2.5
assert bpy.ops.diffusion3d.texture_mesh(prompt="brick", model="test-texture") == {'FINISHED'}
assert (jobs.JOBS[0].request.params["num_inference_steps"], jobs.JOBS[0].request.params["guidance_scale"]) == (3, 2.5)
meta = json.loads(cube["diffusion3d"])["texture"]
assert (meta["views"], meta["fill_views"]) == (4, 0) and meta["unseen_fraction"] > 0.25, meta
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="brick", model="test-texture", texture_size=512)
assert result == {'CANCELLED'} and "from 1024 to 4096" in error, error
# A script's own steps and guidance win over the panel's (guidance 0 is a value, not "unset").
assert bpy.ops.diffusion3d.texture_mesh(prompt="brick", model="test-texture", steps=2, guidance=0.0) == {'FINISHED'}
assert (jobs.JOBS[0].request.params["num_inference_steps"], jobs.JOBS[0].request.params["guidance_scale"]) == (2, 0.0)
bpy.data.objects.remove(cube)
settings.property_unset("texture_size"), settings.property_unset("texture_views"), settings.property_unset("texture_fill_views")
settings.property_unset("texture_random_seed"), settings.property_unset("texture_negative_prompt")
settings.property_unset("texture_custom_sampling")

# 5c'. Texture Selected from Edit Mode: written in Object Mode, the artist brought back to Edit Mode.
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_cube_add(location=(0.0, 15.0, 0.0))
cube = context.object
bpy.ops.object.mode_set(mode='EDIT')
assert bpy.ops.diffusion3d.texture_mesh(prompt="brick", model="test-texture") == {'FINISHED'}
assert cube.mode == 'EDIT' and context.mode == 'EDIT_MESH' and len(cube.data.materials) == 1
assert material_uv_map(cube.data.materials[0]) == "UVMap"  # its own map, found from Edit Mode too
bpy.ops.object.mode_set(mode='OBJECT')
bpy.data.objects.remove(cube)

# 5d. Two objects, one of which no view can see (a triangle of zero area): the other is written
# and the failure is reported (bl_ui checks the operator then ends FINISHED, for its undo step).
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_cube_add(location=(0.0, 12.0, 0.0))
good = context.object
point = bpy.data.meshes.new("a point")
point.from_pydata([(0, 0, 0)] * 3, [], [(0, 1, 2)])
bad = bpy.data.objects.new("a point", point)
context.scene.collection.objects.link(bad)
bad.select_set(True)
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="brick", model="test-texture")
assert "a point" in error and len(good.data.materials) == 1 and not bad.data.materials, error

# 6. A reference image (magenta) taken by the scene camera on the +X side is projected first:
# the faces it sees are magenta, the far side is painted by the views (no direction colour is
# below 0.1 in any channel, magenta's green is 0; without the reference the +X side's is ~0.5).
reference = os.path.join(os.environ["DIFFUSION3D_TMP"], "reference.png")
picture = bpy.data.images.new("reference", 96, 64)
picture.pixels.foreach_set(np.tile(np.array([1.0, 0.0, 1.0, 1.0], np.float32), 96 * 64))
picture.filepath_raw, picture.file_format = reference, 'PNG'
picture.save()
bpy.data.images.remove(picture)
camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
context.scene.collection.objects.link(camera)
camera.location, camera.rotation_euler = (4.0, 0.0, 0.0), (np.pi / 2, 0.0, np.pi / 2)  # looking along -X
context.scene.camera = camera
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_monkey_add(location=(0.0, 0.0, 3.0))
head = context.object
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="painted", model="test-texture",
                     reference_image=reference + ".missing")
assert result == {'CANCELLED'} and "does not exist" in error, error
head.location = (0.0, 0.0, 0.0)
# No prompt: the reference alone says what to paint.
assert bpy.ops.diffusion3d.texture_mesh(prompt="", model="test-texture", seed=2, reference_image=reference,
                                        reference_view='CAMERA') == {'FINISHED'}
colours = side_colours(head, head.data.materials[-1].node_tree.nodes["Image Texture"].image)
print("with a reference from +X:", colours)
assert colours[1][1] < 0.25 and colours[1][0] > 0.75 and colours[1][2] > 0.8, colours  # mostly magenta where it saw
assert colours[-1][1] > 0.3, colours  # the views painted the back
assert json.loads(head["diffusion3d"])["texture"]["reference_image"] is True

# 'Current View' reads the viewport's matrices (a window-less bpy cannot redraw a view, so the
# view is stood in for by one with the scene camera's matrices): the same camera comes out.
spec = addon_module("scene_io.reference_camera")
view = types.SimpleNamespace(is_perspective=True, view_matrix=camera.matrix_world.inverted(),
                             window_matrix=camera.calc_matrix_camera(context.evaluated_depsgraph_get(), x=96, y=64))
in_view = types.SimpleNamespace(space_data=types.SimpleNamespace(type='VIEW_3D', region_3d=view), scene=context.scene)
from_camera, from_view = spec.reference_camera(context, head, 'CAMERA', 96, 64), spec.reference_camera(in_view, head, 'VIEW', 96, 64)
assert all(np.allclose(from_camera[k], from_view[k], atol=1e-5) for k in from_camera), (from_camera, from_view)
assert np.allclose(from_camera["eye"], [4.0, 0.0, 0.0], atol=1e-5)  # glTF axes, object space
assert np.allclose(np.subtract(from_camera["target"], from_camera["eye"])[1:], 0, atol=1e-5)  # looking along -X
view.is_perspective = False
try:
    spec.reference_camera(in_view, head, 'VIEW', 96, 64)
    raise AssertionError("an orthographic view was accepted")
except ValueError as exc:
    assert "orthographic" in str(exc)
done()
