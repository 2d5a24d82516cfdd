"""Import a finished job's result again as a new object (nothing finished is ever lost)."""

import os

import bpy
from bpy.props import IntProperty

from ..formats.glb import GLBError, read_glb
from ..panels.preferences import backend_settings
from ..service.client import BackendError
from ..service.session import connect
from .jobs import apply_result, fetch_result, find_job


class DIFFUSION3D_OT_import_result(bpy.types.Operator):
    """Add this job's result to the scene as a new object"""

    bl_idname = "diffusion3d.import_result"
    bl_label = "Import Result"
    bl_options = {'REGISTER', 'UNDO', 'INTERNAL'}

    key: IntProperty(name="Job")

    def execute(self, context):
        job = find_job(self.key)
        if job is None or job.state != "succeeded":
            self.report({'ERROR'}, "This job has no result")
            return {'CANCELLED'}
        try:
            if job.result_path and os.path.isfile(job.result_path):
                with open(job.result_path, "rb") as handle:
                    job.result = read_glb(handle.read())
            else:
                settings = backend_settings(context)
                fetch_result(job, connect(settings, start=True), settings)
        except (BackendError, GLBError, OSError) as exc:
            self.report({'ERROR'}, f"Could not get the result: {exc}")
            return {'CANCELLED'}
        job.error = ""
        if context.mode != 'OBJECT':  # a new object in Edit Mode on another: leave it first, as Blender's importers do
            bpy.ops.object.mode_set(mode='OBJECT')
        obj = apply_result(context, job, new_object=True)
        if obj is None:
            self.report({'ERROR'}, job.error)
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported '{obj.name}'")
        return {'FINISHED'}
