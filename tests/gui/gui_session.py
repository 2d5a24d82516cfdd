"""An artist's session in a real Blender window (not background mode), run by ./scripts/test_gui.sh.

The background-mode tests drive the modal job operator with simulated timer events; here the
window manager's own event loop runs it. Operators are invoked as a sidebar button invokes them
('INVOKE_DEFAULT' in the 3D viewport's context) and the session checks what the artist sees:
the operator goes modal and the UI keeps running while the backend works, the result lands as a
new selected object at the 3D cursor, one undo takes it away and redo brings it back, Cancel stops
a job with nothing written, a result finished during Edit Mode on another mesh waits for Object
Mode, a part edit in Edit Mode and Texture Selected land and undo, a
reference image from the current view lands where Blender projects it, two objects texture at
once, Mix brings wheels in under the seat, a backend killed mid-job fails that job (scene
untouched) and restarts from the sidebar, quitting with a job running stops the backend, and
the sidebar draws with live progress (screenshots).
It measures the main thread's work per modal tick, the panels' draw times and the UI's longest
stalls, and writes gui_report_first.json. Run again with DIFFUSION3D_GUI_PHASE=reopen on the
same user folder, it checks that the first session's jobs are listed and import again.

Environment: DIFFUSION3D_GUI_OUT (output folder), DIFFUSION3D_PYTHON (interpreter for the
local backend), DIFFUSION3D_TEST_MODELS=1.
"""

import importlib
import json
import math
import os
import signal
import statistics
import sys
import time

import bpy
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # Blender runs this file as a script
from gui_harness import (  # noqa: E402
    MODULE, OUT, PHASE, REPORT, MainThreadProbe, act, call, check, drive, screenshot, time_panel_draws, time_ticks,
    view3d,
)


def open_sidebar():
    """The 3D viewport's sidebar, open on the Diffusion 3D tab (tabs exist once it has drawn)."""
    area = view3d()["area"]
    area.spaces.active.show_region_ui = True
    yield 1.0
    next(r for r in area.regions if r.type == 'UI').active_panel_category = "Diffusion 3D"
    yield 1.0


