"""Reshape the selected faces of the active mesh from a prompt; every other vertex stays put."""

import bpy
from bpy.props import BoolProperty, FloatProperty, IntProperty, StringProperty

from ..scene_io.apply_reshape import sent_vertex_ids
from ..scene_io.mesh_export import ExportError, object_to_glb
from ..scene_io.repaint_source import reads_an_image, selected_polygons
from ..scene_io.texture_export import mesh_fingerprint
from .jobs import ActiveMeshOperator, JobRequest, parse_extra_params
from .write_guard import check_writable

DEFAULT_MODEL = "reshape-sd"


class DIFFUSION3D_OT_reshape_selected(ActiveMeshOperator, bpy.types.Operator):
    """Reshape the selected faces of the active mesh into what the prompt says (score distillation); only they and a blended border move"""

    bl_idname = "diffusion3d.reshape_selected"
    bl_label = "Reshape Selected"
    bl_options = {'REGISTER', 'UNDO'}

    prompt: StringProperty(name="Prompt", description="What the selected faces should become")
    source_prompt: StringProperty(name="It Is Now", description="What the object is now (kept where the prompt "
                                                                 "does not ask for a change); empty: the panel's")
    model: StringProperty(name="Model", description=f"Empty = {DEFAULT_MODEL}")
    steps: IntProperty(name="Steps", min=0, default=0, description="Optimisation steps; 0 = the panel's")
    border: FloatProperty(name="Border", min=-1.0, max=25.0, default=-1.0, subtype='PERCENTAGE',
                          description="Blended band around the selection, percent of the object's size; -1 = the panel's")
    seed: IntProperty(name="Seed", min=-1, default=-1, description="-1 = random")
    repaint_after: BoolProperty(name="Repaint After", default=True,
                                description="When the faces' material shows an image, repaint the reshaped faces "
                                            "in it afterwards (Repaint Selected with the same prompt), so the "
                                            "texture fits the new shape")
    extra_params: StringProperty(name="Extra Parameters", description="JSON object of further model parameters (scripts)")

    def build_requests(self, context):
        settings = context.scene.diffusion3d
        given = self.properties.is_property_set
        prompt = (self.prompt if given("prompt") else settings.reshape_prompt).strip()
        if not prompt:
            raise ValueError("type what the selected faces should become")
        source = (self.source_prompt if given("source_prompt") else settings.reshape_source_prompt).strip()
        obj = context.active_object
        check_writable(obj)
        if obj.data.shape_keys is not None:
            raise ValueError(f"'{obj.name}' has shape keys, which keep their own copies of the positions: "
                             "apply or remove them first (Object Data > Shape Keys)")
        if obj.mode == 'EDIT':
            obj.update_from_editmode()
        try:
            glb, mask = object_to_glb(obj, with_mask=True, synced=True)
        except ExportError as exc:
            raise ValueError(str(exc)) from None
        if not any(mask):
            raise ValueError("select the faces to reshape (Edit Mode, face selection)")
        params = {"prompt": prompt, "num_inference_steps": self.steps or settings.reshape_steps,
                  "border_width": (self.border if self.border >= 0 else settings.reshape_border) / 100}
        if source:
            params["source_prompt"] = source
        if self.seed >= 0:
            params["seed"] = self.seed
        params.update(parse_extra_params(self.extra_params))
        label = f"{obj.name}: {prompt}"[:60]
        return [JobRequest("edit_part", params, label, self.model or DEFAULT_MODEL, {"mesh": glb, "face_mask": mask},
                           target=obj.name, target_uid=obj.session_uid, fingerprint=mesh_fingerprint(obj.data),
                           reshape_vertices=sent_vertex_ids(glb))]

    def after_written(self, context, job):
        """The reshaped faces' texture stretched with them: repaint it (a job of its own, its own
        undo step), when their material shows an image and the artist did not turn it off."""
        obj = bpy.data.objects.get(job.applied_to)
        if not self.repaint_after or obj is None or not reads_an_image(obj, selected_polygons(obj)):
            return
        with context.temp_override(active_object=obj, object=obj, selected_objects=[obj]):
            try:
                bpy.ops.diffusion3d.texture_mesh('EXEC_DEFAULT' if bpy.app.background else 'INVOKE_DEFAULT',
                                                 prompt=job.request.params["prompt"], selected_faces_only=True)
            except RuntimeError as exc:  # its own error is reported by it; the reshape stands
                self.report({'WARNING'}, f"The reshape is done; repainting it failed: {exc}")
