"""Texture the selected mesh objects from a prompt (one job per mesh: linked duplicates share it)."""


import os

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..panels.properties import PATH_OPTIONS
from ..scene_io.mesh_export import ExportError
from ..scene_io.reference_camera import REFERENCE_VIEWS, image_size, reference_camera
from ..scene_io.repaint_source import repaint_source, selected_polygons
from ..scene_io.texture_export import texture_upload
from .jobs import JobOperator, JobRequest, parse_extra_params, sampling_params
from .write_guard import check_writable


class DIFFUSION3D_OT_texture_mesh(JobOperator, bpy.types.Operator):
    """Paint a texture onto each selected mesh from the prompt: a new material in a new slot (and a UV map if it has none), the mesh kept. With Selected Faces Only, repaint just the selected faces in their own texture"""

    bl_idname = "diffusion3d.texture_mesh"
    bl_label = "Texture Selected"
    bl_options = {'REGISTER', 'UNDO'}

    prompt: StringProperty(name="Prompt")
    model: StringProperty(name="Model", description="Empty = the task's default")
    texture_size: IntProperty(name="Texture Size", min=0, max=4096, default=0,
                              description="Texels per side (1024-4096); 0 = the panel's size")
    seed: IntProperty(name="Seed", min=-1, default=-1, description="-1 = the panel's seed (random unless fixed there)")
    negative_prompt: StringProperty(name="Avoid", description="What the texture should not show")
    steps: IntProperty(name="Steps", min=0, default=0, description="Denoising steps per view; 0 = the panel's")
    guidance: FloatProperty(name="Guidance", min=-1.0, default=-1.0, description="-1 = the panel's")
    extra_params: StringProperty(name="Extra Parameters",
                                 description="JSON object of further model parameters (scripts)")
    reference_image: StringProperty(name="Reference Image", subtype='FILE_PATH', options=PATH_OPTIONS,
                                    description="Image projected first, from the camera or view below")
    reference_view: EnumProperty(name="Taken From", items=REFERENCE_VIEWS, default='CAMERA')
    selected_faces_only: BoolProperty(
        name="Selected Faces Only", default=False,
        description="Repaint only the selected faces in their texture (a band around them blends in); "
                    "every other texel, the mesh, its UVs and materials stay as they are")
    border: FloatProperty(name="Border", min=-1.0, max=25.0, default=-1.0, subtype='PERCENTAGE',
                          description="Repaint's blended band in percent of the object's size; -1 = the panel's")

    @classmethod
    def poll(cls, context):
        if not any(o.type == 'MESH' for o in context.selected_objects):
            cls.poll_message_set("Select one or more mesh objects")
            return False
        return True

    def build_requests(self, context):
        given = self.properties.is_property_set
        settings = context.scene.diffusion3d
        prompt = self.prompt if given("prompt") else settings.texture_prompt
        model = self.model if given("model") else ("" if settings.texture_model == 'DEFAULT' else settings.texture_model)
        reference, view, size = self._reference(context)
        repaint = self.selected_faces_only
        if repaint and reference and given("reference_image"):
            raise ValueError("Repaint Selected paints from the prompt alone: leave out the reference image")
        reference = b"" if repaint else reference  # the panel's reference serves Texture Selected only
        if not prompt.strip() and not reference:
            raise ValueError("type a prompt describing the texture first" + ("" if repaint else " (or pick a reference image)"))
        texture_size = self.texture_size or int(settings.texture_size)
        if not 1024 <= texture_size <= 4096:
            raise ValueError(f"texture_size must be from 1024 to 4096 texels, got {texture_size}")
        negative = self.negative_prompt if given("negative_prompt") else settings.texture_negative_prompt
        params = {"prompt": prompt.strip(), "texture_size": texture_size}
        if settings.texture_views:
            params["num_views"] = settings.texture_views
        params["fill_views"] = settings.texture_fill_views
        if negative.strip():
            params["negative_prompt"] = negative.strip()
        if self.seed >= 0:
            params["seed"] = self.seed
        elif not settings.texture_random_seed:
            params["seed"] = settings.texture_seed
        params.update(sampling_params(self, settings.texture_custom_sampling, settings.texture_steps,
                                      settings.texture_guidance))
        if repaint:
            params["border_width"] = (self.border if self.border >= 0 else settings.repaint_border) / 100
        params.update(parse_extra_params(self.extra_params))
        targets = self._targets(context)
        for obj in targets:  # all checked before any job is sent
            check_writable(obj)
        requests_, skipped = [], []
        for obj in targets:
            try:
                source = repaint_source(obj, selected_polygons(obj)) if repaint else None
                # Loop triangles in order: the result maps back onto these loops.
                upload = texture_upload(context, obj, uv_name=source.uv_name if source else "", with_mask=repaint)
            except ExportError as exc:
                skipped.append(f"'{obj.name}': {exc}")
                self.report({'WARNING'}, f"Skipped {skipped[-1]}")
                continue
            if upload.note:  # now, and again with the result in the job list
                self.report({'WARNING'}, upload.note)
            files, object_params = {"mesh": upload.glb}, dict(params)
            if source is not None:
                files["face_mask"] = upload.face_mask
                if source.png:
                    files["texture"] = source.png
                else:
                    object_params["base_color"] = source.base_color
            if reference:
                files["image"] = reference
                object_params["reference_camera"] = reference_camera(context, obj, view, *size)
            label = f"{obj.name}: {prompt.strip() or 'from the reference image'}"[:60]
            requests_.append(JobRequest("texture", object_params, label, model, files, target=obj.name,
                                        target_uid=obj.session_uid, fingerprint=upload.fingerprint,
                                        location=tuple(obj.matrix_world.translation), note=upload.note,
                                        repaint=source.as_target() if source else None))
        if not requests_:
            raise ValueError(f"none of the selected meshes can be textured: {'; '.join(skipped)}")
        return requests_

    def _targets(self, context) -> list[bpy.types.Object]:
        """The selected meshes, one per mesh datablock (the active object first): objects that
        share a mesh share its UVs and materials, so one texture serves them all."""
        selected = sorted(context.selected_objects, key=lambda o: o != context.active_object)
        skipped = sorted(o.name for o in selected if o.type != 'MESH')
        if skipped:
            self.report({'WARNING'}, f"Skipped {', '.join(repr(n) for n in skipped)}: only meshes are textured "
                                     "(a curve or text: Object > Convert > Mesh first)")
        by_mesh: dict[bpy.types.Mesh, list[bpy.types.Object]] = {}
        for obj in selected:
            if obj.type == 'MESH':
                by_mesh.setdefault(obj.data, []).append(obj)
        for first, *others in by_mesh.values():
            if others:
                names = ", ".join(repr(o.name) for o in others)
                self.report({'INFO'}, f"{names} share{'s' if len(others) == 1 else ''} a mesh with "
                                      f"'{first.name}': one texture serves them all")
        return [objects[0] for objects in by_mesh.values()]

    def _reference(self, context) -> tuple[bytes, str, tuple[int, int]]:
        """The reference image's bytes (b"" when none is set), which camera took it, and its size."""
        given = self.properties.is_property_set
        settings = context.scene.diffusion3d
        path = self.reference_image if given("reference_image") else settings.texture_reference
        view = self.reference_view if given("reference_view") else settings.texture_reference_view
        if not path:
            return b"", view, (0, 0)
        path = bpy.path.abspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"the reference image {path} does not exist")
        with open(path, "rb") as handle:
            return handle.read(), view, image_size(path)
