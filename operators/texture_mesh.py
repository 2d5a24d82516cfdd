"""Texture the selected mesh objects from a prompt (one job per object)."""


import bpy
from bpy.props import IntProperty, StringProperty

from ..scene_io.mesh_export import object_to_glb
from .jobs import JobOperator, JobRequest, parse_extra_params


class DIFFUSION3D_OT_texture_mesh(JobOperator, bpy.types.Operator):
    """Paint a texture onto each selected mesh from the prompt: a new UV map and material, the mesh kept"""

    bl_idname = "diffusion3d.texture_mesh"
    bl_label = "Texture Selected"
    bl_options = {'REGISTER', 'UNDO'}

    prompt: StringProperty(name="Prompt")
    model: StringProperty(name="Model", description="Empty = the task's default")
    texture_size: IntProperty(name="Texture Size", min=0, max=4096, default=0,
                              description="Texels per side (1024-4096); 0 = the model's default")
    seed: IntProperty(name="Seed", min=-1, default=-1, description="-1 = random")
    extra_params: StringProperty(name="Extra Parameters",
                                 description="JSON object of further model parameters (scripts)")

    @classmethod
    def poll(cls, context):
        if not any(o.type == 'MESH' for o in context.selected_objects):
            cls.poll_message_set("Select one or more mesh objects")
            return False
        return True

    def build_requests(self, context):
        given = self.properties.is_property_set("prompt")
        prompt = self.prompt if given else context.scene.diffusion3d.texture_prompt
        if not prompt.strip():
            raise ValueError("type a prompt describing the texture first")
        params = {"prompt": prompt.strip()}
        if self.texture_size:
            params["texture_size"] = self.texture_size
        if self.seed >= 0:
            params["seed"] = self.seed
        params.update(parse_extra_params(self.extra_params))
        requests_ = []
        for obj in context.selected_objects:
            if obj.type != 'MESH':
                continue
            glb, _ = object_to_glb(obj)  # loop triangles in order: the result maps back onto these loops
            label = f"{obj.name}: {prompt.strip()}"[:60]
            requests_.append(JobRequest("texture", dict(params), label, self.model, {"mesh": glb}, target=obj.name))
        return requests_
