"""Job list actions: cancel a running job (the backend stops it within one step), clear the
finished ones, take a finished job's seed, copy a job's error."""

import bpy
from bpy.props import BoolProperty, IntProperty

from ..panels import previews
from ..panels.preferences import backend_settings
from ..service.client import BackendError
from ..service.session import connect
from .jobs import JOBS, find_job


class DIFFUSION3D_OT_cancel_job(bpy.types.Operator):
    """Cancel this job"""

    bl_idname = "diffusion3d.cancel_job"
    bl_label = "Cancel Job"
    bl_options = {'INTERNAL'}

    key: IntProperty(name="Job", description="Job number in the list; 0 = every running job", default=0)

    def execute(self, context):
        jobs = [find_job(self.key)] if self.key else [job for job in JOBS if job.active]
        jobs = [job for job in jobs if job is not None and job.active]
        if not jobs:
            self.report({'WARNING'}, "No running job to cancel")
            return {'CANCELLED'}
        for job in jobs:
            job.cancel_requested = True  # a job's worker sends DELETE /jobs/{id} on its next poll
            job.message = "cancelling…"
            job.version += 1
            if job.request is None and job.backend_id:  # listed from history: no worker polls it
                try:
                    job.update(connect(backend_settings(context), start=False).cancel(job.backend_id))
                except BackendError as exc:
                    self.report({'ERROR'}, str(exc))
                    return {'CANCELLED'}
        return {'FINISHED'}


class DIFFUSION3D_OT_clear_finished(bpy.types.Operator):
    """Remove finished, failed and cancelled jobs from the list (their results stay in the backend's cache and the
    extension's user folder)"""

    bl_idname = "diffusion3d.clear_finished"
    bl_label = "Clear Finished"
    bl_options = {'INTERNAL'}

    def execute(self, context):
        kept = [job for job in JOBS if job.in_progress]
        removed = len(JOBS) - len(kept)
        for job in JOBS:
            if not job.in_progress:
                previews.forget(job.key)  # their icons go with them
        JOBS[:] = kept
        self.report({'INFO'}, f"Cleared {removed} job(s) from the list")
        return {'FINISHED'}


class DIFFUSION3D_OT_use_seed(bpy.types.Operator):
    """Use this job's seed again: the same prompt and settings make the same result"""

    bl_idname = "diffusion3d.use_seed"
    bl_label = "Use Seed"
    bl_options = {'INTERNAL', 'UNDO'}

    seed: IntProperty(name="Seed", min=0)
    texture: BoolProperty(name="Texture", description="Fix it for Texture Selected, not Generate", default=False)

    def execute(self, context):
        settings = context.scene.diffusion3d
        if self.texture:
            settings.texture_seed, settings.texture_random_seed = self.seed, False
        else:
            settings.seed, settings.random_seed = self.seed, False
        self.report({'INFO'}, f"Seed {self.seed} fixed for {'Texture Selected' if self.texture else 'Generate'}")
        return {'FINISHED'}


class DIFFUSION3D_OT_copy_error(bpy.types.Operator):
    """Copy this job's whole error text (the panel shows its start), e.g. the command that downloads a model"""

    bl_idname = "diffusion3d.copy_error"
    bl_label = "Copy Error"
    bl_options = {'INTERNAL'}

    key: IntProperty(name="Job")

    def execute(self, context):
        job = find_job(self.key)
        if job is None or not job.error:
            return {'CANCELLED'}
        context.window_manager.clipboard = job.error
        self.report({'INFO'}, "Error copied")
        return {'FINISHED'}
