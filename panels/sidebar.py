"""View3D › Sidebar › Diffusion 3D."""

import bpy

# Modules, not names: operators and panels import each other (attributes are read at draw time).
from ..operators import backend_control, jobs
from ..service.session import LOCAL, needs_restart, status_text
from .preferences import backend_settings
from .properties import sampling_defaults, task_for

JOBS_SHOWN = 10  # job boxes in the sidebar before the rest are summed up


class Diffusion3DPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Diffusion 3D"


class VIEW3D_PT_diffusion3d_backend(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Backend"

    def draw(self, context):
        layout = self.layout
        settings = backend_settings(context)
        running = settings.mode == 'REMOTE' or LOCAL.is_running()
        died = LOCAL.died() if settings.mode == 'LOCAL' else None
        layout.label(text=status_text(settings), icon='CHECKMARK' if running else ('ERROR' if died else 'DOT'))
        row = layout.row(align=True)
        if settings.mode == 'LOCAL':
            restart = died or needs_restart(settings)
            row.operator("diffusion3d.start_backend", text="Restart" if restart else "Start", icon='PLAY')
            row.operator("diffusion3d.stop_backend", text="Stop", icon='PAUSE')
        else:
            row.operator("diffusion3d.start_backend", text="Connect", icon='URL')
        row.operator("diffusion3d.refresh", text="", icon='FILE_REFRESH')
        startup = backend_control.STARTUP
        if startup["running"]:
            layout.label(text="Starting the backend…", icon='TIME')
        elif startup["error"]:
            draw_error(layout.box(), startup["error"])


class VIEW3D_PT_diffusion3d_generate(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Generate"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "prompt", text="")
        layout.prop(settings, "image")
        layout.prop(settings, "model")
        row = layout.row(align=True)
        row.prop(settings, "random_seed", text="", icon='FILE_REFRESH')
        sub = row.row(align=True)
        sub.enabled = not settings.random_seed
        sub.prop(settings, "seed")
        layout.prop(settings, "custom_sampling")
        if settings.custom_sampling:
            col = layout.column(align=True)
            col.prop(settings, "steps")
            col.prop(settings, "guidance")
        else:
            steps, guidance = sampling_defaults(settings)
            if steps is not None:
                text = f"{steps} steps" + (f", guidance {guidance:g}" if guidance is not None else "")
                layout.label(text=f"Model's own: {text}")
        text = "Generate from Image" if task_for(settings) == 'image_to_3d' else "Generate"
        layout.operator("diffusion3d.generate_mesh", text=text, icon='MESH_MONKEY')


class VIEW3D_PT_diffusion3d_edit(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Edit Selected Part"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "edit_mode", expand=True)
        layout.prop(settings, "edit_prompt", text="")
        if settings.edit_mode == 'MIX':
            layout.prop(settings, "take_from_b")
        obj = context.active_object
        if obj is not None and obj.type == 'MESH' and obj.mode != 'EDIT':
            layout.label(text="Tip: in Edit Mode the selected faces are the part", icon='INFO')
        layout.operator("diffusion3d.edit_part", icon='SCULPTMODE_HLT')


class VIEW3D_PT_diffusion3d_texture(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Texture Selected"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "texture_prompt", text="")
        layout.prop(settings, "texture_negative_prompt")
        layout.prop(settings, "texture_model")
        row = layout.row(align=True)
        row.prop(settings, "texture_size", text="")
        row.prop(settings, "texture_views")
        row = layout.row(align=True)
        row.prop(settings, "texture_random_seed", text="", icon='FILE_REFRESH')
        sub = row.row(align=True)
        sub.enabled = not settings.texture_random_seed
        sub.prop(settings, "texture_seed")
        layout.prop(settings, "texture_reference")
        if settings.texture_reference:
            layout.prop(settings, "texture_reference_view")
        layout.operator("diffusion3d.texture_mesh", icon='TEXTURE')


class VIEW3D_PT_diffusion3d_jobs(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Jobs"

    def draw(self, context):
        layout = self.layout
        if not jobs.JOBS:
            layout.label(text="No jobs yet")
            return
        # Jobs in progress first, the running one on top (JOBS is newest first), then the latest others.
        waiting = [job for job in reversed(jobs.JOBS) if job.in_progress]
        others = [job for job in jobs.JOBS if not job.in_progress]
        for job in waiting[:JOBS_SHOWN]:
            draw_job(layout.box(), job)
        if len(waiting) > JOBS_SHOWN:
            layout.label(text=f"… and {len(waiting) - JOBS_SHOWN} more waiting", icon='TIME')
        for job in others[:max(JOBS_SHOWN - len(waiting), 3)]:
            draw_job(layout.box(), job)


_STATE_ICONS = {"succeeded": 'CHECKMARK', "failed": 'ERROR', "cancelled": 'CANCEL'}


def draw_job(box, job) -> None:
    row = box.row()
    row.label(text=job.label or job.task, icon=_STATE_ICONS.get(job.state, 'TIME'))
    if job.active:
        if job.request is not None:  # this session's: a past job may be another artist's, on a shared backend
            row.operator("diffusion3d.cancel_job", text="", icon='X').key = job.key
        text = job.phase or job.state
        if job.total:
            text += f" {job.step}/{job.total}"
        if job.eta_s:
            text += f" · {job.eta_s:.0f} s left"
        box.progress(factor=job.progress, type='BAR', text=text)
        if job.message:
            box.label(text=job.message)
    elif job.state == "succeeded":
        if job.applied_to and job.applied_to != job.label:  # e.g. "Chair.001": a name taken
            row.label(text=job.applied_to, icon='OBJECT_DATA')
        elif not job.applied_to and job.waiting:  # waiting for the artist (see jobs.write_blocked_by)
            box.label(text=job.waiting, icon='INFO')
        row.operator("diffusion3d.import_result", text="", icon='IMPORT').key = job.key
        notes = box.column(align=True)
        for line in [line for note in getattr(job, "notes", []) for line in _wrap(note, 48)][:6]:
            notes.label(text=line)
    icon = getattr(job, "preview_icon", 0)
    if icon:
        box.template_icon(icon_value=icon, scale=5.0)
    if job.error:
        draw_error(box, job.error)


def draw_error(layout, text: str) -> None:
    col = layout.column(align=True)
    col.alert = True
    for line in _wrap(text, 48)[:8]:
        col.label(text=line)


def _wrap(text: str, width: int) -> list[str]:
    lines = []
    for paragraph in text.splitlines():
        while len(paragraph) > width:
            cut = paragraph.rfind(" ", 0, width)
            cut = cut if cut > 0 else width
            lines.append(paragraph[:cut])
            paragraph = paragraph[cut:].lstrip()
        lines.append(paragraph)
    return lines


classes = (
    VIEW3D_PT_diffusion3d_backend,
    VIEW3D_PT_diffusion3d_generate,
    VIEW3D_PT_diffusion3d_edit,
    VIEW3D_PT_diffusion3d_texture,
    VIEW3D_PT_diffusion3d_jobs,
)
