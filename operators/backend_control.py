"""Start and stop the local backend from the sidebar (also used by background scripts)."""

import threading

import bpy

from ..panels.preferences import backend_settings
from ..service.client import BackendError
from ..service.session import LOCAL, BackendSettings, connect, needs_restart
from . import jobs
from .refresh import refresh_history, refresh_models

# Last start attempt made from the UI, shown by the Backend panel.
STARTUP = {"running": False, "error": ""}


def _start(settings: BackendSettings) -> str:
    """Start (or reach) the backend, load its models and list its past jobs (e.g. from before
    Blender was closed: their results can be imported again); returns a one-line summary."""
    client = connect(settings, start=True)
    health = client.health()
    refresh_models(client)
    past = refresh_history(client)
    return f"backend ready at {client.url} (device {health.get('device', '?')}; {past} past jobs listed)"


def _start_in_thread(settings: BackendSettings) -> None:
    try:
        _start(settings)
    except BackendError as exc:
        STARTUP["error"] = str(exc)
    except Exception as exc:  # a thread must not die silently
        STARTUP["error"] = f"unexpected error starting the backend: {exc!r}"
    STARTUP["running"] = False


def _redraw_while_starting():
    jobs.tag_redraw(bpy.context)
    return 0.5 if STARTUP["running"] else None


class DIFFUSION3D_OT_start_backend(bpy.types.Operator):
    """Start the local backend (or check the remote one) and load its model list. A local backend
    started with other preferences (device, threads, downloads, interpreter) is restarted"""

    bl_idname = "diffusion3d.start_backend"
    bl_label = "Start Backend"

    @classmethod
    def poll(cls, context):
        if STARTUP["running"]:
            cls.poll_message_set("The backend is starting")
            return False
        return True

    def execute(self, context):
        settings = backend_settings(context)
        STARTUP["error"] = ""
        if needs_restart(settings):
            running = sum(job.active for job in jobs.JOBS)
            if running:
                self.report({'ERROR'}, f"{running} job(s) still running on the backend: restart it when they "
                                       "finish or after cancelling them")
                return {'CANCELLED'}
            LOCAL.stop()  # it starts again below with the new preferences
        if bpy.app.background or context.window is None:  # scripts: block until ready (bounded by the timeout)
            try:
                message = _start(settings)
            except BackendError as exc:
                self.report({'ERROR'}, str(exc))
                return {'CANCELLED'}
            self.report({'INFO'}, message)
            return {'FINISHED'}
        # In the UI the health check runs in a thread: the interface never waits for it.
        STARTUP["running"] = True
        threading.Thread(target=_start_in_thread, args=(settings,), name="diffusion3d-start", daemon=True).start()
        bpy.app.timers.register(_redraw_while_starting, first_interval=0.5)
        return {'FINISHED'}


class DIFFUSION3D_OT_stop_backend(bpy.types.Operator):
    """Stop the local backend (frees its memory; finished results stay in its cache)"""

    bl_idname = "diffusion3d.stop_backend"
    bl_label = "Stop Backend"

    def invoke(self, context, event):
        running = sum(job.active for job in jobs.JOBS)
        if running:  # a click would fail them: ask first
            return context.window_manager.invoke_confirm(self, event, title=f"Stop the backend? {running} running job(s) will fail")
        return self.execute(context)

    def execute(self, context):  # always available to scripts: stopping a stopped backend is a no-op
        was_running = LOCAL.is_running()
        LOCAL.stop()
        self.report({'INFO'}, "Backend stopped" if was_running else "The backend was not running")
        return {'FINISHED'}