def session():
    """A generator of waits: yield seconds to sleep, or a (predicate, timeout, what) to wait for."""
    # Installed and enabled by test_gui.sh with `blender --command extension install-file --enable`.
    check(MODULE in bpy.context.preferences.addons, "the extension is enabled at start-up")
    jobs = importlib.import_module(f"{MODULE}.operators.jobs")
    session_module = importlib.import_module(f"{MODULE}.service.session")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.python_path = os.environ["DIFFUSION3D_PYTHON"]
    prefs.device = 'CPU'
    prefs.startup_timeout = 300.0
    bpy.context.preferences.is_dirty = True  # as edits in the Preferences window do: saved on quit
    tick_samples = time_ticks(jobs)
    draw_samples = time_panel_draws(importlib.import_module(f"{MODULE}.panels.sidebar"))
    probe = MainThreadProbe()

    yield from open_sidebar()

    # Idle baseline: the UI's own redraws with no job running.
    probe.record(True)
    yield 3.0
    probe.record(False)
    idle = probe.gaps_ms()

    # 1. Generate, as the Generate button does; the backend starts on demand.
    scene = bpy.context.scene
    scene.cursor.location = (2.0, 1.0, 0.0)
    scene.diffusion3d.prompt = "a chair with four legs"
    objects_before = set(bpy.data.objects.keys())
    probe.record(True)
    result = call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', model="builtin", seed=0, random_seed=False)
    check(result == {'RUNNING_MODAL'}, "Generate runs modal: the call returns at once")
    job = jobs.JOBS[0]
    yield (lambda: job.state == "running", 300, "the job to start running")
    screenshot("generate_running.png")
    yield (lambda: job.done, 300, "the generated chair")
    probe.record(False)
    busy = probe.gaps_ms()
    check(not job.error, f"the job succeeded ({job.error})")
    chair = bpy.data.objects.get(job.applied_to)
    check(chair is not None and set(bpy.data.objects.keys()) - objects_before == {chair.name},
          "exactly one new object, named from the prompt")
    check(bpy.context.view_layer.objects.active == chair and chair.select_get(), "it is selected and active")
    check((chair.location - scene.cursor.location).length < 1e-6, "it stands at the 3D cursor")
    check(chair.active_material is not None, "it has a material")
    check(any(g.name.startswith("leg.") for g in chair.vertex_groups), "its parts are vertex groups")
    yield 1.0
    screenshot("generate_done.png")

    # 2. One undo takes the new object away, redo brings it back.
    chair_name = chair.name
    call(bpy.ops.ed.undo)
    yield 0.5
    check(chair_name not in bpy.context.scene.objects, "undo removes the generated object")
    call(bpy.ops.ed.redo)
    yield 0.5
    check(chair_name in bpy.context.scene.objects, "redo brings it back")
    chair = bpy.context.scene.objects[chair_name]

    # Redraw baseline, same scene: the sidebar tagged for redraw at the modal timer's rate, no job.
    def tag():
        jobs.tag_redraw(bpy.context)
        return 0.1 if probe.recording else None

    probe.record(True)
    bpy.app.timers.register(tag)
    yield 3.0
    probe.record(False)
    redraw_only = probe.gaps_ms()

    # 3. Cancel a long job from the job list: it stops within a step or two, nothing is written.
    objects_before = set(bpy.data.objects.keys())
    call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', prompt="slow cube", model="test-cube",
         extra_params=json.dumps({"num_inference_steps": 200, "step_delay": 0.1}))
    slow = jobs.JOBS[0]
    probe.record(True)
    yield (lambda: slow.state == "running" and slow.step >= 5, 120, "the slow job's progress")
    screenshot("job_progress.png")
    probe.record(False)
    streaming = probe.gaps_ms()
    step_at_cancel, cancelled_at = slow.step, time.perf_counter()
    call(bpy.ops.diffusion3d.cancel_job, key=slow.key)
    yield (lambda: slow.done, 60, "the cancelled job to end")
    check(slow.state == "cancelled", f"the job is cancelled (state {slow.state})")
    REPORT["figures"]["cancel_latency_s"] = round(time.perf_counter() - cancelled_at, 2)
    REPORT["figures"]["steps_after_cancel"] = slow.step - step_at_cancel
    check(set(bpy.data.objects.keys()) == objects_before, "a cancelled job writes nothing")

    # 3b. A result that finishes while the artist edits another mesh waits for Object Mode.
    call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', prompt="patient cube", model="test-cube",
         extra_params=json.dumps({"num_inference_steps": 10, "step_delay": 0.1}))
    patient = jobs.JOBS[0]
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    chair.select_set(True)
    bpy.context.view_layer.objects.active = chair
    act(bpy.ops.object.mode_set, mode='EDIT')
    yield (lambda: patient.state == "succeeded" and "Object Mode" in patient.waiting, 120, "the finished job to wait")
    yield 1.0
    check(not patient.applied_to and chair.mode == 'EDIT' and bpy.context.view_layer.objects.active == chair,
          "a result finished during Edit Mode on another object waits; the artist stays in Edit Mode")
    screenshot("result_waiting.png")
    act(bpy.ops.object.mode_set, mode='OBJECT')
    yield (lambda: patient.done, 30, "the waiting result to land")
    landed = bpy.data.objects.get(patient.applied_to)
    check(landed is not None and bpy.context.view_layer.objects.active == landed,
          "back in Object Mode, it lands, selected and active")
    bpy.data.objects.remove(landed)

    # 4. Edit Selected Part from Edit Mode: the legs' faces are the mask; one undo restores them.
    for obj in bpy.context.selected_objects:
        obj.select_set(False)
    chair.select_set(True)
    bpy.context.view_layer.objects.active = chair
    vertices_before = len(chair.data.vertices)
    act(bpy.ops.object.mode_set, mode='EDIT')
    act(bpy.ops.mesh.select_all, action='DESELECT')
    for group in [g for g in chair.vertex_groups if g.name.startswith("leg.")]:
        chair.vertex_groups.active_index = group.index
        act(bpy.ops.object.vertex_group_select)
    result = call(bpy.ops.diffusion3d.edit_part, 'INVOKE_DEFAULT', prompt="an office chair on wheels",
                  mode='EDIT', seed=1)
    check(result == {'RUNNING_MODAL'}, "Edit Selected Part runs modal")
    edit = jobs.JOBS[0]
    yield (lambda: edit.done, 300, "the part edit")
    check(not edit.error and edit.applied_to == chair_name, f"the edit lands on the same object ({edit.error})")
    chair = bpy.context.scene.objects[chair_name]
    check(chair.mode == 'EDIT', "the artist is still in Edit Mode")
    chair.update_from_editmode()  # reads the edit mesh into chair.data (no undo step)
    selected = sum(p.select for p in chair.data.polygons)
    check(0 < selected < len(chair.data.polygons), f"with the new parts selected ({selected} faces)")
    check(len(chair.data.vertices) != vertices_before, "the legs were regenerated")
    REPORT["figures"]["parts_after_edit"] = sorted({g.name.split(".")[0] for g in chair.vertex_groups})
    check((chair.location - bpy.context.scene.cursor.location).length < 1e-6, "the transform is kept")
    screenshot("edit_done.png")
    call(bpy.ops.ed.undo)  # straight away, in whatever mode the result left the artist
    yield 0.5
    chair = bpy.context.scene.objects[chair_name]
    chair.update_from_editmode()
    check(len(chair.data.vertices) == vertices_before, f"one undo restores the original legs (mode {chair.mode})")

    # 5. Texture Selected on Suzanne, who already has a material: a new one in a new slot; undo.
    act(bpy.ops.object.mode_set, mode='OBJECT')
    act(bpy.ops.mesh.primitive_monkey_add, location=(-2.0, 0.0, 0.0))
    suzanne = bpy.context.view_layer.objects.active
    old = bpy.data.materials.new("Old paint")
    suzanne.data.materials.append(old)
    call(bpy.ops.ed.undo_push, message="Old paint")  # as the Material tab's assignment does
    result = call(bpy.ops.diffusion3d.texture_mesh, 'INVOKE_DEFAULT', prompt="weathered bronze", model="test-texture",
                  texture_size=1024)
    check(result == {'RUNNING_MODAL'}, "Texture Selected runs modal")
    paint = jobs.JOBS[0]
    yield (lambda: paint.done, 300, "the texture")
    check(not paint.error, f"the texture job succeeded ({paint.error})")
    suzanne = bpy.context.scene.objects[paint.applied_to]
    images = [n.image for n in suzanne.active_material.node_tree.nodes if n.type == 'TEX_IMAGE' and n.image]
    check(suzanne.active_material != old and images and tuple(images[0].size) == (1024, 1024),
          "a new material with a 1024² image texture")
    check(old.name in [slot.material.name for slot in suzanne.material_slots if slot.material],
          "the old material is kept in its slot")
    screenshot("texture_done.png")
    suzanne_name = suzanne.name
    call(bpy.ops.ed.undo)
    yield 0.5
    suzanne = bpy.context.scene.objects[suzanne_name]
    check([slot.material.name for slot in suzanne.material_slots if slot.material] == ["Old paint"],
          "undo restores the old material alone")
    # 5a. Undone by mistake: Import paints the texture on again (in the background), no copy.
    objects_before = set(bpy.data.objects.keys())
    call(bpy.ops.diffusion3d.import_result, key=paint.key)
    yield (lambda: not paint.importing, 60, "the texture imported again")
    suzanne = bpy.context.scene.objects[suzanne_name]
    check(set(bpy.data.objects.keys()) == objects_before and len(suzanne.material_slots) == 2,
          "Import paints the undone texture on again, no copy")
    call(bpy.ops.ed.undo)
    yield 0.5
    suzanne = bpy.context.scene.objects[suzanne_name]
    check(len(suzanne.material_slots) == 1, "one undo takes that back")
    # A long error's whole text goes to the clipboard.
    wordy = jobs.add_job(jobs.Job(jobs.JobRequest("texture", {}, "wordy")))
    wordy.fail("run hf download stabilityai/stable-diffusion-2-depth --cache-dir here " * 8)
    call(bpy.ops.diffusion3d.copy_error, key=wordy.key)
    check(bpy.context.window_manager.clipboard == wordy.error, "Copy Error puts the whole error on the clipboard")
    jobs.JOBS.remove(wordy)

    # 5b. A reference image taken from the current view: left half red, right half blue, at the
    #     viewport's aspect. Where Blender's own projection puts a surface point left of the middle,
    #     the texture must be red; right of it, blue.
    yield from texture_from_view(jobs)

    # 5c. Two objects textured at once (two jobs under one modal operator), then Mix: the wheels
    #     of a second generated chair come into the first.
    yield from texture_two_then_mix(jobs, chair_name)

    # 6. The backend dies during a job: the job fails saying so, the scene is untouched, the
    #    Backend panel offers Restart, and the next job runs on a new backend.
    backend_control = importlib.import_module(f"{MODULE}.operators.backend_control")
    objects_before = set(bpy.data.objects.keys())
    call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', prompt="doomed cube", model="test-cube",
         extra_params=json.dumps({"num_inference_steps": 200, "step_delay": 0.1}))
    doomed = jobs.JOBS[0]
    yield (lambda: doomed.state == "running" and doomed.step >= 2, 120, "the doomed job's progress")
    old_pid = session_module.LOCAL.process.pid
    os.kill(old_pid, signal.SIGKILL)
    yield (lambda: doomed.done, 60, "the job on the killed backend to end")
    check(doomed.state == "failed" and "the local backend was killed" in doomed.error,
          f"the job fails, saying the backend was killed ({doomed.state}: {doomed.error[:80]})")
    check(set(bpy.data.objects.keys()) == objects_before, "the scene is untouched")
    yield 1.0
    screenshot("backend_died.png")
    call(bpy.ops.diffusion3d.start_backend, 'INVOKE_DEFAULT')
    yield (lambda: not backend_control.STARTUP["running"], 300, "the backend to restart")
    check(not backend_control.STARTUP["error"] and session_module.LOCAL.process.pid != old_pid,
          f"Restart starts a new backend ({backend_control.STARTUP['error']})")
    call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', prompt="after the restart", model="test-cube")
    again = jobs.JOBS[0]
    yield (lambda: again.done, 120, "a job on the new backend")
    check(again.applied_to == "after the restart", f"a job on the new backend lands ({again.error})")

    # 7. The add-on's preferences, as Edit › Preferences › Add-ons shows them (a screenshot).
    bpy.context.preferences.active_section = 'ADDONS'
    call(bpy.ops.preferences.addon_expand, module=MODULE)
    call(bpy.ops.screen.userpref_show)
    yield 2.0
    screenshot("preferences.png")
    preferences_window = bpy.context.window_manager.windows[-1]
    with bpy.context.temp_override(window=preferences_window):
        bpy.ops.wm.window_close()
    yield 0.5

    # 8. Quit with a job still running (below): the backend must stop with Blender.
    call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', prompt="left running", model="test-cube",
         extra_params=json.dumps({"num_inference_steps": 500, "step_delay": 0.1}))
    left = jobs.JOBS[0]
    yield (lambda: left.state == "running", 60, "the job left running")
    REPORT["figures"]["backend_pid"] = session_module.LOCAL.process.pid

    # Figures: per-tick work of the modal driver (the final write-back aside) and UI stalls.
    streaming_ticks = [ms for ms, written in tick_samples if not written]
    write_ticks = [ms for ms, written in tick_samples if written]
    REPORT["figures"].update({
        "modal_ticks": len(streaming_ticks),
        "tick_ms_median": round(statistics.median(streaming_ticks), 3),
        "tick_ms_max": round(max(streaming_ticks), 3),
        "write_back_tick_ms": [round(ms, 1) for ms in write_ticks],
        "ui_gap_ms_idle_max": round(max(idle), 1),
        "ui_gap_ms_idle_median": round(statistics.median(idle), 1),
        "ui_gap_ms_redraw_only_max": round(max(redraw_only), 1),
        "ui_gap_ms_redraw_only_median": round(statistics.median(redraw_only), 1),
        "ui_gap_ms_streaming_max": round(max(streaming), 1),
        "ui_gap_ms_streaming_median": round(statistics.median(streaming), 1),
        "ui_gap_ms_first_generate_max": round(max(busy), 1),
        "panel_draws": {label: len(times) for label, times in draw_samples.items()},
        "panel_draw_ms_max": {label: round(max(times, default=0), 2) for label, times in draw_samples.items()},
    })
    REPORT["ok"] = True


