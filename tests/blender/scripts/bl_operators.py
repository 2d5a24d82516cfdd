"""Every operator in background mode against a real backend subprocess (test-cube model)."""

import json
import os
import time

import bpy
from bl_harness import MODULE, addon_module, done, install

module = install()
jobs = addon_module("operators.jobs")
session = addon_module("service.session")
properties = addon_module("panels.properties")
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.startup_timeout = 120.0
context = bpy.context
LOCAL = session.LOCAL


def call(operator, *args, **kwargs):
    """Run an operator; bpy.ops raises RuntimeError carrying the reported error: return it instead."""
    try:
        return operator(*args, **kwargs), ""
    except RuntimeError as exc:
        return {'CANCELLED'}, str(exc)


def objects():
    return sorted(o.name for o in bpy.data.objects)


# 1. Start the backend from the operator; the model list comes from GET /models.
assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
assert LOCAL.is_running() and LOCAL.url.startswith("http://127.0.0.1:")
assert any(m["name"] == "test-cube" for m in properties.MODELS), properties.MODELS
assert os.path.isfile(LOCAL.log_path) and os.environ["BLENDER_USER_RESOURCES"] in LOCAL.log_path

# 2. generate_mesh blocks in background mode and writes one undoable object at the cursor.
context.scene.cursor.location = (0.0, 0.0, 2.0)
bpy.ops.ed.undo_push(message="before generate")
before = objects()
result = bpy.ops.diffusion3d.generate_mesh('EXEC_DEFAULT', True, prompt="a red cube", model="test-cube", seed=3)
assert result == {'FINISHED'}, result
obj = bpy.data.objects["a red cube"]
assert context.view_layer.objects.active == obj and obj.select_get()
assert tuple(obj.location) == (0.0, 0.0, 2.0)
assert len(obj.data.vertices) == 24 and len(obj.data.polygons) == 12
assert obj.data.color_attributes.active_color.name == "Color"
material = obj.data.materials[0]
bsdf = next(n for n in material.node_tree.nodes if n.type == 'BSDF_PRINCIPLED')
assert bsdf.inputs["Base Color"].links[0].from_node.type == 'VERTEX_COLOR'
meta = json.loads(obj["diffusion3d"])
assert meta["model"] == "test-cube" and meta["seed"] == 3, meta
job = jobs.JOBS[0]
assert job.state == "succeeded" and job.applied_to == "a red cube" and os.path.isfile(job.result_path)
bpy.ops.ed.undo()
assert objects() == before, objects()
bpy.ops.ed.redo()
assert "a red cube" in bpy.data.objects
obj = bpy.data.objects["a red cube"]

# 3. A finished job can be imported again from the job list, downloaded again when its file is gone.
os.remove(job.result_path)
assert bpy.ops.diffusion3d.import_result(key=job.key) == {'FINISHED'}
assert "a red cube.001" in bpy.data.objects and os.path.isfile(job.result_path)
assert job.result is None and not job.importing  # written: nothing held in memory
# A job its own run is still writing is not imported twice.
running = jobs.add_job(jobs.Job(job.request))
running.state = "succeeded"
result, error = call(bpy.ops.diffusion3d.import_result, key=running.key)
assert result == {'CANCELLED'} and "still being written" in error, error
jobs.JOBS.remove(running)

# 3b. A batch script in Edit Mode on another object: Object Mode first, as Blender's add operators.
context.view_layer.objects.active = bpy.data.objects["a red cube.001"]
bpy.ops.object.mode_set(mode='EDIT')
assert bpy.ops.diffusion3d.generate_mesh(prompt="a cube from edit mode", model="test-cube") == {'FINISHED'}
assert context.mode == 'OBJECT' and context.view_layer.objects.active.name == "a cube from edit mode"
bpy.data.objects.remove(bpy.data.objects["a cube from edit mode"])
context.view_layer.objects.active = bpy.data.objects["a red cube.001"]
bpy.ops.object.mode_set(mode='EDIT')
assert bpy.ops.diffusion3d.import_result(key=jobs.JOBS[0].key) == {'FINISHED'}  # Import from Edit Mode, too
assert context.mode == 'OBJECT' and context.view_layer.objects.active.name == "a cube from edit mode"
bpy.data.objects.remove(bpy.data.objects["a cube from edit mode"])

