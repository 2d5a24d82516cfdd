"""Reload the model list and the backend's job history."""

import bpy

from ..panels import properties
from ..panels.preferences import backend_settings
from ..service.client import BackendError
from ..service.session import connect
from .jobs import JOBS, Job, add_job


def refresh_models(client) -> None:
    properties.MODELS[:] = client.models()


def refresh_history(client) -> int:
    """Add the backend's jobs (e.g. from before a restart) to the list; returns how many.

    A past job already listed takes the backend's newer state (one that was running when
    listed has finished since); this session's own jobs are left to their workers.
    """
    known = {job.backend_id: job for job in JOBS if job.backend_id}
    added = 0
    for record in reversed(client.jobs(limit=20)):
        listed = known.get(record.get("id"))
        if listed is not None:
            if listed.request is None:
                listed.update(record)
            continue
        params = record.get("params") or {}
        label = params.get("prompt") or params.get("mode") or record.get("task", "job")  # a mix has no prompt
        job = Job(None, label=str(label)[:48])
        job.task = record.get("task", "")
        job.update(record)
        add_job(job)
        added += 1
    return added


class DIFFUSION3D_OT_refresh(bpy.types.Operator):
    """Reload the model list and past jobs from the backend"""

    bl_idname = "diffusion3d.refresh"
    bl_label = "Refresh"

    def execute(self, context):
        try:
            client = connect(backend_settings(context), start=False)
            client.timeout = min(client.timeout, 5.0)  # on the main thread: keep the UI responsive
            refresh_models(client)
            added = refresh_history(client)
        except BackendError as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        self.report({'INFO'}, f"{len(properties.MODELS)} models, {added} past jobs")
        return {'FINISHED'}