def reopened():
    """Blender opened again on the same user folder: Start lists the jobs of the first session
    (kept by the backend), and a finished one's result imports again."""
    check(MODULE in bpy.context.preferences.addons, "the extension is enabled at start-up")
    jobs = importlib.import_module(f"{MODULE}.operators.jobs")
    backend_control = importlib.import_module(f"{MODULE}.operators.backend_control")
    prefs = bpy.context.preferences.addons[MODULE].preferences
    check(prefs.python_path == os.environ["DIFFUSION3D_PYTHON"], "the preferences were kept")
    yield from open_sidebar()
    call(bpy.ops.diffusion3d.start_backend, 'INVOKE_DEFAULT')
    yield (lambda: not backend_control.STARTUP["running"], 300, "the backend to start")
    check(not backend_control.STARTUP["error"], f"Start works ({backend_control.STARTUP['error']})")
    past = {job.label: job for job in jobs.JOBS}
    check({"a chair with four legs", "slow cube", "weathered bronze"} <= set(past),
          f"the first session's jobs are listed ({sorted(past)})")
    chair = past["a chair with four legs"]
    check(chair.state == "succeeded" and past["slow cube"].state == "cancelled", "with their states")
    left = past["left running"]
    check(left.state == "failed" and left.error, f"the job Blender quit on is failed, saying why ({left.error})")
    check(not os.path.isfile(chair.result_path or ""), "this session has no file of it yet")
    result = call(bpy.ops.diffusion3d.import_result, key=chair.key)
    check(result == {'RUNNING_MODAL'} and chair.importing, "Import downloads it in the background")
    yield (lambda: "a chair with four legs" in bpy.context.scene.objects, 60, "the imported chair")
    check(not chair.importing and os.path.isfile(chair.result_path), "a past result imports as a new object")
    call(bpy.ops.ed.undo)
    yield 0.5
    check("a chair with four legs" not in bpy.context.scene.objects, "one undo step takes the import back")
    yield 1.0
    screenshot("reopened.png")
    REPORT["ok"] = True


