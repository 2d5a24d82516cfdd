"""The score-distillation models from the Generate operator (and Refine): a real backend runs
them on tiny random Stable Diffusion and CLIP behind the models' ids, and the meshes land in
the scene, undoably."""

import json
import os
import time

import bpy
import numpy as np
from bl_harness import addon_module, call, done, install

install()
jobs = addon_module("operators.jobs")
properties = addon_module("panels.properties")

assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
model = next(m for m in properties.MODELS if m["name"] == "dreamfusion-sd")
assert model["task"] == "text_to_3d" and model["params"]["guidance_scale"] == 100.0, model

bpy.ops.ed.undo_push(message="before distilling")
result = bpy.ops.diffusion3d.generate_mesh('EXEC_DEFAULT', True, prompt="a teapot", model="dreamfusion-sd", seed=2,
                                           steps=3, extra_params=json.dumps({"render_resolution": 16, "grid_size": 32,
                                                                             "texture_size": 256}))
assert result == {'FINISHED'}, result
job = jobs.JOBS[0]
assert job.state == "succeeded", job.error
obj = bpy.data.objects["a teapot"]
assert len(obj.data.polygons) > 0 and obj.data.uv_layers.active is not None
images = [n.image for n in obj.data.materials[0].node_tree.nodes if n.type == 'TEX_IMAGE']
assert images and images[0].size[0] == 256, images  # the baked albedo
meta = json.loads(obj["diffusion3d"])
assert meta["model"] == "dreamfusion-sd" and meta["seed"] == 2 and meta["steps"] == 3, meta
bpy.ops.ed.undo()
assert "a teapot" not in bpy.data.objects

# ProlificDreamer (VSD with its camera LoRA) and DreamFields (CLIP) land meshes the same way.
for name, prompt in (("prolificdreamer-sd", "a vase"), ("dreamfields-clip", "a bouquet")):
    result = bpy.ops.diffusion3d.generate_mesh(prompt=prompt, model=name, seed=3, steps=3, extra_params=json.dumps(
        {"render_resolution": 16, "grid_size": 32, "texture_size": 256}))
    assert result == {'FINISHED'}, (name, result)
    assert jobs.JOBS[0].state == "succeeded", (name, jobs.JOBS[0].error)
    landed = bpy.data.objects[jobs.JOBS[0].applied_to]
    assert len(landed.data.polygons) > 0 and json.loads(landed["diffusion3d"])["model"] == name

# Image to 3D with Zero-1-to-3: a photo of one object on transparency.
photo = bpy.data.images.new("disc", 64, 64, alpha=True)
pixels = np.zeros((64, 64, 4), np.float32)
yy, xx = np.mgrid[:64, :64]
pixels[(yy - 32) ** 2 + (xx - 30) ** 2 < 15 ** 2] = (0.9, 0.2, 0.1, 1.0)
photo.pixels.foreach_set(pixels.reshape(-1))
photo.filepath_raw = os.path.join(os.environ["DIFFUSION3D_TMP"], "disc.png")
photo.file_format = 'PNG'
photo.save()
result = bpy.ops.diffusion3d.generate_mesh(image=photo.filepath_raw, model="zero123-sds", seed=1, steps=3,
                                           extra_params=json.dumps({"render_resolution": 16, "grid_size": 32,
                                                                    "texture_size": 256}))
assert result == {'FINISHED'} and jobs.JOBS[0].task == "image_to_3d", (result, jobs.JOBS[0].error)
landed = bpy.data.objects[jobs.JOBS[0].applied_to]
assert len(landed.data.polygons) > 0 and json.loads(landed["diffusion3d"])["model"] == "zero123-sds"

# Cancel a long run, then Continue it: from its checkpoint, exactly; and, as if the checkpoint had
# been deleted, from its saved state as a draft, for the steps left.
settings = addon_module("panels.preferences").backend_settings(bpy.context)
request = jobs.JobRequest("text_to_3d", {"prompt": "a stool", "seed": 4, "num_inference_steps": 24,
                                         "render_resolution": 16, "grid_size": 32, "texture_size": 256},
                          "a stool", "dreamfusion-sd")
long_job = jobs.add_job(jobs.Job(request))
jobs.start_worker(long_job, settings)
deadline = time.monotonic() + 120
while not (long_job.phase == "distill" and long_job.step >= 3):
    assert time.monotonic() < deadline and long_job.state not in ("failed", "succeeded"), (long_job.state, long_job.error)
    time.sleep(0.05)
long_job.cancel_requested = True
while long_job.state != "cancelled" or not long_job.has_current_state:
    assert time.monotonic() < deadline, (long_job.state, long_job.has_current_state)
    time.sleep(0.05)
reached = long_job.step
assert long_job.has_checkpoint
assert bpy.ops.diffusion3d.continue_job(key=long_job.key) == {'FINISHED'}
exact = jobs.JOBS[0]
assert exact.state == "succeeded" and exact.label == "a stool (continued)", (exact.state, exact.error)
assert exact.request.resume == long_job.backend_id and exact.params["num_inference_steps"] == 24
assert len(bpy.data.objects[exact.applied_to].data.polygons) > 0
long_job.has_checkpoint = False  # as if it had been deleted to save space
assert bpy.ops.diffusion3d.continue_job(key=long_job.key) == {'FINISHED'}
resumed = jobs.JOBS[0]
assert resumed.state == "succeeded" and resumed.label == "a stool (continued)", (resumed.state, resumed.error)
assert resumed.request.params["num_inference_steps"] == 24 - reached and resumed.request.params["seed"] == 4
assert "mesh" not in resumed.request.files  # sent (the draft) and let go
assert len(bpy.data.objects[resumed.applied_to].data.polygons) > 0
result, error = call(bpy.ops.diffusion3d.continue_job, key=resumed.key)  # it finished: nothing to continue
assert result == {'CANCELLED'} and "cannot be continued" in error, error

# Refine a draft with Magic3D's fine stage: a textured copy lands over it, undoably.
bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=2, radius=1.5, location=(4.0, 0.0, 0.0))
draft = bpy.context.object
draft.scale = (1.0, 1.0, 0.5)
bpy.ops.ed.undo_push(message="before refining")
few = {"fine_steps": 2, "fine_resolution": 64, "texture_size": 256}
result = bpy.ops.diffusion3d.refine_selected('EXEC_DEFAULT', True, prompt="a pebble", seed=1,
                                             extra_params=json.dumps(few))
assert result == {'FINISHED'}, result
job = jobs.JOBS[0]
assert job.state == "succeeded" and job.request.model == "magic3d-sd", (job.state, job.error)
refined = bpy.data.objects[job.applied_to]
assert refined != draft and refined.name.startswith("Icosphere refined")
corners = [refined.matrix_world @ v.co for v in refined.data.vertices]
low = [min(c[i] for c in corners) for i in range(3)]
high = [max(c[i] for c in corners) for i in range(3)]
print("refined bounds", low, high)
assert abs((low[0] + high[0]) / 2 - 4.0) < 0.2 and abs((high[2] - low[2]) - 1.5) < 0.3  # where the draft is, its size
assert any(n.type == 'TEX_IMAGE' for n in refined.data.materials[0].node_tree.nodes)
assert json.loads(refined["diffusion3d"])["model"] == "magic3d-sd"
name = refined.name
bpy.ops.ed.undo()
assert name not in bpy.data.objects and "Icosphere" in bpy.data.objects
done()