# 4. Failures are reported, and the scene is left alone.
before = objects()
for kwargs, expect in (
    (dict(prompt="x", model="test-cube", extra_params='{"fail": "generation"}'), "empty surface"),
    (dict(prompt="x", model="no-such-model"), "no-such-model"),
    (dict(prompt=""), "prompt"),
    (dict(prompt="x", model="test-cube", extra_params="[1"), "JSON"),
):
    result, error = call(bpy.ops.diffusion3d.generate_mesh, **kwargs)
    assert result == {'CANCELLED'} and expect in error, (kwargs, error)
    assert objects() == before

# 4b. image_to_3d: a missing file is caught before sending; a real image reaches the backend, whose
# image model is not downloaded here — the error names it.
result, error = call(bpy.ops.diffusion3d.generate_mesh, image="/nonexistent/photo.png")
assert result == {'CANCELLED'} and "image not found" in error, error
image = bpy.data.images.new("photo", 64, 64)
disc = [(0.9, 0.2, 0.1, 1.0) if (x - 32) ** 2 + (y - 32) ** 2 < 400 else (1.0, 1.0, 1.0, 1.0)
        for y in range(64) for x in range(64)]  # an object on a plain background
image.pixels.foreach_set([channel for pixel in disc for channel in pixel])
image.filepath_raw = os.path.join(os.environ["DIFFUSION3D_TMP"], "photo.png")
image.file_format = 'PNG'
image.save()
result, error = call(bpy.ops.diffusion3d.generate_mesh, image=image.filepath_raw)
print("image_to_3d:", result, error)
assert result == {'CANCELLED'} and jobs.JOBS[0].task == "image_to_3d" and "stabilityai/TripoSR" in error, error
assert objects() == before

# 4c. Linked data: an object from a library file is refused (a result on it would be lost on
# reload); a new result made while a linked collection is active lands in the scene's own.
library_path = os.path.join(os.environ["DIFFUSION3D_TMP"], "library.blend")
library_cube = bpy.data.objects.new("library cube", bpy.data.meshes.new("library mesh"))
library_collection = bpy.data.collections.new("library collection")
library_collection.objects.link(library_cube)
bpy.data.libraries.write(library_path, {library_collection})
bpy.data.collections.remove(library_collection)
bpy.data.objects.remove(library_cube)
with bpy.data.libraries.load(library_path, link=True) as (source, target):
    target.collections = ["library collection"]
linked_collection = target.collections[0]
context.scene.collection.children.link(linked_collection)
linked = linked_collection.objects["library cube"]
bpy.ops.object.select_all(action='DESELECT')
linked.select_set(True)
context.view_layer.objects.active = linked
for operator, kwargs in ((bpy.ops.diffusion3d.texture_mesh, dict(prompt="gold", model="test-texture")),
                         (bpy.ops.diffusion3d.edit_part, dict(prompt="taller", mode='EDIT'))):
    result, error = call(operator, **kwargs)
    assert result == {'CANCELLED'} and "linked from a library" in error and "Make Local" in error, error
layer = context.view_layer.layer_collection.children[linked_collection.name]
context.view_layer.active_layer_collection = layer
assert context.collection == linked_collection
assert bpy.ops.diffusion3d.generate_mesh(prompt="a cube beside the library", model="test-cube") == {'FINISHED'}
beside = bpy.data.objects["a cube beside the library"]
assert beside.users_collection == (context.scene.collection,), beside.users_collection
context.view_layer.active_layer_collection = context.view_layer.layer_collection
bpy.data.objects.remove(beside)
context.scene.collection.children.unlink(linked_collection)
before = objects()