def texture_two_then_mix(jobs, chair_name: str):
    act(bpy.ops.object.select_all, action='DESELECT')
    pair = [bpy.context.scene.objects["Suzanne"], bpy.context.scene.objects["Cube"]]
    for obj in pair:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = pair[0]
    slots_before = {obj.name: len(obj.material_slots) for obj in pair}
    result = call(bpy.ops.diffusion3d.texture_mesh, 'INVOKE_DEFAULT', prompt="moss", model="test-texture")
    check(result == {'RUNNING_MODAL'} and {j.label.split(":")[0] for j in jobs.JOBS[:2]} == set(slots_before),
          "Texture Selected with two objects selected starts a job for each")
    both = jobs.JOBS[:2]
    yield (lambda: all(j.done for j in both), 300, "both textures")
    check(all(not j.error for j in both) and all(
        len(bpy.context.scene.objects[n].material_slots) == slots_before[n] + 1 for n in slots_before),
        "each object gets its own new material")

    act(bpy.ops.object.select_all, action='DESELECT')
    result = call(bpy.ops.diffusion3d.generate_mesh, 'INVOKE_DEFAULT', prompt="an office chair on wheels",
                  model="builtin", seed=3, random_seed=False)
    donor_job = jobs.JOBS[0]
    yield (lambda: donor_job.done, 300, "the donor chair")
    donor = bpy.context.scene.objects[donor_job.applied_to]
    check(any(g.name.startswith("wheel") for g in donor.vertex_groups), "the donor chair has wheels")
    donor.location.x += 3.0  # beside the first chair (both were made at the 3D cursor)
    chair = bpy.context.scene.objects[chair_name]
    act(bpy.ops.object.select_all, action='DESELECT')
    donor.select_set(True)
    chair.select_set(True)
    bpy.context.view_layer.objects.active = chair
    result = call(bpy.ops.diffusion3d.edit_part, 'INVOKE_DEFAULT', mode='MIX', take_from_b="wheel", seed=4)
    check(result == {'RUNNING_MODAL'}, "Mix runs modal")
    mix = jobs.JOBS[0]
    yield (lambda: mix.done, 300, "the mix")
    chair = bpy.context.scene.objects[chair_name]
    check(mix.request.target == chair_name and not mix.error
          and any(g.name.startswith("wheel") for g in chair.vertex_groups),
          f"the first chair has the donor's wheels ({mix.label}: {mix.error})")
    groups = {g.index: g.name for g in chair.vertex_groups}
    height = {"wheel": [], "seat": []}
    for vertex in chair.data.vertices:
        for membership in vertex.groups:
            kind = groups[membership.group].split(".")[0]
            if kind in height:
                height[kind].append((chair.matrix_world @ vertex.co).z)
    check(sorted(height["wheel"])[int(0.9 * len(height["wheel"]))] < min(height["seat"]), "under its seat")
    call(bpy.ops.view3d.view_selected)  # both chairs in view
    yield 1.0
    screenshot("mixed.png")


