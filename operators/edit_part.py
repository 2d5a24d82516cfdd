"""Regenerate the selected part of the active object (edit, complete, or mix in another object)."""

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..panels.properties import EDIT_MODES
from ..scene_io.mesh_export import object_to_glb
from .jobs import ActiveMeshOperator, JobRequest
from .write_guard import check_writable



class DIFFUSION3D_OT_edit_part(ActiveMeshOperator, bpy.types.Operator):
    """Regenerate the selected faces' part of the active mesh (in Edit Mode, the selected faces are the mask)"""

    bl_idname = "diffusion3d.edit_part"
    bl_label = "Edit Selected Part"
    bl_options = {'REGISTER', 'UNDO'}

    prompt: StringProperty(name="Prompt")
    mode: EnumProperty(name="Mode", items=EDIT_MODES, default='EDIT')
    take_from_b: StringProperty(name="Parts", description="Comma-separated part names of the other object (Mix)")
    model: StringProperty(name="Model", description="Empty = the task's default")
    seed: IntProperty(name="Seed", min=-1, default=-1, description="-1 = random; fix it to repeat an edit in a script")

    def build_requests(self, context):
        settings = context.scene.diffusion3d
        given = self.properties.is_property_set
        prompt = (self.prompt if given("prompt") else settings.edit_prompt).strip()
        mode = self.mode if given("mode") else settings.edit_mode
        take = self.take_from_b if given("take_from_b") else settings.take_from_b
        obj = context.active_object
        check_writable(obj)
        in_edit_mode = obj.mode == 'EDIT'
        if mode != 'MIX' and not in_edit_mode:  # the backend would refuse it without the faces' mask
            raise ValueError(f"{mode.title()} changes the selected part: select its faces in Edit Mode (Tab), "
                             "then press Edit Selected Part again")
        glb, mask = object_to_glb(obj, with_mask=in_edit_mode)
        if in_edit_mode and not any(mask):
            raise ValueError("select the faces of the part to change (Edit Mode, face selection)")
        params = {"mode": mode.lower()}
        if self.seed >= 0:
            params["seed"] = self.seed
        if prompt:
            params["prompt"] = prompt
        elif mode == 'EDIT':
            raise ValueError("type what the selected part should become")
        files = {"mesh": glb}
        if mask is not None:
            files["face_mask"] = mask
        if mode == 'MIX':
            others = [o for o in context.selected_objects if o is not obj and o.type == 'MESH']
            if len(others) != 1:
                raise ValueError("Mix needs exactly one other selected mesh object (the parts' source)")
            files["mesh_b"], _ = object_to_glb(others[0])
            names = [name.strip() for name in take.split(",") if name.strip()]
            if names:
                params["take_from_b"] = names
        label = f"{obj.name}: {prompt or mode.lower()}"[:60]
        return [JobRequest("edit_part", params, label, self.model, files, target=obj.name, target_uid=obj.session_uid)]
