"""Reshape Selected in background mode against a real backend (reshape-sd, tiny random Stable
Diffusion behind the model's id): only vertices of the selected faces and their border move;
polygons, UVs, materials and every other vertex stay; one undo step puts the positions back."""

import json
import time
import types

import bpy
import numpy as np
from bl_harness import addon_module, call, done, empty_scene, install

install()
jobs = addon_module("operators.jobs")
context = bpy.context


def positions(obj):
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def topology(obj):
    mesh = obj.data
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    return loops.tobytes(), len(mesh.polygons), [m.name for m in mesh.materials], [l.name for l in mesh.uv_layers]


assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
empty_scene()
bpy.ops.mesh.primitive_uv_sphere_add(segments=32, ring_count=16)
ball = context.object
ball.data.materials.append(bpy.data.materials.new("Clay"))
top = {p.index for p in ball.data.polygons if p.center.z > 0.7}
cap = {v for i in top for v in ball.data.polygons[i].vertices}
for element in (*ball.data.vertices, *ball.data.edges):
    element.select = all(v in cap for v in getattr(element, "vertices", [element.index]))
for p in ball.data.polygons:
    p.select = p.index in top
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_mode(type='FACE')
before, shape = positions(ball), topology(ball)

# 1. Nothing to say: refused before anything is sent.
result, error = call(bpy.ops.diffusion3d.reshape_selected, prompt="")
assert result == {'CANCELLED'} and "type what the selected faces should become" in error, error

# 2. Reshape the cap, blocking, as the UI would (one undo step).
bpy.ops.ed.undo_push(message="before reshape")
result = bpy.ops.diffusion3d.reshape_selected('EXEC_DEFAULT', True, prompt="horns", source_prompt="a ball", seed=3,
                                              steps=3, border=5.0, extra_params=json.dumps({"render_resolution": 16}))
assert result == {'FINISHED'}, result
job = jobs.JOBS[0]
assert job.state == "succeeded" and job.applied_to == ball.name, (job.state, job.error)
assert ball.mode == 'EDIT'  # the artist stays in Edit Mode
after = positions(ball)
bpy.ops.object.mode_set(mode='OBJECT')
assert topology(ball) == shape  # polygons, materials, UV maps
moved = (after != before).any(1)
z = before[:, 2]
print("moved", int(moved.sum()), "of", len(before), "lowest moved z", float(z[moved].min()))
assert moved.any() and not moved[z < 0.45].any(), "vertices far from the selection moved"
meta = json.loads(ball["diffusion3d"])["reshape"]
assert meta["model"] == "reshape-sd" and meta["source_prompt"] == "a ball" and meta["moved_vertices"] == int(moved.sum())
bpy.ops.object.mode_set(mode='EDIT')

# 3. One undo step: every position as it was.
name = ball.name
bpy.ops.ed.undo()
ball = bpy.data.objects[name]
assert np.array_equal(positions(ball), before)

# 3b. A long reshape: Import Current State while it runs (a new object, the job goes on), then
# cancel it and import where it stopped. The artist's own mesh is never touched meanwhile.
settings = addon_module("panels.preferences").backend_settings(context)
operator = addon_module("operators.reshape_selected").DIFFUSION3D_OT_reshape_selected
request = operator.build_requests(types.SimpleNamespace(properties=types.SimpleNamespace(is_property_set=lambda n: n in (
    "prompt",)), prompt="horns", source_prompt="", steps=400, border=0.0, seed=1, extra_params='{"render_resolution": 16}',
    model=""), context)[0]
long_job = jobs.add_job(jobs.Job(request))
jobs.start_worker(long_job, settings)
deadline = time.monotonic() + 120
while not (long_job.state == "running" and long_job.step >= 2 and long_job.has_current_state):
    assert time.monotonic() < deadline and long_job.state not in ("failed", "succeeded"), (long_job.state, long_job.error)
    time.sleep(0.05)
bpy.ops.object.mode_set(mode='OBJECT')
assert bpy.ops.diffusion3d.import_current_state(key=long_job.key) == {'FINISHED'}
snapshot = context.active_object
print("imported", snapshot.name)
assert snapshot != ball and snapshot.name.startswith(f"{ball.name}: horns (step ") and len(snapshot.data.vertices)
assert long_job.state == "running" and not long_job.applied_to  # the job goes on; its result still goes to the ball
long_job.cancel_requested = True
while long_job.state not in ("cancelled", "failed", "succeeded"):
    assert time.monotonic() < deadline
    time.sleep(0.05)
assert long_job.state == "cancelled" and long_job.has_current_state, (long_job.state, long_job.has_current_state)
assert bpy.ops.diffusion3d.import_current_state(key=long_job.key) == {'FINISHED'}
assert context.active_object not in (snapshot, ball)
assert np.array_equal(positions(ball), before)  # nothing was written onto the artist's mesh
result, error = call(bpy.ops.diffusion3d.import_current_state, key=job.key)  # the finished one has its result
assert result == {'CANCELLED'} and "no current state" in error, error
context.view_layer.objects.active = ball
bpy.ops.object.mode_set(mode='EDIT')

# 4. A mesh with shape keys keeps copies of its positions: refused with what to do.
bpy.ops.object.mode_set(mode='OBJECT')
ball.shape_key_add(name="Basis")
bpy.ops.object.mode_set(mode='EDIT')
result, error = call(bpy.ops.diffusion3d.reshape_selected, prompt="horns")
assert result == {'CANCELLED'} and "shape keys" in error, error
bpy.ops.object.mode_set(mode='OBJECT')

# 5. Faces whose material shows an image: after the reshape, Repaint Selected runs on them too.
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12, location=(5.0, 0.0, 0.0))
painted = context.object
image = bpy.data.images.new("Skin", 256, 256)
image.pixels.foreach_set(np.full(256 * 256 * 4, 0.5, np.float32))
image.pack()
skin = bpy.data.materials.new("Skin")
skin.use_nodes = True
node = skin.node_tree.nodes.new("ShaderNodeTexImage")
node.image = image
skin.node_tree.links.new(node.outputs["Color"], skin.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
painted.data.materials.append(skin)
for p in painted.data.polygons:
    p.select = p.center.z > 0.8
for v in painted.data.vertices:
    v.select = v.co.z > 0.8
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_mode(type='FACE')
context.scene.diffusion3d.texture_model = "test-texture"
count = len(jobs.JOBS)
result = bpy.ops.diffusion3d.reshape_selected(prompt="a scaly crest", seed=2, steps=2,
                                              extra_params=json.dumps({"render_resolution": 16}))
assert result == {'FINISHED'}, result
follow = jobs.JOBS[0]
assert len(jobs.JOBS) == count + 2 and follow.task == "texture" and follow.state == "succeeded", (follow.task, follow.error)
assert follow.request.params["prompt"] == "a scaly crest" and follow.request.repaint["image"] == "Skin"
assert node.image != image and node.image.name.startswith("Skin repaint"), node.image.name
done()