# 5. texture_mesh: the default texture model (sd2-depth) is not downloaded here → its readable
# error, the object untouched (tests/blender/scripts/bl_texture.py paints with test-texture).
bpy.ops.object.select_all(action='DESELECT')
obj.select_set(True)
context.view_layer.objects.active = obj
n_verts, materials = len(obj.data.vertices), [m.name for m in obj.data.materials]
uv_maps = [layer.name for layer in obj.data.uv_layers]
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="rusty metal")
print("texture_mesh:", result, error)
assert result == {'CANCELLED'} and "stable-diffusion-2-depth is not downloaded" in error, error
assert jobs.JOBS[0].task == "texture" and jobs.JOBS[0].error
assert len(obj.data.vertices) == n_verts and [m.name for m in obj.data.materials] == materials
assert [layer.name for layer in obj.data.uv_layers] == uv_maps
# The sidebar's texture model: the ControlNet route is listed and chosen by name.
settings = context.scene.diffusion3d
settings.texture_model = "sd15-controlnet-depth"
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="rusty metal")
assert result == {'CANCELLED'} and "control_v11f1p_sd15_depth is not downloaded" in error, error
assert jobs.JOBS[0].request.model == "sd15-controlnet-depth", jobs.JOBS[0].request
settings.texture_model = 'DEFAULT'

# 6. edit_part sends the object (+ its metadata); the transform stays whatever happens.
obj.location = (3.0, 1.0, 0.5)
obj.rotation_euler = (0.0, 0.0, 0.7)
context.view_layer.update()
matrix = obj.matrix_world.copy()
listed = len(jobs.JOBS)
for mode in ('EDIT', 'COMPLETE'):  # from Object Mode no faces are selected: refused before sending
    result, error = call(bpy.ops.diffusion3d.edit_part, prompt="taller", mode=mode)
    assert result == {'CANCELLED'} and "select its faces in Edit Mode" in error, error
assert len(jobs.JOBS) == listed and obj.matrix_world == matrix and len(obj.data.vertices) == n_verts

# 6b. From Edit Mode the selected faces travel as the mask; Mix needs a second object.
shape_before = sorted(tuple(round(c, 4) for c in v.co) for v in obj.data.vertices)
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_all(action='DESELECT')
result, error = call(bpy.ops.diffusion3d.edit_part, prompt="taller", mode='EDIT')
assert result == {'CANCELLED'} and "select the faces" in error, error
bpy.ops.mesh.select_all(action='SELECT')
result, error = call(bpy.ops.diffusion3d.edit_part, prompt="taller", mode='COMPLETE')
assert result == {'FINISHED'} and jobs.JOBS[0].task == "edit_part" and jobs.JOBS[0].applied_to == obj.name, error
assert obj.mode == 'EDIT'  # back in Edit Mode, where the artist started
bpy.ops.object.mode_set(mode='OBJECT')
assert sorted(tuple(round(c, 4) for c in v.co) for v in obj.data.vertices) != shape_before  # every face regenerated
assert obj.matrix_world == matrix
result, error = call(bpy.ops.diffusion3d.edit_part, mode='MIX')
assert result == {'CANCELLED'} and "exactly one other" in error, error

# 7. cancel_job: a slow job running in a worker thread stops within a step.
settings = addon_module("panels.preferences").backend_settings(context)
slow = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "slow", "num_inference_steps": 200,
                                                              "step_delay": 0.05}, "slow", "test-cube")))
thread = jobs.start_worker(slow, settings)
deadline = time.time() + 30
while (slow.state != "running" or slow.step < 3) and time.time() < deadline:
    time.sleep(0.05)
step_at_cancel = slow.step
assert bpy.ops.diffusion3d.cancel_job(key=slow.key) == {'FINISHED'}
thread.join(30)
assert slow.state == "cancelled", (slow.state, slow.error)
# The worker polls every 0.25 s (5 steps of 0.05 s) before it sends the cancel, which lands within a step.
assert slow.step <= step_at_cancel + 8, (step_at_cancel, slow.step)

