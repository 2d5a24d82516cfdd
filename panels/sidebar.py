"""View3D › Sidebar › Diffusion 3D."""

import bpy

# Modules, not names: operators and panels import each other (attributes are read at draw time).
from ..operators import backend_control, jobs
from ..operators.continue_job import continuable
from ..service.session import LOCAL, needs_restart, status_text
from .preferences import backend_settings, downloads_allowed, get_prefs
from .properties import model_entry, sampling_defaults, task_for, tier_model

JOBS_SHOWN = 10  # job boxes in the sidebar before the rest are summed up
NOTE_LINES = 10  # lines of a finished job's notes shown in its box
_SEEDED_TASKS = ("text_to_3d", "image_to_3d", "texture")  # whose seed the job box offers to use again


class Diffusion3DPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Diffusion 3D"


class VIEW3D_PT_diffusion3d_backend(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Backend"

    def draw(self, context):
        layout = self.layout
        settings = backend_settings(context)
        local = settings.mode == 'LOCAL'
        running = local and LOCAL.is_running()
        died = LOCAL.died() if local else None
        icon = 'URL' if not local else 'CHECKMARK' if running else 'ERROR' if died else 'DOT'
        layout.label(text=status_text(settings), icon=icon)
        row = layout.row(align=True)
        if local:
            restart = bool(died) or needs_restart(settings)
            start = row.row(align=True)
            start.enabled = restart or not running  # (a script may still call it: then it only reloads the lists)
            start.operator("diffusion3d.start_backend", text="Restart" if restart else "Start", icon='PLAY')
            stop = row.row(align=True)
            stop.enabled = running
            stop.operator("diffusion3d.stop_backend", text="Stop", icon='CANCEL')
        else:
            row.operator("diffusion3d.start_backend", text="Connect", icon='URL')
        row.operator("diffusion3d.refresh", text="", icon='FILE_REFRESH')
        startup = backend_control.STARTUP
        if startup["running"]:
            layout.label(text="Starting the backend…", icon='TIME')
        elif startup["error"]:
            draw_error(layout.box(), startup["error"], text_width(context))


class VIEW3D_PT_diffusion3d_generate(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Generate"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "prompt", text="", placeholder="Describe the object, e.g. a wooden chair")
        layout.prop(settings, "image")
        draft, quality = (tier_model(task_for(settings), tier) for tier in ("draft", "quality"))
        if draft and quality:  # the plain choice; the full list is the menu below
            choice = layout.row(align=True)
            choice.prop_enum(settings, "model", draft, text="Fast Draft")
            choice.prop_enum(settings, "model", quality, text="Quality")
        layout.prop(settings, "model")
        row = layout.row(align=True)
        row.prop(settings, "random_seed", text="", icon='RNDCURVE')
        sub = row.row(align=True)
        sub.enabled = not settings.random_seed
        sub.prop(settings, "seed")
        if "candidates" in model_entry(settings).get("params", {}):  # text to image to 3D: a gallery first
            layout.prop(settings, "candidates")
        draw_sampling(layout, settings, "", task_for(settings))
        text = "Generate from Image" if task_for(settings) == 'image_to_3d' else "Generate"
        if task_for(settings) != 'image_to_3d' and "candidates" in model_entry(settings).get("params", {}) \
                and settings.candidates > 1:
            text = "Draw Candidates"
        layout.operator("diffusion3d.generate_mesh", text=text, icon='MESH_MONKEY')
        obj = context.active_object
        if obj is not None and obj.type == 'MESH':  # a draft to take further: Magic3D's fine stage
            layout.operator("diffusion3d.refine_selected", text=f"Refine '{obj.name}'"[:40], icon='SHADERFX')


class VIEW3D_PT_diffusion3d_edit(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Edit Selected Part"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "edit_mode", expand=True)
        layout.prop(settings, "edit_prompt", text="", placeholder="What the part should become")
        if settings.edit_mode == 'MIX':
            layout.prop(settings, "take_from_b")
        obj = context.active_object
        if obj is not None and obj.type == 'MESH' and obj.mode != 'EDIT' and settings.edit_mode != 'MIX':
            layout.label(text="Select the part's faces in Edit Mode", icon='INFO')
        text = {'EDIT': "Edit Selected Part", 'COMPLETE': "Complete Selected Part", 'MIX': "Mix In Parts"}
        layout.operator("diffusion3d.edit_part", text=text[settings.edit_mode], icon='SCULPTMODE_HLT')


class VIEW3D_PT_diffusion3d_reshape(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Reshape Selected"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "reshape_prompt", text="", placeholder="What the faces should become, e.g. horns")
        layout.prop(settings, "reshape_source_prompt", placeholder="e.g. a stone vase")
        row = layout.row(align=True)
        row.prop(settings, "reshape_steps")
        row.prop(settings, "reshape_border")
        obj = context.active_object
        if obj is not None and obj.type == 'MESH' and obj.mode != 'EDIT':
            layout.label(text="Select the faces in Edit Mode", icon='INFO')
        layout.prop(settings, "reshape_repaint")
        layout.operator("diffusion3d.reshape_selected", icon='MOD_DISPLACE').repaint_after = settings.reshape_repaint


class VIEW3D_PT_diffusion3d_texture(Diffusion3DPanel, bpy.types.Panel):
    bl_label = "Texture Selected"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.diffusion3d
        layout.prop(settings, "texture_prompt", text="", placeholder="How it should look, e.g. weathered bronze")
        layout.prop(settings, "texture_negative_prompt", placeholder="e.g. blurry, text")
        layout.prop(settings, "texture_model")
        prefs = get_prefs(context)
        downloads_off = prefs is not None and prefs.backend_mode == 'LOCAL' and not downloads_allowed(prefs)
        if downloads_off and not model_entry(settings, 'texture').get("available_offline", True):
            hint = layout.column(align=True)
            for line in _wrap("Needs its download: Preferences › Allow Model Downloads", text_width(context) - 4):
                hint.label(text=line)
        layout.prop(settings, "texture_size", text="Size")
        row = layout.row(align=True)
        row.prop(settings, "texture_views", text="Views (0: Auto)" if settings.texture_views == 0 else "Views")
        row.prop(settings, "texture_fill_views", text="Extra")
        row = layout.row(align=True)
        row.prop(settings, "texture_random_seed", text="", icon='RNDCURVE')
        sub = row.row(align=True)
        sub.enabled = not settings.texture_random_seed
        sub.prop(settings, "texture_seed")
        draw_sampling(layout, settings, "texture_", 'texture')
        layout.prop(settings, "texture_reference")
        if settings.texture_reference:
            layout.prop(settings, "texture_reference_view")
        layout.operator("diffusion3d.texture_mesh", icon='TEXTURE')
        if context.mode == 'EDIT_MESH':  # faces are selected here: repaint just them
            row = layout.row(align=True)
            row.operator("diffusion3d.texture_mesh", text="Repaint Selected", icon='FACESEL').selected_faces_only = True
            row.prop(settings, "repaint_border", text="Border")


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
        width = text_width(context)
        for job in waiting[:JOBS_SHOWN]:
            draw_job(layout.box(), job, width)
        if len(waiting) > JOBS_SHOWN:
            layout.label(text=f"… and {len(waiting) - JOBS_SHOWN} more waiting", icon='TIME')
        for job in others[:max(JOBS_SHOWN - len(waiting), 3)]:
            draw_job(layout.box(), job, width)
        if others:
            layout.operator("diffusion3d.clear_finished", icon='TRASH')


_STATE_ICONS = {"succeeded": 'CHECKMARK', "failed": 'ERROR', "cancelled": 'CANCEL'}
# What the job is doing, in words (the backend's phase names are short identifiers).
_PHASE_WORDS = {"submitting": "Sending", "queued": "Queued", "load": "Loading the model", "prepare": "Preparing",
                "paint": "Painting view", "denoise": "Denoising", "decode": "Decoding the surface",
                "running": "Running"}


def draw_sampling(layout, settings, prefix: str, task: str) -> None:
    """The Custom Sampling toggle and its steps and guidance, else the model's own values."""
    layout.prop(settings, prefix + "custom_sampling")
    if getattr(settings, prefix + "custom_sampling"):
        col = layout.column(align=True)
        col.prop(settings, prefix + "steps")
        col.prop(settings, prefix + "guidance")
        return
    steps, guidance = sampling_defaults(settings, task)
    if steps is not None:
        text = f"{steps} steps" + (f", guidance {guidance:g}" if guidance is not None else "")
        layout.label(text=f"Model's own: {text}")


def progress_text(job) -> str:
    """"Painting view 3/10 · 2 min 5 s left"."""
    text = _PHASE_WORDS.get(job.phase or job.state, job.phase or job.state)
    if job.total:
        text += f" {job.step}/{job.total}"
    if job.eta_s:
        minutes, seconds = divmod(round(job.eta_s), 60)
        hours, minutes = divmod(minutes, 60)
        left = f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        text += f" · {left} left"
    return text


def text_width(context) -> int:
    """Characters a label line holds in this region (Blender cuts longer ones in the middle)."""
    region = getattr(context, "region", None)
    if region is None or not region.width:
        return 40
    scale = context.preferences.view.ui_scale * context.preferences.system.ui_scale
    return max(20, int(region.width / (6.2 * scale)) - 4)  # about 6 px a character at 1x


def draw_job(box, job, width: int = 40) -> None:
    row = box.row()
    row.label(text=job.label or job.task, icon=_STATE_ICONS.get(job.state, 'TIME'))
    if job.active:
        if getattr(job, "has_current_state", False):  # a long optimisation: see where it stands
            importing = row.row()
            importing.enabled = not getattr(job, "importing", False)
            importing.operator("diffusion3d.import_current_state", text="", icon='IMPORT').key = job.key
        if job.request is not None:  # this session's: a past job may be another artist's, on a shared backend
            row.operator("diffusion3d.cancel_job", text="", icon='X').key = job.key
        box.progress(factor=job.progress, type='BAR', text=progress_text(job))
        if job.message and job.message != job.state:  # "queued, 2 job(s) ahead"; not "queued" twice
            box.label(text=job.message)
    elif getattr(job, "has_current_state", False) or getattr(job, "has_checkpoint", False):  # stopped early
        if getattr(job, "has_current_state", False):  # what it reached was kept
            row.operator("diffusion3d.import_current_state", text="", icon='IMPORT').key = job.key
        if continuable(job):
            row.operator("diffusion3d.continue_job", text="", icon='PLAY').key = job.key
    elif job.state == "succeeded":
        if getattr(job, "has_result", True):  # a gallery has images to pick from, no mesh to import
            button = row.row()
            button.enabled = not (getattr(job, "importing", False) or getattr(job, "in_progress", False))  # its run writes it
            button.operator("diffusion3d.import_result", text="", icon='IMPORT').key = job.key
        if job.applied_to and job.applied_to != job.label:  # e.g. "Chair.001": a name taken
            box.label(text=job.applied_to, icon='OBJECT_DATA')
        elif not job.applied_to and job.waiting:  # waiting for the artist (see write_guard.write_blocked_by)
            box.label(text=job.waiting, icon='INFO')
        notes = box.column(align=True)
        lines, cut = _cut([line for note in getattr(job, "notes", []) for line in _wrap(note, width)], NOTE_LINES)
        for line in lines:
            notes.label(text=line)
        if cut:
            notes.label(text="…")
        if job.seed is not None and job.task in _SEEDED_TASKS and job.seed < 2**31:  # (an IntProperty)
            seed_row = box.row()
            seed_row.label(text=f"Seed {job.seed}")
            use = seed_row.operator("diffusion3d.use_seed", text="Use", icon='RNDCURVE')
            use.seed, use.texture = job.seed, job.task == "texture"
    icon = getattr(job, "preview_icon", 0)
    candidate_icons = getattr(job, "candidate_icons", [])
    if icon and not candidate_icons:  # a gallery's preview is its candidates, drawn one by one below
        box.template_icon(icon_value=icon, scale=5.0)
    if candidate_icons:
        draw_gallery(box, job, candidate_icons)
    if job.error:
        if draw_error(box, job.error, width):
            box.operator("diffusion3d.copy_error", icon='COPYDOWN').key = job.key
        if "Log " in job.error and LOCAL.log_path:  # the backend's log holds the rest
            box.operator("wm.path_open", text="Open Backend Log", icon='TEXT').filepath = LOCAL.log_path


def draw_gallery(layout, job, icons: list[int]) -> None:
    """A gallery job's candidates, two a row, each with the button that makes it 3D."""
    layout.label(text="Pick the images to make 3D:" if not job.applied_to else "Candidates:")
    grid = layout.grid_flow(columns=2, even_columns=True, align=True)
    for index, icon in enumerate(icons):
        cell = grid.column(align=True)
        if icon:  # 0 until Blender has made the icon (and always in background mode)
            cell.template_icon(icon_value=icon, scale=4.0)
        make = cell.operator("diffusion3d.use_candidate", text=f"Make 3D ({index})", icon='MESH_MONKEY')
        make.key, make.index = job.key, index


def draw_error(layout, text: str, width: int = 40) -> bool:
    """The error in red, wrapped to the panel; True when it had to be cut (at 8 lines)."""
    col = layout.column(align=True)
    col.alert = True
    lines, cut = _cut(_wrap(text, width), 8)
    for line in lines:
        col.label(text=line)
    if cut:
        col.label(text="… (Copy Error for the whole text)")
    return cut


def _cut(lines: list[str], limit: int) -> tuple[list[str], bool]:
    """At most `limit` lines: all of them, or one fewer to leave room for a mark (True)."""
    return (lines, False) if len(lines) <= limit else (lines[:limit - 1], True)


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
    VIEW3D_PT_diffusion3d_reshape,
    VIEW3D_PT_diffusion3d_texture,
    VIEW3D_PT_diffusion3d_jobs,
)
