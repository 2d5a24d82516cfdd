"""The job driver: background polling threads, main-thread ticks, modal and blocking runs.

Network work happens in a worker thread (or inline in background mode); results are applied
to bpy data only on the main thread, in `tick()`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import bpy

from ..formats.blender_layout import MeshArrays
from ..formats.glb import GLBError, GLBScene, read_glb
from ..panels import previews, properties
from ..panels.preferences import backend_settings, get_prefs
from ..panels.redraw import tag_redraw
from ..scene_io import write_back
from ..scene_io.apply_repaint import apply_repaint, repainted_material
from ..scene_io.apply_reshape import apply_reshape
from ..scene_io.apply_texture import apply_texture, texture_notes
from ..scene_io.patch_mesh import patch_mesh, patchable
from ..service.client import BackendError
from ..service.session import LOCAL, BackendSettings, connect
from . import modal_timers
from .write_guard import find_target, write_blocked_by

TERMINAL = ("succeeded", "failed", "cancelled")
POLL_INTERVAL = 0.25  # seconds between GET /jobs/{id}
PREVIEW_INTERVAL = 1.0  # seconds between preview downloads
MAX_CANDIDATES = 8  # a gallery's images the add-on downloads, whatever a backend says
MAX_JOBS_LISTED = 30
KEPT_FILES = 200  # downloaded results (and previews) kept in the user folder
NEW_MESH_TASKS = ("text_to_3d", "image_to_3d")  # results written whole: their arrays are prepared by the worker
_counter = itertools.count(1)


@dataclass
class JobRequest:
    """What to send and where the result goes, gathered on the main thread."""

    task: str
    params: dict[str, Any]
    label: str  # name of the new object / shown in the job list
    model: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    target: str = ""  # object the result is written onto ("" = a new object) ...
    target_uid: int = 0  # ... found by its session_uid first, so a rename meanwhile does not lose it
    fingerprint: str = ""  # the target's mesh when sent (`texture_export.mesh_fingerprint`), for texture writes
    location: Optional[tuple] = None  # the target's world location: where an imported texture result goes
    note: str = ""  # what the artist should know about what was sent, shown with the result's notes
    repaint: Optional[dict] = None  # a repaint's material, node and image (`RepaintSource.as_target`)
    reshape_vertices: Optional[Any] = None  # reshape-sd: the Blender vertex of each uploaded vertex
    source_image: str = ""  # image-to-3D: the photo's file, kept with the new object
    resume: str = ""  # the backend id of a stopped job to go on from, exactly (its checkpoint): nothing is sent


class Job:
    """One job as the add-on sees it; written by its worker, read by the main thread."""

    def __init__(self, request: Optional[JobRequest], label: str = ""):
        self.key = next(_counter)
        self.request = request
        self.label = label or (request.label if request else "")
        self.task = request.task if request else ""
        self.backend_id = ""
        self.state = "submitting"
        self.phase = ""
        self.step = self.total = 0
        self.progress = 0.0
        self.eta_s: Optional[float] = None
        self.message = ""
        self.error = ""
        self.preview_path = ""
        self.result: Optional[GLBScene] = None
        self.arrays: Optional[MeshArrays] = None  # the result laid out for Blender, by the worker
        self.result_path = ""
        self.applied_to = ""  # object name once written into the scene
        self.write_failed = False  # the result could not be written (job.error says why; Import retries)
        self.texture_material = ""  # the material a texture result made on its object (Import checks it is still there)
        self.back_to_edit_mode = False  # the artist was in Edit Mode on the edited object
        self.waiting = ""  # why a finished result is not written yet (see write_blocked_by)
        self.detached = False  # its run ended before it did (e.g. another file was opened): Import places it
        self.importing = False  # an Import is reading or downloading its result (operators/import_result.py)
        self.has_current_state = False  # the backend can give where it stands (a long optimisation)
        self.has_checkpoint = False  # stopped, it can go on exactly where it stood (Continue)
        self.has_result = True  # False: the job made no mesh (a gallery to pick from)
        self.candidates = 0  # a gallery job's images on the backend (text to image to 3D) ...
        self.candidate_paths: list[str] = []  # ... downloaded, for the Jobs panel and Make 3D
        self.candidate_icons: list[int] = []  # set on the main thread by panels/previews.py
        self.followed_up = False  # its operator's after_written ran (operators/jobs.py JobOperator)
        self.model = request.model if request else ""  # as the backend names it once it has answered
        self.params: dict = dict(request.params) if request else {}  # the seed it drew included
        self.notes: list[str] = []  # what the model says about its result ("it does not know a dragon")
        self.seed: Optional[int] = None  # the seed it ran with, to make it again
        self.cancel_requested = False
        self.version = 0  # bumped on every change: the UI redraws when it moves
        self.seen_version = -1
        self.preview_version = 0
        self.preview_icon = 0  # set on the main thread by panels/previews.py
        self.created = time.time()

    @property
    def done(self) -> bool:
        """Over for its operator: failed, cancelled, or succeeded and written into the scene (or
        the writing failed). The backend says "succeeded" before the result is downloaded; until
        the worker has it (or fails), the job is not done, or a modal run would end without it."""
        return self.state in ("failed", "cancelled") or (
            self.state == "succeeded" and (bool(self.applied_to) or self.write_failed or self.gallery_only))

    @property
    def gallery_only(self) -> bool:
        """Succeeded with candidate images to pick from and no mesh (once they are downloaded)."""
        return self.state == "succeeded" and self.candidates > 0 and len(self.candidate_paths) == self.candidates \
            and not self.has_result

    @property
    def active(self) -> bool:
        return self.state not in TERMINAL

    @property
    def in_progress(self) -> bool:
        """Started in this session and not over yet (a past job listed from the backend is not)."""
        return self.request is not None and not self.done and not self.detached

    def fail(self, message: str) -> None:
        self.error, self.state = message, "failed"
        self.version += 1

    def set_waiting(self, why: str) -> bool:
        """Record why the result waits ("" when it does not); True when that changed (redraw)."""
        changed, self.waiting = why != self.waiting, why
        return changed

    def update(self, record: dict) -> None:
        self.backend_id = record.get("id", self.backend_id)
        self.state = record.get("state", self.state)
        self.phase = record.get("phase") or ""
        self.step = record.get("step") or 0
        self.total = record.get("total") or 0
        self.progress = float(record.get("progress") or 0.0)
        self.eta_s = record.get("eta_s")
        self.message = record.get("message") or ""
        self.has_current_state = record.get("has_current_state") is True
        self.has_checkpoint = record.get("has_checkpoint") is True
        self.has_result = record.get("has_result") is not False
        count = record.get("candidates")
        self.candidates = max(0, min(count, MAX_CANDIDATES)) if type(count) is int else 0
        self.model = str(record.get("model") or self.model)
        self.params = record.get("params") if isinstance(record.get("params"), dict) else self.params
        self.error = record.get("error") or self.error
        seed = (record.get("params") or {}).get("seed")
        self.seed = seed if isinstance(seed, int) else self.seed  # drawn by the backend when none was given
        self.version += 1


JOBS: list[Job] = []  # newest first; shown in the sidebar


def parse_extra_params(text: str) -> dict[str, Any]:
    """The operators' `extra_params` (a JSON object of further model parameters, for scripts)."""
    if not text:
        return {}
    try:
        extra = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"extra_params is not valid JSON: {exc}") from exc
    if not isinstance(extra, dict):
        raise ValueError("extra_params must be a JSON object")
    return extra


