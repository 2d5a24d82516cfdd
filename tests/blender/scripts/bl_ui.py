"""Sidebar panels and preferences draw in every job state; the modal driver runs a job to the end."""

import json
import time
import types

import bpy
import numpy as np
from bl_harness import MODULE, addon_module, done, install

install()
jobs = addon_module("operators.jobs")
panels = addon_module("panels.sidebar")
preferences = addon_module("panels.preferences")
context = bpy.context


class FakeLayout:
    """Stands in for UILayout outside a real draw: checks every property name it is given."""

    def __init__(self, calls):
        self.calls = calls

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.calls.append(("prop", name))
        return None

    def prop_enum(self, data, name, value, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.calls.append(("prop_enum", name, value))

    def operator(self, idname, **kwargs):
        module, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), name), idname
        self.calls.append(("operator", idname))
        return types.SimpleNamespace()

    def progress(self, factor=0.0, type='BAR', text=""):
        assert 0.0 <= factor <= 1.0
        self.calls.append(("progress", text))

    def label(self, text="", **kwargs):
        self.calls.append(("label", text))

    def template_icon(self, icon_value=0, scale=1.0):
        assert icon_value > 0
        self.calls.append(("icon", icon_value))

    def __getattr__(self, name):  # row(), column(), box(), split(): nested layouts
        if name in ("row", "column", "box", "split", "column_flow", "grid_flow"):
            return lambda *args, **kwargs: FakeLayout(self.calls)
        raise AttributeError(name)

    def __setattr__(self, name, value):  # enabled, alert, use_property_split, ...
        if name in ("enabled", "active", "alert", "use_property_split"):  # Blender takes a bool, nothing else
            assert isinstance(value, bool), f"{name} = {value!r}"
        object.__setattr__(self, name, value)


def draw(panel_class, owner=None):
    calls = []
    target = types.SimpleNamespace(layout=FakeLayout(calls))
    panel_class.draw(target, context)
    return calls


# Jobs in every state the list shows.
running = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "a"}, "running job")))
running.state, running.phase, running.step, running.total, running.progress, running.eta_s = "running", "denoise", 3, 10, 0.3, 4.2
failed = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "b"}, "failed job")))
failed.fail("the model ran out of memory on cuda: lower the resolution or use the CPU " * 3)
ok = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "c"}, "done job")))
ok.state = "succeeded"
assert not ok.done  # the backend is done, but the result is still on its way: keep ticking
ok.applied_to = "done job"
ok.notes = ["The built-in model does not know \"a dragon\"; it made the nearest thing it knows, a mushroom."]
assert ok.done and failed.done and not running.done

# A result whose target object was deleted meanwhile: the job ends, says why, and nothing is written.
orphan = jobs.Job(jobs.JobRequest("edit_part", {"prompt": "d"}, "orphan job", target="deleted object"))
orphan.state, orphan.result = "succeeded", object()
assert not orphan.done
assert jobs.apply_result(context, orphan) is None
assert orphan.write_failed and orphan.done and not orphan.applied_to and "no longer exists" in orphan.error
calls = draw(panels.VIEW3D_PT_diffusion3d_jobs)
assert ("progress", "Denoising 3/10 · 4 s left") in calls, calls
assert ("operator", "diffusion3d.cancel_job") in calls and ("operator", "diffusion3d.import_result") in calls
assert any(kind == "label" and "out of memory" in text for kind, text in calls)
assert any(kind == "label" and "does not know" in text for kind, text in calls)  # the model's note, shown
ok.notes = ["a note long enough to wrap onto a few lines of the job box, as texture notes do"] * 4
calls = []
panels.draw_job(FakeLayout(calls), ok, 40)
assert calls.count(("label", "…")) == 1 and sum(kind == "label" for kind, _ in calls) <= panels.NOTE_LINES + 2
ok.notes = ["The built-in model does not know \"a dragon\"; it made the nearest thing it knows, a mushroom."]
# A gallery (text to image to 3D): done once its images are here, each with its Make 3D button.
gallery = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "e"}, "gallery job")))
gallery.update({"state": "succeeded", "candidates": 2, "has_result": False})
assert not gallery.done  # its images are still on their way
gallery.candidate_paths, gallery.candidate_icons = ["a.png", "b.png"], [7, 8]
assert gallery.done and gallery.gallery_only
calls = []
panels.draw_job(FakeLayout(calls), gallery, 40)
assert calls.count(("operator", "diffusion3d.use_candidate")) == 2 and ("icon", 8) in calls, calls
assert ("operator", "diffusion3d.import_result") not in calls  # no mesh to import
previews = addon_module("panels.previews")
previews.load_candidates(gallery)  # icons keyed by the job: freed when it leaves the capped list
assert f"{gallery.key}:candidate:1" in previews._collection
previews.forget(gallery.key)
assert not [key for key in previews._collection if key.startswith(f"{gallery.key}:")]
gallery.update({"state": "succeeded", "candidates": 10**9, "has_result": False})
assert gallery.candidates == jobs.MAX_CANDIDATES  # a backend's number is capped before anything is fetched
for panel in panels.classes:
    draw(panel)
