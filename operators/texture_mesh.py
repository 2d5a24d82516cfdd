"""Texture the selected mesh objects from a prompt (one job per object)."""

import bpy
from bpy.props import StringProperty

from ..scene_io.mesh_export import object_to_glb
from .jobs import JobOperator, JobRequest


class DIFFUSION3D_OT_texture_mesh(JobOperator, bpy.types.Operator):
    """Paint a texture onto each selected mesh from the prompt (UVs are made when missing)"""

    bl_idname = "diffusion3d.texture_mesh"
    bl_label = "Texture Selected"
    bl_options = {'REGISTER', 'UNDO'}

    prompt: StringProperty(name="Prompt")
    model: StringProperty(name="Model", description="Empty = the task's default")

    @classmethod
    def poll(cls, context):
        if not any(o.type == 'MESH' for o in context.selected_objects):
            cls.poll_message_set("Select one or more mesh objects")
            return False
        return True

    def build_requests(self, context):
        prompt = (self.prompt if self.properties.is_property_set("prompt") else context.scene.diffusion3d.texture_prompt)
        if not prompt.strip():
            raise ValueError("type a prompt describing the texture first")
        requests_ = []
        for obj in context.selected_objects:
            if obj.type != 'MESH':
                continue
            glb, _ = object_to_glb(obj)
            params = {"prompt": prompt.strip()}
            requests_.append(JobRequest("texture", params, f"{obj.name}: {prompt.strip()}"[:60], self.model, {"mesh": glb}, obj.name))
        return requests_