def sampling_params(operator, custom: bool, steps: int, guidance: float) -> dict[str, Any]:
    """`num_inference_steps` and `guidance_scale`: the operator's own where a script set them
    (0 and -1 ask for the model's), else the panel's when it overrides the model's (`custom`)."""
    given, params = operator.properties.is_property_set, {}
    if given("steps") and operator.steps > 0:
        params["num_inference_steps"] = operator.steps
    elif not given("steps") and custom:
        params["num_inference_steps"] = steps
    if given("guidance") and operator.guidance >= 0:
        params["guidance_scale"] = operator.guidance
    elif not given("guidance") and custom:
        params["guidance_scale"] = guidance
    return params


def find_job(key: int) -> Optional[Job]:
    return next((job for job in JOBS if job.key == key), None)


def add_job(job: Job) -> Job:
    """List a job first; beyond MAX_JOBS_LISTED the oldest finished ones go, never one in progress."""
    JOBS.insert(0, job)
    finished = [j for j in JOBS if not j.in_progress]
    while len(JOBS) > MAX_JOBS_LISTED and finished:
        gone = finished.pop()
        JOBS.remove(gone)
        previews.forget(gone.key)
    return job


# ---------------------------------------------------------------------------- worker side


def run_job(job: Job, settings: BackendSettings, echo: bool = False) -> None:
    """Submit, poll until the job ends, download and parse the result. Never raises."""
    try:
        _run_job(job, settings, echo)
    except BackendError as exc:
        _failed(job, LOCAL.died() if settings.mode == "LOCAL" and LOCAL.died() else str(exc))
    except GLBError as exc:
        _failed(job, f"the backend's result is not a readable GLB: {exc}")
    except Exception as exc:  # a worker must never take Blender down; the text says what broke
        _failed(job, f"unexpected error: {exc!r}")
    if echo and job.error:
        print(f"Diffusion 3D: job '{job.label}' failed: {job.error}", flush=True)