# The Backend panel of a backend that died offers Restart (Blender raised in this draw once: a
# message where a bool belongs).
LOCAL = addon_module("service.session").LOCAL
LOCAL.died = lambda: "the local backend was killed (signal 9); restart it from the sidebar"
try:
    calls = draw(panels.VIEW3D_PT_diffusion3d_backend)
finally:
    del LOCAL.died
assert ("operator", "diffusion3d.start_backend") in calls and ("operator", "diffusion3d.stop_backend") in calls
context.scene.diffusion3d.edit_mode = 'MIX'
assert ("prop", "take_from_b") in draw(panels.VIEW3D_PT_diffusion3d_edit)
context.scene.diffusion3d.image = "//photo.png"
assert ("operator", "diffusion3d.generate_mesh") in draw(panels.VIEW3D_PT_diffusion3d_generate)
context.scene.diffusion3d.image = ""

# Sampling starts from the chosen model's own steps and guidance (the backend lists them).
properties = addon_module("panels.properties")
properties.MODELS[:] = [
    {"name": "builtin", "task": "text_to_3d", "default": True, "params": {"num_inference_steps": 25, "guidance_scale": 1.5}},
    {"name": "shap-e", "task": "text_to_3d", "default": False, "params": {"num_inference_steps": 64, "guidance_scale": 15.0}},
]
settings = context.scene.diffusion3d
settings.model, settings.custom_sampling = 'DEFAULT', False
assert ("label", "Model's own: 25 steps, guidance 1.5") in draw(panels.VIEW3D_PT_diffusion3d_generate)
settings.custom_sampling = True
assert (settings.steps, round(settings.guidance, 3)) == (25, 1.5), (settings.steps, settings.guidance)
assert ("prop", "guidance") in draw(panels.VIEW3D_PT_diffusion3d_generate)
settings.custom_sampling, settings.model = False, "shap-e"
settings.custom_sampling = True
assert (settings.steps, settings.guidance) == (64, 15.0), (settings.steps, settings.guidance)
settings.custom_sampling, settings.model = False, 'DEFAULT'
# Fast Draft / Quality: a plain choice between the task's two tiers, shown when both exist, with
# each model's expected time in the menu.
assert not any(call[0] == "prop_enum" for call in draw(panels.VIEW3D_PT_diffusion3d_generate))
properties.MODELS[0].update(tier="draft", expected_time="about 1 s")
properties.MODELS.append({"name": "magic3d-sd", "task": "text_to_3d", "default": False, "params": {},
                          "tier": "quality", "expected_time": "~25 min on a GPU", "available_offline": False})
calls = draw(panels.VIEW3D_PT_diffusion3d_generate)
assert ("prop_enum", "model", "builtin") in calls and ("prop_enum", "model", "magic3d-sd") in calls, calls
labels = {name: label for name, label, _ in properties.models_for("text_to_3d")}
assert labels["magic3d-sd"] == "magic3d-sd (needs download) · ~25 min on a GPU", labels
settings.model = "magic3d-sd"  # what the Quality button sets
assert settings.model == "magic3d-sd"
settings.model = 'DEFAULT'
properties.MODELS.pop()
# Texturing has its own: the texture model's steps and guidance, and a panel hint when the
# model (the default one too) still needs its download.
properties.MODELS.append({"name": "sd2-depth", "task": "texture", "default": True, "available_offline": False,
                          "params": {"num_inference_steps": 30, "guidance_scale": 7.5}})
