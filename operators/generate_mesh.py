"""Generate a new object from a prompt or an image."""

import os

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from ..panels.properties import PATH_OPTIONS
from .jobs import JobOperator, JobRequest, parse_extra_params, sampling_params


def _label(prompt: str, image: str) -> str:
    text = prompt.strip() or (os.path.splitext(os.path.basename(image))[0] if image else "")
    return (text[:48].strip() or "Diffusion 3D").replace("\n", " ")


class DIFFUSION3D_OT_generate_mesh(JobOperator, bpy.types.Operator):
    """Generate a mesh from the prompt (or the image) with the backend; it appears at the 3D cursor"""

    bl_idname = "diffusion3d.generate_mesh"
    bl_label = "Generate"
    bl_options = {'REGISTER', 'UNDO'}

    # Unset properties fall back to the sidebar's settings (context.scene.diffusion3d).
    prompt: StringProperty(name="Prompt")
    image: StringProperty(name="Image", subtype='FILE_PATH', options=PATH_OPTIONS)
    model: StringProperty(name="Model", description="Model name from the backend; empty = the task's default")
    seed: IntProperty(name="Seed", min=-1, default=-1, description="-1 = random")
    random_seed: BoolProperty(name="Random Seed", description="Ignore the seed: a new one for this job", default=False)
    steps: IntProperty(name="Steps", min=0, default=0, description="0 = the model's default")
    guidance: FloatProperty(name="Guidance", min=-1.0, default=-1.0, description="-1 = the model's default")
    extra_params: StringProperty(name="Extra Parameters", description="JSON object of further model parameters (scripts)")

    def build_requests(self, context):
        settings = context.scene.diffusion3d
        given = self.properties.is_property_set
        prompt = self.prompt if given("prompt") else settings.prompt
        image = self.image if given("image") else (settings.image if not given("prompt") else "")
        model = self.model if given("model") else ("" if settings.model == 'DEFAULT' else settings.model)
        params = {}
        if given("random_seed") and self.random_seed:
            seed = None
        elif given("seed"):
            seed = None if self.seed < 0 else self.seed
        elif given("random_seed"):  # random_seed=False without a seed: the sidebar's seed
            seed = settings.seed
        else:
            seed = None if settings.random_seed else settings.seed
        if seed is not None:
            params["seed"] = seed
        params.update(sampling_params(self, settings.custom_sampling, settings.steps, settings.guidance))

        params.update(parse_extra_params(self.extra_params))

        files = {}
        if image:
            path = bpy.path.abspath(image)
            if not os.path.isfile(path):
                raise ValueError(f"image not found: {path}")
            with open(path, "rb") as handle:
                files["image"] = handle.read()
            task = "image_to_3d"  # image models take no prompt; it only names the new object
        else:
            if not prompt.strip():
                raise ValueError("type a prompt (or pick an image) first")
            params["prompt"] = prompt.strip()
            task = "text_to_3d"
        return [JobRequest(task, params, _label(prompt, image), model, files,
                           source_image=bpy.path.abspath(image) if image else "")]

    def after_written(self, context, job) -> None:
        """An image's object keeps the image (packed into the .blend, named in the object's
        `diffusion3d_input_image`), so the artist can compare, share or rerun from it."""
        path = job.request.source_image if job.request else ""
        obj = bpy.data.objects.get(job.applied_to)
        if not path or obj is None:
            return
        try:
            image = bpy.data.images.load(path, check_existing=True)
            if image.packed_file is None:
                image.pack()
        except RuntimeError as exc:  # moved or unreadable since it was sent: the result stays
            self.report({'WARNING'}, f"the input image was not kept with '{obj.name}': {exc}")
            return
        obj["diffusion3d_input_image"] = image.name