def _failed(job: Job, message: str) -> None:
    """A job that succeeded on the backend keeps its state when only the download or reading
    failed: the job list then offers Import, which tries again."""
    if job.state != "succeeded":
        job.fail(message)
        return
    job.error, job.write_failed = f"the result could not be fetched: {message} (Import tries again)", True
    job.version += 1


def _run_job(job: Job, settings: BackendSettings, echo: bool) -> None:
    client = connect(settings, start=True)
    if not properties.MODELS:  # the backend was started for this job: fill the sidebar's model list
        properties.MODELS[:] = client.models()
    if job.cancel_requested:
        job.state = "cancelled"
        job.version += 1
        return
    req = job.request
    if req.resume:
        job.update(client.resume(req.resume))
    else:
        job.update(client.submit(req.task, req.params, req.model, req.files, timeout=max(settings.request_timeout, 120.0)))
    req.files = {}  # sent: the uploads (a mesh, a reference photo) are not needed again
    last_preview, cancel_sent, last_echo, record = 0.0, False, "", {}
    while job.state not in TERMINAL:
        time.sleep(POLL_INTERVAL)
        if job.cancel_requested and not cancel_sent:
            client.cancel(job.backend_id)
            cancel_sent = True
        record = _poll(client, job, settings)
        job.update(record)
        if record.get("has_preview") and time.monotonic() - last_preview > PREVIEW_INTERVAL:
            last_preview = time.monotonic()
            _fetch_preview(client, job, settings)
        if echo:
            line = f"{job.phase} {job.step}/{job.total}"
            if line != last_echo:
                print(f"Diffusion 3D: {job.label}: {job.state} {line}", flush=True)
                last_echo = line
    if job.state == "succeeded":
        if record.get("has_preview"):  # the last preview (a model's look at its result) may be newer than ours
            _fetch_preview(client, job, settings)
        try:
            fetch_candidates(job, client, settings)
        except BackendError as exc:
            if not job.has_result:  # the images are the result
                raise
            print(f"Diffusion 3D: the candidate images of '{job.label}' were not fetched: {exc}", flush=True)
        if job.has_result:
            fetch_result(job, client, settings)


