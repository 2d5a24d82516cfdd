"""Import a finished job's result again as a new object (nothing finished is ever lost).

The result is read from its kept file, or downloaded again when that is gone, and laid out
for Blender in a worker thread: a big result or a slow backend never freezes the window.
Background mode (batch scripts) reads it inline.
"""

import os
import threading

import bpy
from bpy.props import IntProperty

from ..formats.glb import GLBError, read_glb
from ..panels.preferences import backend_settings
from ..panels.redraw import tag_redraw
from ..service.client import BackendError
from ..service.session import connect
from . import modal_timers
from .jobs import Job, apply_result, fetch_result, find_job, prepare_arrays


def load_result(job: Job, settings) -> None:
    """Worker side: set `job.result` and `job.arrays` from the kept file, else the backend.
    Never raises: a failure is left in `job.error`."""
    try:
        if job.result_path and os.path.isfile(job.result_path):
            with open(job.result_path, "rb") as handle:
                result = read_glb(handle.read())
        else:
            fetch_result(job, connect(settings, start=True), settings)
            result = job.result
        job.arrays = prepare_arrays(result)  # an import is always a new object
        job.result = result
    except (BackendError, GLBError, OSError) as exc:
        job.error = f"Could not get the result: {exc}"
    except Exception as exc:  # a worker must never take Blender down; the text says what broke
        job.error = f"Could not get the result: unexpected error: {exc!r}"
    finally:
        job.importing = False
        job.version += 1


class DIFFUSION3D_OT_import_result(bpy.types.Operator):
    """Add this job's result to the scene as a new object"""

    bl_idname = "diffusion3d.import_result"
    bl_label = "Import Result"
    # No REGISTER: redoing it would import once more, from a worker the redo cannot wait for.
    bl_options = {'UNDO', 'INTERNAL'}

    key: IntProperty(name="Job")

    _timer = None
    _job = None

    def execute(self, context):
        job = find_job(self.key)
        if job is None or job.state != "succeeded":
            self.report({'ERROR'}, "This job has no result")
            return {'CANCELLED'}
        if job.importing:
            self.report({'WARNING'}, f"'{job.label}' is already being imported")
            return {'CANCELLED'}
        job.error, job.importing = "", True
        settings = backend_settings(context)
        if bpy.app.background or context.window is None:
            load_result(job, settings)
            return self._write(context, job)
        self._job = job
        threading.Thread(target=load_result, args=(job, settings), name=f"diffusion3d-import-{job.key}",
                         daemon=True).start()
        self._timer = modal_timers.add(context, 0.1)
        context.window_manager.modal_handler_add(self)
        tag_redraw(context)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER' or self._job.importing:
            return {'PASS_THROUGH'}
        modal_timers.remove(context, self._timer)
        return self._write(context, self._job)

    def cancel(self, context):
        """Blender ends the wait (another file is opened): the result stays for a later Import."""
        modal_timers.remove(context, self._timer)

    def _write(self, context, job: Job) -> set:
        if job.result is None:
            self.report({'ERROR'}, job.error or "Could not get the result")
            return {'CANCELLED'}
        if context.mode != 'OBJECT':  # a new object in Edit Mode on another: leave it first, as Blender's importers do
            bpy.ops.object.mode_set(mode='OBJECT')
        obj = apply_result(context, job, new_object=True)
        tag_redraw(context)
        if obj is None:
            self.report({'ERROR'}, job.error)
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported '{obj.name}'")
        return {'FINISHED'}
