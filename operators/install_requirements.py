"""Create the backend's venv in the extension's user folder and pip-install its requirements."""

import os
import sys

import bpy

from ..panels.preferences import EXTENSION_DIR, managed_venv_dir, user_dir
from ..service.installer import INSTALLER
from . import modal_timers


class DIFFUSION3D_OT_install_requirements(bpy.types.Operator):
    """Install torch, diffusers and the rest into a Python environment of the backend's own (log below)"""

    bl_idname = "diffusion3d.install_requirements"
    bl_label = "Install Backend Requirements"

    _timer = None

    @classmethod
    def poll(cls, context):
        if INSTALLER.state == "RUNNING":
            cls.poll_message_set("Installing: the log below shows how far it got")
            return False
        return True

    def execute(self, context):
        if not bpy.app.online_access:
            where = "start Blender with --online-mode" if bpy.app.background else "Preferences › System › Network"
            self.report({'ERROR'}, f"Blender's online access is off: enable it ({where}) to install packages")
            return {'CANCELLED'}
        requirements = os.path.join(EXTENSION_DIR, "backend", "requirements.txt")
        INSTALLER.start(sys.executable, managed_venv_dir(), requirements, user_dir("logs", "install.log"))
        if bpy.app.background:
            INSTALLER._thread.join()
            return self._ended()
        self._timer = modal_timers.add(context, 0.5)
        context.window_manager.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if INSTALLER.state == "RUNNING":
            return {'PASS_THROUGH'}
        modal_timers.remove(context, self._timer)
        return self._ended()

    def cancel(self, context):
        modal_timers.remove(context, self._timer)

    def _ended(self) -> set:
        if INSTALLER.state == "DONE":
            self.report({'INFO'}, "Backend requirements installed")
            return {'FINISHED'}
        self.report({'ERROR'}, f"Installing failed: see {INSTALLER.log_path}")
        return {'CANCELLED'}