def _poll(client, job: Job, settings: BackendSettings, retries: int = 8) -> dict:
    """GET /jobs/{id}, riding out a few dropped connections (a busy or briefly unreachable remote)."""
    for attempt in range(retries):
        try:
            return client.job(job.backend_id)
        except BackendError as exc:
            gone = settings.mode == "LOCAL" and not LOCAL.is_running()
            if exc.status is not None or gone or attempt == retries - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def keep_download(settings: BackendSettings, folder: str, filename: str, data: bytes) -> str:
    """Write downloaded bytes under the extension's user folder; returns the path. Only the
    newest KEPT_FILES stay in each folder (the backend keeps as many jobs by default)."""
    path = os.path.join(settings.user_dir, folder, filename)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    with contextlib.suppress(OSError):  # pruned meanwhile by another job or Blender, in use (Windows): next time
        with os.scandir(os.path.dirname(path)) as entries:
            files = sorted(((e.stat().st_mtime, e.path) for e in entries if e.is_file()), reverse=True)
        for _, old in files[KEPT_FILES:]:
            os.remove(old)
    return path


def _fetch_preview(client, job: Job, settings: BackendSettings) -> None:
    """The latest preview, if it comes: a preview that fails to download never fails its job."""
    try:
        data = client.preview(job.backend_id)
    except BackendError as exc:
        print(f"Diffusion 3D: preview of '{job.label}' skipped: {exc}", flush=True)
        return
    if data:
        job.preview_path = keep_download(settings, "previews", f"{job.backend_id}.png", data)
        job.preview_version += 1
        job.version += 1


def download_result(job: Job, client, settings: BackendSettings) -> GLBScene:
    """Download the GLB, keep a copy in the user directory (never lose a result), parse it."""
    data = client.result(job.backend_id, timeout=max(settings.request_timeout, 120.0))
    job.result_path = keep_download(settings, "results", f"{job.backend_id}.glb", data)
    return read_glb(data)  # parsed here, off the main thread


def fetch_candidates(job: Job, client, settings: BackendSettings) -> None:
    """A gallery job's images, kept under the user folder for the Jobs panel and Make 3D."""
    paths = [keep_download(settings, "candidates", f"{job.backend_id}-{index}.png", client.candidate(job.backend_id, index))
             for index in range(job.candidates)]
    job.candidate_paths = paths
    job.version += 1


def fetch_result(job: Job, client, settings: BackendSettings) -> None:
    """The result for the job's own write-back (`tick`), laid out for Blender when it is new mesh."""
    result = download_result(job, client, settings)
    if job.task in NEW_MESH_TASKS:
        job.arrays = prepare_arrays(result)
    job.result = result  # last: the main thread writes the result back once it is set
    job.version += 1


def prepare_arrays(result: GLBScene) -> Optional[MeshArrays]:
    """The result's mesh in Blender's layout, so the main thread only copies arrays. None when
    it cannot be laid out: the main thread's write-back then reports why, as for any result."""
    try:
        return MeshArrays(result)
    except ValueError:
        return None


