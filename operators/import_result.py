"""Import a finished job's result again (nothing finished is ever lost): a texture onto its
object when that mesh is unchanged since it was sent (the write failed, or was undone), else
as a new object (a texture's where its object was).

The result is read from its kept file, or downloaded again when that is gone, and laid out
for Blender in a worker thread: a big result or a slow backend never freezes the window. The
worker keeps what it loads to itself; the main thread hands it to the job only to write it.
Background mode (batch scripts) loads it inline.
"""

import os
import threading
from dataclasses import dataclass
from typing import Optional

import bpy
from bpy.props import IntProperty

from ..formats.blender_layout import MeshArrays
from ..formats.glb import GLBError, GLBScene, read_glb
from ..panels.preferences import backend_settings
from ..panels.redraw import tag_redraw
from ..scene_io.apply_repaint import repaint_shown
from ..scene_io.texture_export import unchanged_since
from ..service.client import BackendError
from ..service.session import connect
from . import modal_timers
from ..panels.preferences import get_prefs
from ..scene_io.write_back import new_object
from .jobs import Job, apply_result, download_result, find_job, keep_download, prepare_arrays
from .write_guard import check_writable, find_target, tool_running


CURRENT_STATE_WAIT_S = 330.0  # the backend waits up to 300 s for a running job's next step


@dataclass
class Loaded:
    """What `load_result` found: the result laid out for Blender, or why not."""

    result: Optional[GLBScene] = None
    arrays: Optional[MeshArrays] = None
    error: str = ""


def load_result(job: Job, settings, into: Loaded) -> None:
    """Worker side: fill `into` from the job's kept file, else from the backend. Never raises."""
    try:
        if job.result_path and os.path.isfile(job.result_path):
            with open(job.result_path, "rb") as handle:
                result = read_glb(handle.read())
        else:
            result = download_result(job, connect(settings, start=True), settings)
        into.arrays = prepare_arrays(result)  # for a new object (a texture onto its object needs none)
        into.result = result
    except (BackendError, GLBError, OSError) as exc:
        into.error = f"Could not get the result: {exc}"
    except Exception as exc:  # a worker must never take Blender down; the text says what broke
        into.error = f"Could not get the result: unexpected error: {exc!r}"


class ImportFlow:
    """What both imports share: load off the main thread (inline in background mode), wait
    until no tool is running, then write. Subclasses say when a job can be imported
    (`_refusal`), how its GLB is loaded (`_load`, a worker: never raises) and written (`_write`)."""

    key: IntProperty(name="Job")

    _timer = None
    _job = None
    _loaded = None
    _thread = None

    def _refusal(self, job: Optional[Job]) -> str:
        raise NotImplementedError

    def _load(self, job: Job, settings, into: Loaded) -> None:
        raise NotImplementedError

    def execute(self, context):
        job = find_job(self.key)
        refusal = self._refusal(job)
        if refusal:
            self.report({'ERROR'}, refusal)
            return {'CANCELLED'}
        if job.importing:  # one import at a time
            self.report({'ERROR'}, f"'{job.label}' is being imported already")
            return {'CANCELLED'}
        job.error, loaded = "", Loaded()
        settings = backend_settings(context)
        if bpy.app.background or context.window is None:
            self._load(job, settings, loaded)
            return self._write(context, job, loaded)
        self._job, self._loaded, job.importing = job, loaded, True
        self._thread = threading.Thread(target=self._load, args=(job, settings, loaded),
                                        name=f"diffusion3d-import-{job.key}", daemon=True)
        self._thread.start()
        self._timer = modal_timers.add(context, 0.1)
        context.window_manager.modal_handler_add(self)
        tag_redraw(context)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER' or self._thread.is_alive():
            return {'PASS_THROUGH'}
        busy = tool_running(context)  # never under the artist's hands (a grab, a stroke)
        if self._job.set_waiting(busy):
            tag_redraw(context)
        if busy:
            return {'PASS_THROUGH'}
        modal_timers.remove(context, self._timer)
        self._job.importing = False
        return self._write(context, self._job, self._loaded)

    def cancel(self, context):
        """Blender ends the wait (another file is opened): the file stays for a later Import."""
        modal_timers.remove(context, self._timer)
        self._job.importing, self._job.waiting = False, ""

    def _loaded_or_report(self, context, job: Job, loaded: Loaded) -> bool:
        """Whether `loaded` holds a result in Object Mode; else reports why (False)."""
        tag_redraw(context)
        if loaded.result is None:
            job.error = loaded.error or "Could not get the result"
            job.version += 1
            self.report({'ERROR'}, job.error)
            return False
        if context.mode != 'OBJECT':  # a new object in Edit Mode on another: leave it first, as Blender's importers do
            try:
                bpy.ops.object.mode_set(mode='OBJECT')
            except RuntimeError as exc:
                self.report({'ERROR'}, f"Could not leave {context.mode} to import: {exc}")
                return False
        return True


