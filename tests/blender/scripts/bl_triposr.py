"""Image to 3D with TripoSR from the add-on: a real backend runs a tiny TripoSR behind the model's
id, the textured mesh lands in the scene with the photo kept beside it, and the Jobs panel gets
the look from the photo's camera."""

import json
import os

import bpy
import numpy as np
from bl_harness import addon_module, done, install

install()
jobs = addon_module("operators.jobs")
properties = addon_module("panels.properties")

assert bpy.ops.diffusion3d.start_backend() == {'FINISHED'}
entry = next(m for m in properties.MODELS if m["name"] == "triposr")
assert entry["task"] == "image_to_3d" and entry["default"] and entry["tier"] == "draft", entry

# A photo of one object on a plain background, as a file the artist picks.
photo = bpy.data.images.new("mug photo", 96, 96)
pixels = np.ones((96, 96, 4), np.float32)
yy, xx = np.mgrid[:96, :96]
pixels[(yy - 48) ** 2 + (xx - 45) ** 2 < 30 ** 2] = (0.1, 0.3, 0.8, 1.0)
photo.pixels.foreach_set(pixels.reshape(-1))
path = os.path.join(os.environ["DIFFUSION3D_TMP"], "mug.png")
photo.filepath_raw = path
photo.file_format = 'PNG'
photo.save()
bpy.data.images.remove(photo)

bpy.ops.ed.undo_push(message="before reconstructing")
result = bpy.ops.diffusion3d.generate_mesh('EXEC_DEFAULT', True, image=path,
                                           extra_params=json.dumps({"grid_size": 48, "texture_size": 256}))
assert result == {'FINISHED'}, result
job = jobs.JOBS[0]
assert job.state == "succeeded" and job.task == "image_to_3d", (job.state, job.error)
obj = bpy.data.objects[job.applied_to]
assert obj.name.startswith("mug") and len(obj.data.polygons) > 0 and obj.data.uv_layers.active is not None
meta = json.loads(obj["diffusion3d"])
assert meta["model"] == "triposr" and meta["cut_out"] == "plain background", meta
images = [n.image for n in obj.data.materials[0].node_tree.nodes if n.type == 'TEX_IMAGE']
assert images and images[0].size[0] == 256, images  # the baked colour
kept = bpy.data.images[obj["diffusion3d_input_image"]]
assert kept.packed_file is not None and tuple(kept.size) == (96, 96)  # the photo travels with the .blend
assert job.preview_path and os.path.isfile(job.preview_path)  # input beside the result, for the Jobs panel
with open(job.preview_path, "rb") as handle:
    assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
bpy.ops.ed.undo()
assert job.applied_to not in bpy.data.objects
done()