calls = draw(panels.VIEW3D_PT_diffusion3d_texture)
assert ("label", "Model's own: 30 steps, guidance 7.5") in calls, calls
assert any(kind == "label" and "Allow Model Downloads" in text for kind, text in calls), calls
addon_prefs = context.preferences.addons[MODULE].preferences
addon_prefs.allow_downloads = True  # then the hint is gone, unless Blender's online access is off
hinted = any("Allow Model Downloads" in text for kind, text in draw(panels.VIEW3D_PT_diffusion3d_texture))
assert hinted == (not bpy.app.online_access), (hinted, bpy.app.online_access)
addon_prefs.allow_downloads = False
assert properties.models_for('texture')[0][1] == "Default (sd2-depth, needs download)"
settings.texture_custom_sampling = True
assert (settings.texture_steps, round(settings.texture_guidance, 3)) == (30, 7.5)
assert ("prop", "texture_guidance") in draw(panels.VIEW3D_PT_diffusion3d_texture)
settings.texture_custom_sampling = False
properties.MODELS.pop()

# The model menus keep the chosen model by name: another task's list (an image set) shows the
# default, the text model comes back with the prompt, and a reloaded list in another order
# keeps the choice (Blender stores a plain enum by position).
properties.MODELS.append({"name": "shap-e-img2img", "task": "image_to_3d", "default": True, "params": {}})
settings.model = "shap-e"
settings.image = "//photo.png"
assert settings.model == 'DEFAULT' and properties.models_for('image_to_3d')[0][1] == "Default (shap-e-img2img)"
settings.image = ""
assert settings.model == "shap-e"
properties.MODELS.reverse()
assert settings.model == "shap-e"
settings.model = 'DEFAULT'
properties.MODELS.clear()

# Preferences draw (local and remote) through the same fake layout.
prefs = context.preferences.addons[MODULE].preferences
prefs_class = type(prefs)


class PrefsProxy:
    def __init__(self, calls):
        self.layout = FakeLayout(calls)

    def __getattr__(self, name):
        attribute = getattr(prefs_class, name, None)
        if callable(attribute):
            return attribute.__get__(self)
        return getattr(prefs, name)


for mode in ('LOCAL', 'REMOTE'):
    prefs.backend_mode = mode
    calls = []
    prefs_class.draw(PrefsProxy(calls), context)
    assert ("prop", "request_timeout") in calls
    assert (("prop", "cpu_offload") in calls) == (mode == 'LOCAL')
prefs.backend_mode = 'LOCAL'

# The memory options reach the local backend's command line (and a change asks for a restart).
assert "--cpu-offload" not in preferences.backend_settings(context).backend_args()
assert "--full-precision" not in preferences.backend_settings(context).backend_args()
prefs.cpu_offload = prefs.attention_slicing = prefs.full_precision = True
assert {"--cpu-offload", "--attention-slicing", "--full-precision"} <= set(preferences.backend_settings(context).backend_args())
prefs.cpu_offload = prefs.attention_slicing = prefs.full_precision = False

# The modal driver: timer ticks (here simulated) apply the result on the main thread, with its own undo step.
bpy.ops.ed.undo_push(message="before modal")


class ModalRun(jobs.JobOperator):
    def __init__(self):
        self.reports = []

    def report(self, kind, message):
        self.reports.append((kind, message))


op = ModalRun()
job = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "modal cube", "num_inference_steps": 40,
                                                             "step_delay": 0.05}, "modal cube", "test-cube")))
op._jobs = [job]
timers = addon_module("operators.modal_timers")
op._timer = timers.add(context, 0.1)
jobs.start_worker(job, preferences.backend_settings(context))
timer_event = types.SimpleNamespace(type='TIMER')
states, deadline = set(), time.time() + 120
while time.time() < deadline:
    time.sleep(0.1)
    assert op.modal(context, types.SimpleNamespace(type='MOUSEMOVE')) == {'PASS_THROUGH'}
    result = op.modal(context, timer_event)
    states.add(job.state)
    if result != {'PASS_THROUGH'}:
        break