class DIFFUSION3D_OT_import_result(ImportFlow, bpy.types.Operator):
    """Bring this job's result into the scene again: a texture onto its object if that mesh is unchanged, else a new object"""

    bl_idname = "diffusion3d.import_result"
    bl_label = "Import Result"
    # No REGISTER: redoing it would import once more, from a worker the redo cannot wait for.
    bl_options = {'UNDO', 'INTERNAL'}

    def _refusal(self, job: Optional[Job]) -> str:
        if job is None or job.state != "succeeded":
            return "This job has no result"
        if job.in_progress:  # its own run writes it
            return f"'{job.label}' is still being written; import it when it is done"
        return ""

    def _load(self, job: Job, settings, into: Loaded) -> None:
        load_result(job, settings, into)

    def _write(self, context, job: Job, loaded: Loaded) -> set:
        if not self._loaded_or_report(context, job, loaded):
            return {'CANCELLED'}
        job.result, job.arrays = loaded.result, loaded.arrays
        onto_target = _texture_target(context, job) is not None
        obj = apply_result(context, job, new_object=not onto_target)
        if obj is None:
            self.report({'ERROR'}, job.error)
            return {'CANCELLED'}
        self.report({'INFO'}, f"Textured '{obj.name}' again" if onto_target else f"Imported '{obj.name}'")
        return {'FINISHED'}


def _texture_target(context, job: Job) -> Optional[bpy.types.Object]:
    """The object a texture job was painted for, when the texture is not on it (the write
    failed, or was undone), its mesh is unchanged and it may be written."""
    if job.task != "texture" or job.request is None:
        return None
    obj = find_target(context, job.request)
    if obj is None:
        return None
    if job.request.repaint and job.request.repaint.get("node"):
        there = repaint_shown(job.request.repaint)  # the node shows the result (not the image sent)
    else:
        there = any(m is not None and m.name == job.texture_material for m in obj.data.materials)
    if not job.write_failed and there:
        return None  # it is there: Import adds a copy, as for any result
    try:
        check_writable(obj)
    except ValueError:
        return None
    return obj if unchanged_since(obj, job.request.fingerprint) else None  # last: it hashes the whole mesh


def load_current_state(job: Job, settings, into: Loaded) -> None:
    """Worker side: ask the backend where the job stands (a running job makes it at its next
    step, so this may wait for one), keep a copy, parse it. Never raises."""
    try:
        client = connect(settings, start=False)
        data = client.current_state(job.backend_id, timeout=max(settings.request_timeout, CURRENT_STATE_WAIT_S))
        keep_download(settings, "results", f"{job.backend_id}-current.glb", data)
        result = read_glb(data)
        into.arrays = prepare_arrays(result)
        into.result = result
    except (BackendError, GLBError, OSError) as exc:
        into.error = f"Could not get the current state: {exc}"
    except Exception as exc:  # a worker must never take Blender down
        into.error = f"Could not get the current state: unexpected error: {exc!r}"


class DIFFUSION3D_OT_import_current_state(ImportFlow, bpy.types.Operator):
    """Bring where this long job stands now (running, or where it was cancelled) into the scene as a new object; the job goes on"""

    bl_idname = "diffusion3d.import_current_state"
    bl_label = "Import Current State"
    bl_options = {'UNDO', 'INTERNAL'}

    def _refusal(self, job: Optional[Job]) -> str:
        if job is None or not job.backend_id or not job.has_current_state:
            return "This job has no current state to import (only long optimisations offer one)"
        return ""

    def _load(self, job: Job, settings, into: Loaded) -> None:
        load_current_state(job, settings, into)

    def _write(self, context, job: Job, loaded: Loaded) -> set:
        if not self._loaded_or_report(context, job, loaded):
            return {'CANCELLED'}
        reached = loaded.result.metadata.get("current_state", {})
        name = f"{job.label} (step {reached.get('step', '?')} of {reached.get('total', '?')})"[:63]
        storage = getattr(get_prefs(context), "texture_storage", 'PACK')
        try:  # a new object, never the job's own target: the finished result still goes there
            obj = new_object(context, name, loaded.result, storage, loaded.arrays)
        except Exception as exc:
            self.report({'ERROR'}, f"Could not write the current state into the scene: {exc}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"Imported '{obj.name}'")
        return {'FINISHED'}
