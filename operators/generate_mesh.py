"""Generate a new object from a prompt or an image."""

import os

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from ..panels.properties import MODELS, PATH_OPTIONS, model_entry
from .input_image import keep_input_image
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
    candidates: IntProperty(name="Candidates", min=0, max=8, default=0, description="Text to image to 3D: images to "
                            "draw and pick from; 0 = the sidebar's setting")
    pick: StringProperty(name="Pick", description="Candidates to make 3D once drawn, e.g. '0, 2' (scripts); empty "
                         "leaves the gallery in the job list to pick from")

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
            entry = next((m for m in MODELS if m.get("task") == task and m.get("name") == model), {}) if model \
                else model_entry(settings, task)
            if "candidates" in entry.get("params", {}) or given("candidates") or given("pick"):
                count = self.candidates if given("candidates") and self.candidates else settings.candidates
                # One image goes straight to 3D; several make a gallery, then the picks go to 3D
                # (`after_candidates`). A script's extra_params say otherwise when they name them.
                params.setdefault("candidates", count)
                params.setdefault("pick", 0 if count == 1 and parse_pick(self.pick) in ([], [0]) else -1)
        return [JobRequest(task, params, _label(prompt, image), model, files,
                           source_image=bpy.path.abspath(image) if image else "")]

    def after_written(self, context, job) -> None:
        keep_input_image(self, job)

    def after_candidates(self, context, job) -> None:
        """A gallery drawn for a script's `pick`: make those candidates 3D, each its own object."""
        for index in parse_pick(self.pick):
            if index < len(job.candidate_paths):
                try:
                    bpy.ops.diffusion3d.use_candidate('EXEC_DEFAULT' if bpy.app.background else 'INVOKE_DEFAULT',
                                                      key=job.key, index=index)
                except RuntimeError as exc:  # its own error is in the job list; the gallery stays to pick again
                    self.report({'WARNING'}, f"candidate {index} was not made 3D: {exc}")
            else:
                self.report({'WARNING'}, f"there is no candidate {index}: the gallery has {len(job.candidate_paths)}")


def parse_pick(text: str) -> list[int]:
    """"0, 2" -> [0, 2]; also "[0, 2]"."""
    try:
        return [int(piece) for piece in text.strip(" []").replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"pick is {text!r}: give candidate numbers, e.g. \"0, 2\"") from None