assert "running" in states and job.applied_to == "modal cube", (states, job.state, job.error, op.reports)
assert job.preview_version > 0 and job.preview_path.endswith(".png")  # test-cube streams previews
previews = addon_module("panels.previews")
assert any(key.startswith(f"{job.key}:") for key in previews._collection), list(previews._collection)
draw(panels.VIEW3D_PT_diffusion3d_jobs)  # (icon ids stay 0 in background mode: no icon is drawn)
assert result == {'CANCELLED'}  # ends without a second (window-manager) undo push
assert not timers._RUNNING  # its timer removed
assert ({'INFO'}, "Generated 'modal cube'") in op.reports, op.reports
obj = bpy.data.objects["modal cube"]
assert json.loads(obj["diffusion3d"])["model"] == "test-cube"
bpy.ops.ed.undo()  # one step takes the result away again
assert "modal cube" not in bpy.data.objects

# One object written, another's job failed: FINISHED, so the written one gets its undo step
# (the error is still reported, and bpy.ops still raises in a script).
written_job, failed_job = jobs.Job(None, "written"), jobs.Job(None, "failed")
written_job.state, written_job.applied_to = "succeeded", "written"
failed_job.fail("no view saw the mesh")
partial = ModalRun()
assert partial.finish([written_job, failed_job]) == {'FINISHED'}
assert ({'ERROR'}, "failed: no view saw the mesh") in partial.reports, partial.reports
assert ModalRun().finish([failed_job]) == {'CANCELLED'}
long_error = "doomed: the local backend was killed (signal 9, most likely out of memory); restart it " * 3 + "\nLog …"
assert jobs._status_line(long_error).endswith("… (see the job list)") and len(jobs._status_line(long_error)) < 135
assert jobs._status_line("a: no view saw the mesh") == "a: no view saw the mesh"

# A preview that fails to download (a dropped connection) is skipped; the job goes on.
BackendError = addon_module("service.client").BackendError


class DroppingClient:
    def preview(self, job_id):
        raise BackendError("request failed: IncompleteRead(9494 bytes read, 759 more expected)")


flaky = jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "e"}, "flaky preview"))
flaky.state, versions = "running", (flaky.preview_version, flaky.version)
jobs._fetch_preview(DroppingClient(), flaky, preferences.backend_settings(context))
assert (flaky.preview_version, flaky.version) == versions and flaky.state == "running" and not flaky.error

# Texture Selected on 40 objects: no job in progress leaves the list, the running (oldest) one
# is drawn first, the rest are counted; finished jobs make room.
saved = list(jobs.JOBS)
del jobs.JOBS[:]
many = [jobs.add_job(jobs.Job(jobs.JobRequest("texture", {"prompt": "p"}, f"object {i}"))) for i in range(40)]
assert len(jobs.JOBS) == 40 and all(job in jobs.JOBS for job in many)
many[0].state = "running"
calls = draw(panels.VIEW3D_PT_diffusion3d_jobs)
labels = [text for kind, text in calls if kind == "label"]
assert labels[0] == "object 0" and "… and 30 more waiting" in labels, labels[:12]
for job in many:
    job.state = "cancelled"
jobs.add_job(jobs.Job(jobs.JobRequest("texture", {"prompt": "p"}, "one more")))
assert len(jobs.JOBS) == jobs.MAX_JOBS_LISTED and jobs.JOBS[0].label == "one more"
jobs.JOBS[:] = saved

# A finished job shows the seed it ran with; Use fixes it for the next Generate.
seeded = jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "j"}, "seeded"))
seeded.update({"id": "job-9", "state": "succeeded", "params": {"prompt": "j", "seed": 123456}})
calls = []
panels.draw_job(FakeLayout(calls), seeded)
assert ("label", "Seed 123456") in calls and ("operator", "diffusion3d.use_seed") in calls, calls
context.scene.diffusion3d.random_seed = True
assert bpy.ops.diffusion3d.use_seed(seed=123456) == {'FINISHED'}
assert context.scene.diffusion3d.seed == 123456 and not context.scene.diffusion3d.random_seed
# A texture's seed too, fixed for Texture Selected.
seeded = jobs.Job(jobs.JobRequest("texture", {"prompt": "k"}, "painted"))
seeded.update({"id": "job-10", "state": "succeeded", "params": {"prompt": "k", "seed": 4242}})
calls = []
panels.draw_job(FakeLayout(calls), seeded)
assert ("label", "Seed 4242") in calls, calls
assert bpy.ops.diffusion3d.use_seed(seed=4242, texture=True) == {'FINISHED'}
assert context.scene.diffusion3d.texture_seed == 4242 and not context.scene.diffusion3d.texture_random_seed
assert context.scene.diffusion3d.seed == 123456  # Generate's stays

