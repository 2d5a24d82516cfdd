"""Where and when a result may be written: objects whose data would not keep it, and moments
when writing would pull the scene from under the artist's hands (main thread)."""

from __future__ import annotations

from typing import Optional

import bpy


def check_writable(obj: bpy.types.Object) -> None:
    """Refuse an object whose mesh a result could not keep: linked from a library file (a
    change would be lost on reload) or a library override's mesh.

    Raises:
        ValueError: naming the object and the fix.
    """
    linked = obj.library or obj.data.library
    if linked is not None:  # (the library file is in the Outliner; the status bar holds one short line)
        raise ValueError(f"'{obj.name}' is linked from a library, where a result would be lost: "
                         "Object > Relations > Make Local > Selected Objects and Data")
    if obj.data.override_library is not None:
        raise ValueError(f"the mesh of '{obj.name}' is a library override: make the mesh local first "
                         "(Object > Relations > Make Local > Selected Objects and Data)")


def write_blocked_by(context, job) -> str:
    """Why a finished result must wait before it is written ("" when it may be written now).

    Never under the artist's hands: not while another modal tool (a grab, a knife cut, a
    stroke) is running, whose own data a write would pull away; not in Edit, Sculpt or Paint
    Mode on another object (a new object made active there leaves Blender in a mode its active
    object is not in). A result for the very object in Edit Mode (an edit, a texture) is the one
    exception: it is written in Object Mode and the artist is brought back to Edit Mode.
    """
    busy = tool_running(context)
    if busy:
        return busy
    if context.mode == 'OBJECT':
        return ""
    request, obj = job.request, context.active_object
    if request and request.target and obj is not None and obj.mode == 'EDIT' and obj == find_target(context, request):
        return ""
    return "Ready: waits for Object Mode"


def tool_running(context) -> str:
    """The status "Ready: waits for <tool> to end" while another modal tool (a grab, a knife
    cut, a stroke; not our own job runs) is running in the window, else ""."""
    window = context.window
    busy = [op for op in (window.modal_operators if window else ())
            if not op.bl_idname.lower().startswith(("diffusion3d_ot_", "diffusion3d."))]
    return f"Ready: waits for {busy[0].name} to end" if busy else ""


def find_target(context, request) -> Optional[bpy.types.Object]:
    """The object a job's result is for (`JobRequest.target`): the one sent, even if renamed
    meanwhile; else, as an undo step gives objects new session ids, the one of its name."""
    if request.target_uid:
        found = next((o for o in bpy.data.objects if o.session_uid == request.target_uid), None)
        if found is not None:
            return found
    return context.scene.objects.get(request.target) or bpy.data.objects.get(request.target)