def start_worker(job: Job, settings: BackendSettings) -> threading.Thread:
    thread = threading.Thread(target=run_job, args=(job, settings), name=f"diffusion3d-job-{job.key}", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------------------- main-thread side


def apply_result(context, job: Job, new_object: bool = False) -> Optional[bpy.types.Object]:
    """Write a finished job's result into the scene (main thread). Records failures on the job."""
    prefs = get_prefs(context)
    storage = prefs.texture_storage if prefs else 'PACK'
    images_before = set(bpy.data.images)
    try:
        target = job.request.target if job.request and not new_object else ""
        if target:
            obj = find_target(context, job.request)
            if obj is None:
                raise LookupError(f"the object '{target}' no longer exists; import the result from the job list")
            editing = obj.mode == 'EDIT'
            if job.task == "texture" and job.request.repaint:  # the image is replaced in its node, nothing else
                obj = apply_repaint(context, obj, job.result, job.request.repaint, storage, job.request.fingerprint)
            elif job.task == "texture":  # the artist's mesh stays: new UV map, material and slot
                obj = apply_texture(context, obj, job.result, storage, job.request.fingerprint)
            elif job.task == "edit_part" and job.request.reshape_vertices is not None:  # only moved vertices written
                obj = apply_reshape(context, obj, job.result, job.request.reshape_vertices, job.request.fingerprint)
            elif job.task == "edit_part" and (patch := patchable(obj, job.result)) is not None:
                obj = patch_mesh(context, obj, job.result, patch, storage)  # the artist's own mesh: kept polygons stay
            else:
                obj = write_back.replace_mesh(context, obj, job.result, storage, job.arrays)
            job.back_to_edit_mode = editing  # writing needs Object Mode; the artist goes back
        else:
            location = job.request.location if job.request else None  # a texture's object's, a refined draft's
            obj = write_back.new_object(context, job.label, job.result, storage, job.arrays, location)
    except Exception as exc:  # keep the result file: the job list offers Import again
        job.error = f"could not write the result into the scene: {exc}"
        job.write_failed = True
        job.version += 1
        return None
    job.applied_to, job.write_failed = obj.name, False
    if job.task == "texture" and not new_object:
        job.texture_material = repainted_material(obj, job.request.repaint) or obj.data.materials[-1].name
    job.notes = [job.request.note] if job.request and job.request.note else []
    job.notes += [str(note) for note in job.result.metadata.get("notes", []) if note]
    if job.task == "texture":
        job.notes += texture_notes(obj)
    packed = write_back.packing_note(storage, [image for image in bpy.data.images if image not in images_before])
    if packed:
        job.notes.append(packed)
    job.result = job.arrays = None  # written: Import reads the kept file again (textures can be 100s of MB)
    job.version += 1
    return obj


def tick(context, jobs: list[Job], undo: bool = False) -> list[bpy.types.Object]:
    """One main-thread step: apply finished results, load new previews, tag redraws."""
    written = []
    changed = False
    for job in jobs:
        if job.version != job.seen_version:
            job.seen_version = job.version
            changed = True
            if job.preview_version:
                previews.load(job)
            if len(job.candidate_icons) != len(job.candidate_paths):
                previews.load_candidates(job)
        if job.state == "succeeded" and job.result is not None and not (job.applied_to or job.write_failed):
            waiting = write_blocked_by(context, job)
            changed |= job.set_waiting(waiting)
            if waiting:
                continue
            obj = apply_result(context, job)
            if obj is not None:
                written.append(obj)
                if undo:  # modal runs end without the operator's own undo push (see JobOperator.modal)
                    bpy.ops.ed.undo_push(message=f"Diffusion 3D: {job.label}")
                if job.back_to_edit_mode:  # after the push: one undo step, whose undo returns here too
                    with context.temp_override(active_object=obj, object=obj):
                        bpy.ops.object.mode_set(mode='EDIT')
    if changed:
        tag_redraw(context)
    return written


class JobOperator:
    """Mixin for operators that run backend jobs: modal in the UI, blocking in background mode.

    Subclasses implement `build_requests(context) -> list[JobRequest]` and raise ValueError
    with a readable message when the inputs are wrong.
    """

    _timer = None
    _jobs: list = []

    def build_requests(self, context) -> list[JobRequest]:
        raise NotImplementedError

    def after_written(self, context, job: Job) -> None:
        """Called once for each of this run's jobs whose result was written into the scene (a
        follow-up step, e.g. repainting a reshaped region); nothing by default."""

    def after_candidates(self, context, job: Job) -> None:
        """Called once for each of this run's gallery jobs when its images are here (e.g. to
        make the picked ones 3D); nothing by default."""

    def _follow_up(self, context, jobs: list[Job]) -> None:
        for job in jobs:
            if job.followed_up:
                continue
            if job.applied_to:
                job.followed_up = True
                self.after_written(context, job)
            elif job.gallery_only:
                job.followed_up = True
                self.after_candidates(context, job)

    def execute(self, context):
        try:
            requests_ = self.build_requests(context)
        except (ValueError, OSError, BackendError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        settings = backend_settings(context)
        jobs = [add_job(Job(request)) for request in requests_]
        if bpy.app.background or context.window is None:
            return self.run_blocking(context, jobs, settings)
        for job in jobs:
            start_worker(job, settings)
        self._jobs = jobs
        self._timer = modal_timers.add(context, 0.1)
        context.window_manager.modal_handler_add(self)
        tag_redraw(context)
        return {'RUNNING_MODAL'}

    def invoke(self, context, event):
        return self.execute(context)

    def run_blocking(self, context, jobs: list[Job], settings: BackendSettings):
        for job in jobs:
            run_job(job, settings, echo=True)
        if any(write_blocked_by(context, job) for job in jobs if job.state == "succeeded"):
            bpy.ops.object.mode_set(mode='OBJECT')  # a script in another mode: as Blender's add operators do
        tick(context, jobs)
        self._follow_up(context, jobs)
        return self.finish(jobs)

    def modal(self, context, event):
        if event.type != 'TIMER':  # any timer will do: a tick is cheap and idempotent
            return {'PASS_THROUGH'}
        tick(context, self._jobs, undo=True)
        self._follow_up(context, self._jobs)
        if not all(job.done for job in self._jobs):
            return {'PASS_THROUGH'}
        modal_timers.remove(context, self._timer)
        self.finish(self._jobs)
        # Each result already got its own undo step in tick(); ending as CANCELLED keeps the
        # window manager from pushing a second, identical one (and from offering a redo that
        # would rerun the whole job).
        return {'CANCELLED'}

    def cancel(self, context):
        """Blender ends the run (e.g. another file is opened): the jobs go on, their results wait
        in the job list for Import."""
        modal_timers.remove(context, self._timer)
        for job in self._jobs:
            job.detached = True

    def finish(self, jobs: list[Job]) -> set:
        errors = [f"{job.label}: {job.error}" for job in jobs if job.error]
        if not bpy.app.background:  # the status bar holds one short line; the job list shows the rest
            errors = [_status_line(e) for e in errors]
        written = [job.applied_to for job in jobs if job.applied_to]
        cancelled = [job.label for job in jobs if job.state == "cancelled"]
        for message in errors:
            self.report({'ERROR'}, message)
        if cancelled and not errors:
            self.report({'WARNING'}, f"Cancelled: {', '.join(cancelled)}")
        if written and not errors:
            done = {"texture": "Textured", "edit_part": "Edited"}.get(jobs[0].task, "Generated")
            self.report({'INFO'}, f"{done} {', '.join(repr(name) for name in written)}")
        galleries = [job for job in jobs if job.gallery_only]
        for job in galleries:
            self.report({'INFO'}, f"{job.label}: {job.candidates} candidates drawn; pick in the job list (Make 3D)")
        for job in jobs:
            for note in job.notes:
                self.report({'INFO'}, f"{job.label}: {note}")
        # Anything written gets its undo step (FINISHED), even when another object's job failed:
        # the error reports still make bpy.ops raise in a batch script. A gallery is done too.
        return {'FINISHED'} if written or galleries else {'CANCELLED'}


class ActiveMeshOperator(JobOperator):
    """A job operator on the active object, which must be a mesh."""

    poll_message = "Select a mesh object"

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != 'MESH':
            cls.poll_message_set(cls.poll_message)
            return False
        return True


def _status_line(text: str, limit: int = 110) -> str:
    """An error's first line, cut to what a status bar shows, pointing at the job list for the rest."""
    line = text.split("\n", 1)[0].rstrip(":")
    if len(line) <= limit and line == text:
        return line
    return (line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0].rstrip(".,;:") + "…") + " (see the job list)"


def stop_all() -> None:
    """On unregister: stop the local backend (its jobs' workers then end with an error) and the
    timers of job runs still in progress."""
    modal_timers.remove_all()
    LOCAL.stop()
