"""Text to image to 3D from the add-on: a real backend draws candidates with a tiny Stable
Diffusion; the gallery comes back without a mesh, and Make 3D sends a picked image to TripoSR."""

import json
import os

import bpy
import numpy as np
from bl_harness import addon_module, call, done, install

install()
jobs = addon_module("operators.jobs")

assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
few = json.dumps({"image_size": 64, "grid_size": 48, "texture_size": 256})
objects_before = set(bpy.data.objects.keys())
result = bpy.ops.diffusion3d.generate_mesh(prompt="a lantern", model="sd-triposr", candidates=3, seed=5, steps=2,
                                           extra_params=few)
assert result == {'FINISHED'}, result
gallery = jobs.JOBS[0]
assert gallery.state == "succeeded" and gallery.gallery_only, (gallery.state, gallery.error)
assert len(gallery.candidate_paths) == 3 and all(os.path.isfile(p) for p in gallery.candidate_paths)
assert set(bpy.data.objects.keys()) == objects_before  # a gallery makes no object
assert gallery.request.params["pick"] == -1 and gallery.request.params["candidates"] == 3

# The artist likes candidate 1 (made a clean picture here: tiny SD draws noise) and makes it 3D.
picture = bpy.data.images.new("clean", 64, 64)
pixels = np.ones((64, 64, 4), np.float32)
yy, xx = np.mgrid[:64, :64]
pixels[(yy - 32) ** 2 + (xx - 32) ** 2 < 18 ** 2] = (0.8, 0.5, 0.1, 1.0)
picture.pixels.foreach_set(pixels.reshape(-1))
picture.filepath_raw = gallery.candidate_paths[1]
picture.file_format = 'PNG'
picture.save()
bpy.data.images.remove(picture)
bpy.ops.ed.undo_push(message="before making it 3D")
assert bpy.ops.diffusion3d.use_candidate(key=gallery.key, index=1) == {'FINISHED'}
made = jobs.JOBS[0]
assert made.state == "succeeded" and made.task == "image_to_3d" and made.request.model == "triposr", made.error
obj = bpy.data.objects[made.applied_to]
assert obj.name == "a lantern 1" and json.loads(obj["diffusion3d"])["model"] == "triposr"
assert bpy.data.images[obj["diffusion3d_input_image"]].packed_file is not None  # the picked image, kept

# Make 3D takes another image-to-3D model from a script.
result, error = call(bpy.ops.diffusion3d.use_candidate, key=gallery.key, index=1, model="no-such-model")
assert result == {'CANCELLED'} and "unknown model 'no-such-model'" in error, error

# A script names its picks: the gallery is drawn, then each pick goes to 3D. Tiny SD's noise
# cannot be cut out: the pick fails saying so, and the gallery stays to pick another.
result = bpy.ops.diffusion3d.generate_mesh(prompt="a kettle", model="sd-triposr", candidates=2, pick="0", seed=8,
                                           steps=2, extra_params=few)
picked = jobs.JOBS[0]
assert picked.state == "failed" and "background is not plain" in picked.error, (picked.state, picked.error)
assert jobs.JOBS[1].gallery_only and jobs.JOBS[1].label == "a kettle"
done()
