"""Reshape Selected in background mode against a real backend (reshape-sd, tiny random Stable
Diffusion behind the model's id): only vertices of the selected faces and their border move;
polygons, UVs, materials and every other vertex stay; one undo step puts the positions back."""

import json

import bpy
import numpy as np
from bl_harness import addon_module, done, empty_scene, install

install()
jobs = addon_module("operators.jobs")
context = bpy.context


def call(operator, *args, **kwargs):
    try:
        return operator(*args, **kwargs), ""
    except RuntimeError as exc:
        return {'CANCELLED'}, str(exc)


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

# 4. A mesh with shape keys keeps copies of its positions: refused with what to do.
bpy.ops.object.mode_set(mode='OBJECT')
ball.shape_key_add(name="Basis")
bpy.ops.object.mode_set(mode='EDIT')
result, error = call(bpy.ops.diffusion3d.reshape_selected, prompt="horns")
assert result == {'CANCELLED'} and "shape keys" in error, error
done()
