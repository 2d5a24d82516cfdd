"""Operators: one module per user action; jobs.py drives backend jobs."""

import bpy

from ..service.installer import INSTALLER
from . import (
    backend_control,
    cancel_job,
    continue_job,
    edit_part,
    generate_mesh,
    import_result,
    install_requirements,
    jobs,
    refine_selected,
    refresh,
    reshape_selected,
    texture_mesh,
    use_candidate,
)

classes = (
    generate_mesh.DIFFUSION3D_OT_generate_mesh,
    use_candidate.DIFFUSION3D_OT_use_candidate,
    edit_part.DIFFUSION3D_OT_edit_part,
    reshape_selected.DIFFUSION3D_OT_reshape_selected,
    refine_selected.DIFFUSION3D_OT_refine_selected,
    texture_mesh.DIFFUSION3D_OT_texture_mesh,
    cancel_job.DIFFUSION3D_OT_cancel_job,
    continue_job.DIFFUSION3D_OT_continue_job,
    cancel_job.DIFFUSION3D_OT_clear_finished,
    cancel_job.DIFFUSION3D_OT_use_seed,
    cancel_job.DIFFUSION3D_OT_copy_error,
    import_result.DIFFUSION3D_OT_import_result,
    import_result.DIFFUSION3D_OT_import_current_state,
    backend_control.DIFFUSION3D_OT_start_backend,
    backend_control.DIFFUSION3D_OT_stop_backend,
    refresh.DIFFUSION3D_OT_refresh,
    install_requirements.DIFFUSION3D_OT_install_requirements,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    jobs.stop_all()
    INSTALLER.cancel()  # a pip install still running would go on writing into the venv
    if bpy.app.timers.is_registered(backend_control._redraw_while_starting):
        bpy.app.timers.unregister(backend_control._redraw_while_starting)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