# 8. A backend that dies mid-job: the job fails with the reason, the scene is untouched.
before = objects()
doomed = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "doomed", "num_inference_steps": 400,
                                                                "step_delay": 0.05}, "doomed", "test-cube")))
thread = jobs.start_worker(doomed, settings)
while doomed.state != "running" and time.time() < deadline + 30:
    time.sleep(0.05)
LOCAL.process.kill()
thread.join(30)
assert doomed.state == "failed" and "was killed (signal 9" in doomed.error, (doomed.state, doomed.error)
jobs.tick(context, [doomed])
assert objects() == before
assert "exited" in session.status_text(settings)

# 9. ... and is restarted by the next job.
assert bpy.ops.diffusion3d.generate_mesh(prompt="again", model="test-cube") == {'FINISHED'}
assert "again" in bpy.data.objects and LOCAL.is_running()

# 10. A remote backend with a wrong token / nothing listening gives readable errors.
prefs.backend_mode = 'REMOTE'
prefs.remote_url = LOCAL.url
prefs.remote_token = "wrong"
result, error = call(bpy.ops.diffusion3d.generate_mesh, prompt="x", model="test-cube")
assert result == {'CANCELLED'} and "token" in error, error
prefs.remote_url = "http://127.0.0.1:9"
result, error = call(bpy.ops.diffusion3d.generate_mesh, prompt="x", model="test-cube")
assert result == {'CANCELLED'} and "not running" in error, error
prefs.backend_mode = 'LOCAL'

# 11. A preference the backend reads at launch changes: the sidebar says so, start_backend
# restarts it with the new value (and refuses while a job runs), jobs keep working.
process = LOCAL.process
prefs.cpu_threads = 1
settings = addon_module("panels.preferences").backend_settings(context)
assert session.needs_restart(settings) and "restart" in session.status_text(settings)
busy = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "busy"}, "busy", "test-cube")))
result, error = call(bpy.ops.diffusion3d.start_backend)
assert result == {'CANCELLED'} and "still running" in error and LOCAL.process is process, error
jobs.JOBS.remove(busy)
assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
assert LOCAL.process is not process and process.poll() is not None and not session.needs_restart(settings)
args = list(LOCAL.launched_with[1])
assert args[args.index("--threads") + 1] == "1", args
assert bpy.ops.diffusion3d.generate_mesh(prompt="after restart", model="test-cube") == {'FINISHED'}
prefs.cpu_threads = 0

# 12. Starting lists the backend's past jobs (as after Blender was closed and opened again).
del jobs.JOBS[:]
assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
past = {job.label: job for job in jobs.JOBS}
assert past["again"].state == past["after restart"].state == "succeeded", sorted(past)
assert past["doomed"].state == "failed" and past["doomed"].request is None  # listed, not re-run
# A past job listed while it ran is brought up to date by Refresh, and offers no Cancel (on a
# shared backend it may be another artist's).
past["again"].state, past["again"].step = "running", 1
sidebar, calls = addon_module("panels.sidebar"), []


class Recorder:
    def __getattr__(self, name):
        return lambda *args, **kwargs: calls.append((name, *args)) or Recorder()


sidebar.draw_job(Recorder(), past["again"])
assert not any(call[0] == "operator" and call[1] == "diffusion3d.cancel_job" for call in calls), calls
listed = len(jobs.JOBS)
assert bpy.ops.diffusion3d.refresh() == {'FINISHED'}
assert past["again"].state == "succeeded" and len(jobs.JOBS) == listed  # updated, not listed twice

# 13. stop_backend, and unregistering stops a running backend too.
assert bpy.ops.diffusion3d.stop_backend() == {'FINISHED'} and not LOCAL.is_running()
assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
process = LOCAL.process
module.unregister()
assert process.poll() is not None, "backend still running after unregister"
module.register()
done()