def texture_from_view(jobs):
    from bpy_extras.view3d_utils import location_3d_to_region_2d
    from mathutils import Euler

    act(bpy.ops.object.select_all, action='DESELECT')
    act(bpy.ops.mesh.primitive_uv_sphere_add, location=(0.0, 5.0, 1.0), segments=48, ring_count=24)
    ball = bpy.context.view_layer.objects.active
    ctx = view3d()
    view = ctx["area"].spaces.active.region_3d
    view.view_perspective = 'PERSP'
    view.view_location = ball.location
    view.view_rotation = Euler((math.radians(65), 0.0, math.radians(-35))).to_quaternion()
    view.view_distance = 4.0
    yield 0.5
    region = ctx["region"]
    width, height = region.width, region.height
    image = bpy.data.images.new("half red half blue", width, height)
    pixels = np.zeros((height, width, 4), np.float32)
    pixels[..., 3] = 1.0
    pixels[:, : width // 2, 0] = 1.0
    pixels[:, width // 2:, 2] = 1.0
    image.pixels.foreach_set(pixels.ravel())
    path = os.path.join(OUT, "reference_half_red_half_blue.png")
    image.filepath_raw, image.file_format = path, 'PNG'
    image.save()
    result = call(bpy.ops.diffusion3d.texture_mesh, 'INVOKE_DEFAULT', prompt="", model="test-texture",
                  texture_size=1024, reference_image=path, reference_view='VIEW')
    check(result == {'RUNNING_MODAL'}, "Texture Selected with a reference image from the current view runs")
    job = jobs.JOBS[0]
    yield (lambda: job.done, 300, "the texture from the view")
    check(not job.error, f"it succeeded ({job.error})")
    ball = bpy.context.scene.objects[job.applied_to]
    texture = next(n.image for n in ball.active_material.node_tree.nodes if n.type == 'TEX_IMAGE')
    size = texture.size[0]
    texels = np.empty(size * size * 4, np.float32)
    texture.pixels.foreach_get(texels)
    texels = texels.reshape(size, size, 4)
    mesh, eye = ball.data, view.view_matrix.inverted().translation
    uv = mesh.uv_layers[ball.active_material.node_tree.nodes["UV Map"].uv_map].data  # the sphere's own UVMap
    sides = {"red": [0, 0], "blue": [0, 0]}  # side -> [texels that are its colour, points looked at]
    for loop in mesh.loops:
        point = ball.matrix_world @ mesh.vertices[loop.vertex_index].co
        normal = (point - ball.location).normalized()
        if normal.dot((eye - point).normalized()) < 0.6:  # well in sight only
            continue
        x = location_3d_to_region_2d(region, view, point).x
        if abs(x - width / 2) < 0.02 * width:  # away from the split
            continue
        side = "red" if x < width / 2 else "blue"
        u, v = uv[loop.index].uv
        r, _, b, _ = texels[min(size - 1, int(v * size)), min(size - 1, int(u * size))]
        sides[side][0] += (r > 0.6 and b < 0.3) if side == "red" else (b > 0.6 and r < 0.3)
        sides[side][1] += 1
    REPORT["figures"]["reference_view_agreement"] = {k: f"{a}/{n}" for k, (a, n) in sides.items()}
    check(all(n > 20 and a >= 0.9 * n for a, n in sides.values()),
          f"the texture agrees with Blender's projection of the view ({sides})")
    shading = ctx["area"].spaces.active.shading
    shading.color_type = 'TEXTURE'  # Solid mode, coloured by the image: the artist's quick look
    yield 1.0
    screenshot("texture_from_view.png")
    shading.color_type = 'MATERIAL'



os.makedirs(OUT, exist_ok=True)
drive(session() if PHASE == "first" else reopened())
