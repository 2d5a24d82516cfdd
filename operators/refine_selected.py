"""Refine the active object (a draft: a built-in or Shap-E result, a distilled one, a blockout)
with Magic3D's fine stage; the refined copy appears where the draft is."""

import bpy
import numpy as np
from bpy.props import IntProperty, StringProperty

from ..scene_io.mesh_export import ExportError, object_to_glb
from ..scene_io.write_back import read_metadata
from .jobs import ActiveMeshOperator, JobRequest, parse_extra_params

DEFAULT_MODEL = "magic3d-sd"


class DIFFUSION3D_OT_refine_selected(ActiveMeshOperator, bpy.types.Operator):
    """Refine the active mesh with Magic3D's fine stage (score distillation on a textured mesh): a detailed, textured copy appears over it"""

    bl_idname = "diffusion3d.refine_selected"
    bl_label = "Refine Selected"
    bl_options = {'REGISTER', 'UNDO'}

    prompt: StringProperty(name="Prompt", description="What the object is; empty: the panel's prompt, "
                                                      "else the prompt it was generated from")
    model: StringProperty(name="Model", description=f"Empty = {DEFAULT_MODEL}")
    steps: IntProperty(name="Steps", min=0, default=0, description="Fine-stage steps; 0 = the model's")
    seed: IntProperty(name="Seed", min=-1, default=-1, description="-1 = random")
    extra_params: StringProperty(name="Extra Parameters", description="JSON object of further model parameters (scripts)")

    poll_message = "Select the mesh to refine"

    def build_requests(self, context):
        obj = context.active_object
        given = self.properties.is_property_set
        prompt = (self.prompt if given("prompt") else context.scene.diffusion3d.prompt).strip()
        prompt = prompt or str(read_metadata(obj).get("prompt") or "").strip()
        if not prompt:
            raise ValueError(f"type what '{obj.name}' is (the prompt), so the refinement knows what to make of it")
        if obj.mode == 'EDIT':
            obj.update_from_editmode()
        co = np.empty(len(obj.data.vertices) * 3, np.float32)
        obj.data.vertices.foreach_get("co", co)
        world = np.asarray(obj.matrix_world, np.float32)
        placed = co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]  # the draft where it stands
        try:
            glb, _ = object_to_glb(obj, positions=placed, synced=True)
        except ExportError as exc:
            raise ValueError(str(exc)) from None
        params = {"prompt": prompt, "num_inference_steps": 0}  # no coarse stage: the draft is the shape
        if self.steps:
            params["fine_steps"] = self.steps
        if self.seed >= 0:
            params["seed"] = self.seed
        params.update(parse_extra_params(self.extra_params))
        label = f"{obj.name} refined"[:60]
        return [JobRequest("text_to_3d", params, label, self.model or DEFAULT_MODEL, {"mesh": glb},
                           location=(0.0, 0.0, 0.0))]  # its vertices are placed already