# An error too long for the panel is cut with a mark, and Copy Error puts all of it on the clipboard.
wordy = jobs.Job(jobs.JobRequest("texture", {"prompt": "l"}, "wordy"))
wordy.fail("model sd2-depth is not downloaded: run hf download stabilityai/stable-diffusion-2-depth " * 6)
calls = []
panels.draw_job(FakeLayout(calls), wordy, 40)
assert ("label", "… (Copy Error for the whole text)") in calls and ("operator", "diffusion3d.copy_error") in calls
jobs.add_job(wordy)
assert bpy.ops.diffusion3d.copy_error(key=wordy.key) == {'FINISHED'}  # (the clipboard itself: tests/gui)
jobs.JOBS.remove(wordy)
# Time left reads as a person would say it.
running.eta_s, running.phase = 3725.0, "paint"
assert panels.progress_text(running) == "Painting view 3/10 · 1 h 2 min left"
running.eta_s = 125.0
assert panels.progress_text(running) == "Painting view 3/10 · 2 min 5 s left"

# A job the backend finished whose download broke stays "succeeded": the list offers Import again.
lost = jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "g"}, "lost download"))


def lose_the_download(job, settings, echo):
    job.state = "succeeded"
    raise BackendError("request failed: connection reset by peer")


original_run, jobs._run_job = jobs._run_job, lose_the_download
try:
    jobs.run_job(lost, preferences.backend_settings(context))
finally:
    jobs._run_job = original_run
assert lost.state == "succeeded" and lost.done and lost.write_failed and "Import tries again" in lost.error, lost.error
calls = []
panels.draw_job(FakeLayout(calls), lost)
assert ("operator", "diffusion3d.import_result") in calls, calls

# A result arriving while the artist edits another mesh waits for Object Mode (and says so).
glb = addon_module("formats.glb")
bpy.ops.mesh.primitive_cube_add()
editing = context.active_object
bpy.ops.object.mode_set(mode='EDIT')
ready = jobs.add_job(jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "f"}, "waiting result")))
ready.state = "succeeded"
ready.result = glb.read_glb(glb.write_glb(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]])))
assert jobs.tick(context, [ready]) == [] and not ready.applied_to and not ready.done and ready.waiting
assert editing.mode == 'EDIT' and context.active_object == editing and "waiting result" not in bpy.data.objects
assert ("label", "Ready: waits for Object Mode") in draw(panels.VIEW3D_PT_diffusion3d_jobs)
bpy.ops.object.mode_set(mode='OBJECT')
assert [o.name for o in jobs.tick(context, [ready])] == ["waiting result"] and ready.done and not ready.waiting

# A window where the artist is mid-grab: the result waits for the tool to end; our own job run
# (a modal operator too) does not count.
def window_with(*operators):
    return types.SimpleNamespace(window=types.SimpleNamespace(modal_operators=list(operators)), mode='OBJECT',
                                 active_object=None)


guard = addon_module("operators.write_guard")
grab = types.SimpleNamespace(bl_idname="TRANSFORM_OT_translate", name="Move")
ours = types.SimpleNamespace(bl_idname="DIFFUSION3D_OT_generate_mesh", name="Generate")
pending = jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "i"}, "pending"))
assert guard.write_blocked_by(window_with(ours, grab), pending) == "Ready: waits for Move to end"
assert guard.write_blocked_by(window_with(ours), pending) == ""

# Blender ends a run (another file opened): its jobs go on, no longer "in progress" at the top of
# the list (a result that arrives waits for Import).
ended = ModalRun()
ended._jobs = [jobs.Job(jobs.JobRequest("text_to_3d", {"prompt": "h"}, "left behind"))]
ended._timer = timers.add(context, 0.1)
ended.cancel(context)
assert not ended._jobs[0].in_progress and not timers._RUNNING

# Disabling the add-on during a run removes the run's timer (Blender drops the handler without
# calling cancel, and the timer would go on firing).
timers.add(context, 0.1)
jobs.stop_all()
assert not timers._RUNNING
done()
