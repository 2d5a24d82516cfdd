"""What tests/gui/gui_session.py drives Blender's window with: the viewport context a sidebar
button runs in, screenshots, the main-thread probes, and the app timer that advances a session
(a generator of waits) while the window manager runs."""

import json
import os
import shutil
import subprocess
import sys
import time
import traceback

import bpy

MODULE = "bl_ext.user_default.diffusion3d"
OUT = os.environ["DIFFUSION3D_GUI_OUT"]
PHASE = os.environ.get("DIFFUSION3D_GUI_PHASE", "first")  # "reopen": Blender started again
REPORT = {"ok": False, "checks": [], "figures": {}, "blender": bpy.app.version_string}


def check(condition, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    REPORT["checks"].append(what)
    print("GUI check:", what, flush=True)


def view3d() -> dict:
    """The context a sidebar button runs in: the window, the 3D viewport, its main region."""
    window = bpy.context.window_manager.windows[0]
    area = next(a for a in window.screen.areas if a.type == 'VIEW_3D')
    region = next(r for r in area.regions if r.type == 'WINDOW')
    return {"window": window, "area": area, "region": region}


def call(operator, *args, **kwargs):
    with bpy.context.temp_override(**view3d()):
        return operator(*args, **kwargs)


def act(operator, **kwargs):
    """An artist's action: as a click runs it, with its own undo step (scripted calls push none)."""
    return call(operator, 'EXEC_DEFAULT', True, **kwargs)


def screenshot(name: str) -> None:
    """The X screen as a person sees it (Blender's own screenshot reads a black buffer under Xvfb's
    software OpenGL), else Blender's."""
    path = os.path.join(OUT, name)
    if shutil.which("import") and os.environ.get("DISPLAY"):
        subprocess.run(["import", "-window", "root", path], check=True, timeout=30)
    else:
        call(bpy.ops.screen.screenshot, filepath=path)


# ---------------------------------------------------------------- main-thread measurements

class MainThreadProbe:
    """A 5 ms app timer: the gaps between its calls are how long the UI was busy (stalled)."""

    def __init__(self):
        self.stamps: list[float] = []
        self.recording = False
        bpy.app.timers.register(self._tick, first_interval=0.0, persistent=True)

    def _tick(self):
        if self.recording:
            self.stamps.append(time.perf_counter())
        return 0.005

    def record(self, on: bool) -> None:
        self.recording = on
        if on:
            self.stamps = []

    def gaps_ms(self) -> list[float]:
        return [1000 * (b - a) for a, b in zip(self.stamps, self.stamps[1:])]


def time_ticks(jobs_module) -> list:
    """Wrap the job driver's tick: (milliseconds, objects written) for every modal tick."""
    original, samples = jobs_module.tick, []

    def timed(context, jobs, undo=False):
        start = time.perf_counter()
        written = original(context, jobs, undo)
        samples.append((1000 * (time.perf_counter() - start), len(written)))
        return written

    jobs_module.tick = timed
    return samples


def _timed(draw, times: list):
    def timed(self, context):  # Blender checks the argument count
        start = time.perf_counter()
        draw(self, context)
        times.append(1000 * (time.perf_counter() - start))
    return timed


def time_panel_draws(sidebar_module) -> dict:
    """Wrap the sidebar panels' draw methods: milliseconds of every real draw, by panel. (Blender
    holds on to a registered class's methods: re-register after wrapping, or it crashes.)"""
    samples = {}
    for panel in sidebar_module.classes:
        bpy.utils.unregister_class(panel)
        panel.draw = _timed(panel.draw, samples.setdefault(panel.bl_label, []))
        bpy.utils.register_class(panel)
    return samples



def drive(steps):
    """An app timer that advances the session; every wait lets the window manager run."""
    waiting = {"until": None}

    def step():
        try:
            if waiting["until"] is not None:
                predicate, deadline, what = waiting["until"]
                if not predicate():
                    if time.time() > deadline:
                        raise TimeoutError(f"gave up waiting for {what}")
                    return 0.05
                waiting["until"] = None
            wait = next(steps)
            if isinstance(wait, tuple):
                predicate, timeout, what = wait
                waiting["until"] = (predicate, time.time() + timeout, what)
                return 0.05
            return wait
        except StopIteration:
            pass
        except Exception:
            REPORT["error"] = traceback.format_exc()
            print(REPORT["error"], file=sys.stderr, flush=True)
        finish()
        return None

    bpy.app.timers.register(step, first_interval=1.0)


def finish():
    with open(os.path.join(OUT, f"gui_report_{PHASE}.json"), "w") as handle:
        json.dump(REPORT, handle, indent=2)
    print("GUI report:", json.dumps(REPORT["figures"]), flush=True)
    call(bpy.ops.wm.quit_blender)
