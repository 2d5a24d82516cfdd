"""Jobs: requests checked before they are queued, and one worker thread that owns the accelerator.

Records and files are kept by the job store (job_store.py). Queued and running jobs are also
kept in memory: their progress changes every step and is written to disk only when the state
changes. A full or read-only disk refuses a submit with StorageFull and fails a running job
with the same words. What runs the pipelines is an executor: this process's accelerator
(local_executor.py), or replicas on a Ray cluster (cluster/ray_executor.py), one worker thread
per job it can run at once.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, BinaryIO, Optional

import numpy as np

from .errors import GenerationFailed, InputError, JobCancelled, ModelUnavailable
from .images import check_image
from .job_run import CHECKPOINT, JobOutput, StepControl, png_bytes
from .job_store import JobStore, StorageFull, lock_cache_dir, write_atomic
from .models import TASK_FILES, UPLOADS, LoadOptions, ModelEntry, get_entry, resolve_params
from .params import draw_seed

log = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "cancelled")
# How long a request for a running job's current state waits for its next step (a score-
# distillation step on a CPU takes seconds; making the state, a mesh extraction, a few more).
CURRENT_STATE_TIMEOUT_S = 300.0
# Requests that may wait for a running job's current state at once: each holds one of the
# server's worker threads, which a flood of them must not use up.
MAX_STATE_WAITERS = 4
DEFAULT_KEEP_JOBS = 200  # finished jobs kept with their results; older ones are deleted
PREVIEW_INTERVAL_S = 0.25  # a PNG per step would cost more than a fast step
CAPACITY_POLL_S = 1.0  # jobs waiting for room ask the executor this often whether it grew


class StateRequestsBusy(RuntimeError):
    """Too many requests already wait for a running job's current state."""


class BackendStopping(RuntimeError):
    """A job was submitted while the backend shuts down."""


def describe_error(exc: BaseException, device: str) -> str:
    """The text a failed job keeps: the user's error as is, the rest named for what it is.

    Args:
        exc: What the pipeline raised.
        device: The device it ran on, for out-of-memory messages.

    Returns:
        A readable sentence.
    """
    if isinstance(exc, (InputError, ModelUnavailable, GenerationFailed)):
        return str(exc)
    memory = _memory_that_ran_out(exc, device)
    if memory == "system":  # offload or the CPU would only need more of it
        return "out of system memory: lower the resolution (grid, view or texture size), or close programs that hold memory"
    if memory == "device":
        return (f"out of memory on {device}: lower the resolution (grid, view or texture size), "
                "turn on model CPU offload, or use the CPU")
    return f"internal error: {type(exc).__name__}: {exc}"


def is_out_of_memory(exc: BaseException) -> bool:
    return bool(_memory_that_ran_out(exc, ""))


def _memory_that_ran_out(exc: BaseException, device: str) -> str:
    """Which memory `exc` says ran out: "device" (the accelerator's), "system" (RAM), or "" (none)."""
    text = str(exc).lower()
    # torch's CPU allocator: "can't allocate memory" (Linux, macOS), "not enough memory" (Windows).
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and (
            "defaultcpuallocator" in text or "can't allocate memory" in text or "not enough memory" in text)):
        return "system"
    torch = sys.modules.get("torch")
    device_error = torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ()))
    # MPS and older CUDA builds raise a plain RuntimeError naming it.
    if device_error or (isinstance(exc, RuntimeError) and "out of memory" in text):
        return "system" if str(device).startswith("cpu") else "device"
    return ""


def checked_request(entry: ModelEntry, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    """Everything a request can be refused for before a model loads (the server and the CLI
    alike): its parameters (defaults filled in, a seed drawn when none was given), its uploads
    and the model's own check.

    Raises:
        InputError: naming what is wrong.
    """
    params = resolve_params(entry, params)
    if params["seed"] is None:
        params["seed"] = draw_seed()
    check_inputs(entry.task, files)
    if entry.check is not None:
        entry.check(params, files)
    return params


def check_inputs(task: str, files: dict[str, bytes]) -> None:
    """Refuse missing, unknown or unreadable uploads before a job is queued.

    Args:
        task: The job's task.
        files: Upload name -> bytes (mesh, image, face_mask, mesh_b, texture).

    Raises:
        InputError: naming the file and what is wrong with it.
    """
    from .geometry.glb import read_glb_meshes

    unknown = sorted(set(files) - set(UPLOADS))
    if unknown:
        raise InputError(f"unknown upload(s) {', '.join(unknown)}; accepted: {', '.join(UPLOADS)}")
    missing = [name for name in TASK_FILES[task] if name not in files]
    if missing:
        raise InputError(f"task {task} needs the file(s) {', '.join(missing)}; add them to the form")
    for name in ("mesh", "mesh_b"):
        if name in files:
            try:
                parts, _ = read_glb_meshes(files[name])
            except InputError as e:
                raise InputError(f"{name}: {e}") from None
            broken = next((p.name for p in parts if not np.isfinite(p.vertices).all()), None)
            if broken is not None:  # refused now, not after a model has loaded
                raise InputError(f"{name}: part {broken!r} has vertices that are NaN or infinite; fix or remove them")
            if name == "mesh" and "face_mask" in files:
                triangles = sum(len(p.faces) for p in parts)
                if len(files["face_mask"]) != triangles:
                    raise InputError(
                        f"face_mask has {len(files['face_mask'])} bytes but mesh has {triangles} triangles; "
                        "send one byte per triangle in the GLB's order"
                    )
    if "face_mask" in files and "mesh" not in files:
        raise InputError("face_mask refers to the triangles of mesh, but no mesh was sent")
    for name in ("image", "texture"):
        if name in files:
            check_image(files[name], name)


def _new_record(task: str, model: str, params: dict[str, Any]) -> dict[str, Any]:
    """A queued job's record, as the job store keeps it and the API sends it."""
    return {
        "id": uuid.uuid4().hex, "task": task, "model": model, "params": params,
        "state": "queued", "phase": "queued", "step": 0, "total": 0, "progress": 0.0, "eta_s": None,
        "message": "", "error": None, "has_preview": False, "has_result": False, "result_metadata": None,
        "has_current_state": False, "has_checkpoint": False, "resumed_from": None, "candidates": 0,
        "ran_on": None, "created_at": time.time(), "started_at": None, "finished_at": None,
    }


class _Job:
    """A queued or running job: its live record and controls (its uploads wait on disk)."""

    def __init__(self, record: dict[str, Any], entry: ModelEntry):
        self.record, self.entry = record, entry
        self.control = StepControl()
        self.states_written = 0  # counts snapshots, so a waiter knows when one newer than its ask exists


class JobManager:
    """Accepts jobs, runs them on an executor's worker threads, answers for their state.

    Args:
        cache_dir: Where the database, results and previews go.
        entries: The model registry.
        load_options: Device, dtype and download policy for loading pipelines.
        keep_jobs: Finished jobs kept (with their results) before the oldest are deleted.
        executor: What runs the pipelines (default: this process, `LocalExecutor`); it runs
            `executor.capacity()` jobs at once (a number that may change: replicas on a cluster
            that machines join), never more than `executor.slots`; the manager closes it.
    """

    def __init__(self, cache_dir: str | os.PathLike, entries: list[ModelEntry], load_options: LoadOptions,
                 keep_jobs: int = DEFAULT_KEEP_JOBS, executor=None):
        from .local_executor import LocalExecutor

        self._lock_file = lock_cache_dir(Path(cache_dir))
        try:
            self.store = JobStore(cache_dir)
        except BaseException:
            self._lock_file.close()
            raise
        self.entries, self.keep_jobs = entries, keep_jobs
        self.executor = executor or LocalExecutor(load_options)
        interrupted = self.store.mark_interrupted()
        if interrupted:
            log.warning("marked %d job(s) failed: the backend stopped while they were queued or running", interrupted)
        partial = self.store.remove_partial_files()  # a kill -9 mid-write leaves them
        if partial:
            log.info("removed %d partly written file(s) a stopped backend left", partial)
        with contextlib.suppress(sqlite3.Error):  # a full disk: pruned after the next job instead
            self.store.prune(keep_jobs)
        self._cond = threading.Condition()
        self._state_waiters = 0  # requests waiting for a running job's current state (see current_state)
        self._queue: collections.deque[_Job] = collections.deque()
        self._live: dict[str, _Job] = {}
        self._running: set[_Job] = set()
        self._closing = False
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads, one per job the executor runs at once (idempotent)."""
        while len(self._threads) < self.executor.slots:
            thread = threading.Thread(target=self._work, name=f"diffusion3d-worker-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the workers: running jobs stop at their next step and are marked failed, queued
        ones stay queued (and are marked failed on the next start)."""
        with self._cond:
            self._closing = True
            for job in self._running:
                job.control.cancel.set()
                self._signal(job)
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():  # stuck in a model load: let it die with the process
                log.warning("a running job did not stop within %.0f s", timeout)
                return
        self.executor.close()
        self.store.close()
        self._lock_file.close()  # closing the file releases the lock

    # --- requests -----------------------------------------------------------------------

    def submit(self, task: str, model: Optional[str], params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        """Validate a request and queue it.

        Args:
            task: One of models.TASKS.
            model: Model name, or None for the task's default.
            params: Request parameters; a missing or null seed is drawn here and stored.
            files: Uploads by name.

        Returns:
            The new job record (state "queued").

        Raises:
            InputError: anything wrong with the request, in words.
            StorageFull: the cache folder cannot take the uploads or the record (StorageReadOnly
                when it is not writable); nothing of the job is left behind.
        """
        entry = get_entry(task, model, self.entries)
        params = checked_request(entry, params, files)
        return self._queue_job(_Job(_new_record(task, entry.name, params), entry), files)

    def resume(self, job_id: str) -> dict[str, Any]:
        """Queue a new job that goes on exactly where a cancelled or interrupted one stopped: the
        same model, settings and uploads, from its checkpoint, to the result it would have had.

        Returns:
            The new job record (state "queued", `resumed_from` the old job's id).

        Raises:
            KeyError: no such job.
            LookupError: it kept no checkpoint to go on from (the message says why).
            StorageFull: as for submit.
        """
        old = self.get(job_id)
        if old is None:
            raise KeyError(job_id)
        if old["state"] not in ("cancelled", "failed"):
            raise LookupError(f"job {job_id} is {old['state']}: only a cancelled or interrupted job can be resumed")
        try:
            entry = get_entry(old["task"], old["model"], self.entries)
        except InputError:  # a model this backend no longer serves
            entry = None
        path = self.store.checkpoint_path(job_id)
        if entry is None or not entry.resumable:
            raise LookupError(f"model {old['model']} cannot resume a job; submit it again")
        if not path.is_file():
            raise LookupError(f"job {job_id} kept no checkpoint (it stopped before its first, or the oldest "
                              "checkpoints were deleted to save space); submit it again")
        try:
            source = path.open("rb")  # copied a chunk at a time: a checkpoint may be hundreds of megabytes
        except OSError as e:
            raise LookupError(f"job {job_id}'s checkpoint cannot be read ({e}); submit it again") from None
        record = {**_new_record(old["task"], entry.name, old["params"]), "resumed_from": job_id}
        with source:
            return self._queue_job(_Job(record, entry), {}, {CHECKPOINT: source})

    def _queue_job(self, job: _Job, files: dict[str, bytes], copies: Optional[dict[str, BinaryIO]] = None) -> dict[str, Any]:
        """Keep a checked job's uploads (and `copies`, read from open files) and record, and
        queue it; its live record."""
        record = job.record
        try:
            self.store.save_uploads(record["id"], files, copies)
            with self._cond:
                if self._closing:
                    raise BackendStopping("the backend is shutting down; start it again and resubmit")
                self.store.save(record)
                self._live[record["id"]] = job
                self._queue.append(job)
                self._cond.notify()
        except Exception as e:
            self.store.drop_job_files(record["id"])  # first: the free space the message names is the real one
            needed = sum(map(len, files.values())) + sum(os.fstat(f.fileno()).st_size for f in (copies or {}).values())
            raise self.store.storage_problem(e, needed or len(json.dumps(record)),
                                             "this upload" if files or copies else "this job's record") or e
        return self._view(job)

    def get(self, job_id: str) -> Optional[dict[str, Any]]:
        """The job record, live when the job is queued or running; None for an unknown id."""
        with self._cond:
            job = self._live.get(job_id)
            if job is not None:
                return self._view(job)
        return self.store.get(job_id)

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Job records, newest first."""
        records = self.store.list(limit)
        with self._cond:
            return [self._view(self._live[r["id"]]) if r["id"] in self._live else r for r in records]

    def cancel(self, job_id: str) -> Optional[dict[str, Any]]:
        """Cancel a job: a queued one at once, a running one at its next step.

        Returns:
            The record after the request (a finished job is returned unchanged); None for
            an unknown id.
        """
        with self._cond:
            job = self._live.get(job_id)
            if job is not None and job in self._queue:
                self._queue.remove(job)
                del self._live[job_id]
                self.store.drop_uploads(job_id)
                job.record.update(state="cancelled", message="cancelled before it started", finished_at=time.time())
                self._record_end(job.record)
                return dict(job.record)
            if job is not None and job.record["state"] not in FINISHED:  # (it may have just finished)
                job.control.cancelled_by_user = True
                job.control.cancel.set()
                self._signal(job)
                job.record["message"] = "cancelling at the next step"
                return self._view(job)
        return self.store.get(job_id)

    def queue_length(self) -> int:
        """Jobs not finished yet (queued plus running)."""
        with self._cond:
            return len(self._live)

    def replicas(self) -> Optional[list[dict[str, Any]]]:
        """The executor's replicas and the models each holds (None: this process runs the jobs)."""
        return self.executor.replicas()

    def _view(self, job: _Job) -> dict[str, Any]:
        # Caller holds self._cond. A queued job's message says where it stands.
        record = dict(job.record)
        if record["state"] == "queued":
            ahead = self._queue.index(job) + len(self._running) if job in self._queue else 0
            record["message"] = f"queued, {ahead} job(s) ahead" if ahead else "queued, next"
        return record

    def _signal(self, job: _Job) -> None:
        """Tell the executor the job's controls changed (caller holds self._cond); never raises."""
        try:
            self.executor.signal(job.record["id"], job.control)
        except Exception as e:  # the job then runs on, as if the request came a moment too late
            log.warning("job %s: its executor could not be told of a cancel or state request: %s", job.record["id"], e)

    # --- workers ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._queue or len(self._running) >= self.executor.capacity()):
                    # with jobs waiting for room, look again soon: the executor may have grown
                    self._cond.wait(CAPACITY_POLL_S if self._queue else None)
                if self._closing:
                    return
                job = self._queue.popleft()
                self._running.add(job)
                job.record.update(state="running", phase="load", started_at=time.time(), message=f"loading model {job.entry.name}")
                try:
                    self.store.save(job.record)
                except sqlite3.Error as e:  # it runs all the same: live in memory, its end recorded later
                    log.warning("job %s: could not record that it started: %s", job.record["id"], e)
            try:
                self._run(job)
            except Exception as e:  # a bug in the job machinery itself: log it, keep the worker alive
                log.exception("job %s could not be recorded", job.record["id"])
                self.store.drop_uploads(job.record["id"])
                with self._cond:
                    job.record.update(state="failed", eta_s=None, error=describe_error(e, "?"), finished_at=time.time())
                    self._record_end(job.record)
            finally:
                with self._cond:
                    self._running.discard(job)
                    self._live.pop(job.record["id"], None)
                with contextlib.suppress(Exception):  # a full disk must not stop the worker
                    self.store.prune(self.keep_jobs)

    def _run(self, job: _Job) -> None:
        record = job.record
        try:
            # an executor in this process reads a checkpoint from its file, not from a copy in memory
            files = self.store.read_uploads(record["id"], as_paths=(CHECKPOINT,) if self.executor.reads_files else ())
            output = self.executor.run(record["id"], job.entry, record["params"], files, job.control,
                                       _Recorder(self, job))
            outcome = self._store_output(record["id"], output)
        except JobCancelled:
            if job.control.cancelled_by_user:
                outcome = dict(state="cancelled", eta_s=None, message="cancelled")
            else:
                outcome = dict(state="failed", eta_s=None, message="", error="the backend stopped while this job ran")
        except StorageFull as e:
            outcome = dict(state="failed", eta_s=None, message="", error=str(e))
            log.error("job %s failed: %s", record["id"], e)
        except Exception as e:  # every failure becomes the job's error text, never a dead worker
            outcome = dict(state="failed", eta_s=None, message="", error=describe_error(e, self.executor.device))
            if not isinstance(e, (InputError, ModelUnavailable, GenerationFailed)):
                log.error("job %s failed:\n%s", record["id"], traceback.format_exc())
            self.executor.failed(e)
        self.store.drop_uploads(record["id"])  # before anyone can see the job over: its inputs go with it
        if outcome["state"] == "succeeded":
            outcome["has_current_state"] = outcome["has_checkpoint"] = False  # the result is where it ended:
            self.store.current_state_path(record["id"]).unlink(missing_ok=True)  # a mid-run state goes
            self.store.checkpoint_path(record["id"]).unlink(missing_ok=True)
        else:
            outcome["has_current_state"] = self.store.current_state_path(record["id"]).is_file()
            outcome["has_checkpoint"] = self.store.checkpoint_path(record["id"]).is_file()
            if outcome["has_checkpoint"] and outcome["state"] == "failed":
                outcome["error"] += "; it can be resumed from its checkpoint"
        with self._cond:
            record.update(outcome, finished_at=time.time())
            self._record_end(record)
            self._cond.notify_all()  # anyone waiting for its current state

    def _store_output(self, job_id: str, output: JobOutput) -> dict[str, Any]:
        """Write a finished job's files (before anyone can see it succeed); its record's new fields."""
        for index, data in enumerate(output.candidates):
            self.store.write_file(self.store.candidate_path(job_id, index), data, "this job's candidate images")
        if output.glb is not None:
            self.store.write_result(job_id, output.glb)
        return dict(state="succeeded", progress=1.0, eta_s=0.0, candidates=len(output.candidates),
                    message="done" if output.glb is not None else "pick a candidate",
                    has_result=output.glb is not None, result_metadata=output.metadata)

    def _store_current_state(self, job: _Job, glb: bytes) -> None:
        """Keep a running job's current state as current.glb; never raises: a state that cannot
        be written is logged, and the job goes on."""
        try:
            write_atomic(self.store.current_state_path(job.record["id"]), glb)
        except Exception as e:
            log.warning("job %s: its current state could not be saved: %s", job.record["id"], e)
        with self._cond:
            job.control.state_wanted.clear()
            job.states_written += 1
            self._cond.notify_all()

    def _store_checkpoint(self, job: _Job, data: bytes) -> None:
        """Keep a running job's checkpoint; never raises: one that cannot be written is logged,
        and the job goes on (a full disk fails it when its result is written)."""
        try:
            write_atomic(self.store.checkpoint_path(job.record["id"]), data)
        except Exception as e:
            log.warning("job %s: its checkpoint could not be saved: %s", job.record["id"], e)
            return
        job.record["has_checkpoint"] = True

    def current_state(self, job_id: str, timeout: float = CURRENT_STATE_TIMEOUT_S) -> Path:
        """The GLB of where a job stands: a running job makes it at its next step (this waits
        for that, up to `timeout` seconds); a cancelled one saved it when it stopped.

        Raises:
            KeyError: no such job.
            LookupError: the job has no current state to give (the message says why).
            TimeoutError: the running job did not reach its next step in time.
            StateRequestsBusy: MAX_STATE_WAITERS requests wait already (each holds a server thread).
        """
        with self._cond:
            job = self._live.get(job_id)
            if job is not None and job.record["state"] == "running" and job.record.get("has_current_state"):
                if self._state_waiters >= MAX_STATE_WAITERS:
                    raise StateRequestsBusy(f"{MAX_STATE_WAITERS} requests for a current state are waiting already; "
                                            "ask again in a moment")
                asked = job.states_written
                job.control.asks += 1
                job.control.state_wanted.set()
                self._signal(job)
                deadline = time.monotonic() + timeout
                self._state_waiters += 1
                try:
                    while job.states_written == asked and job.record["state"] == "running":
                        if not self._cond.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() >= deadline:
                            raise TimeoutError(f"job {job_id} did not reach its next step within {timeout:.0f} s")
                finally:
                    self._state_waiters -= 1
            record = job.record if job is not None else self.store.get(job_id)
        if record is None:
            raise KeyError(job_id)
        path = self.store.current_state_path(job_id)
        if path.is_file():
            return path
        if record["state"] == "succeeded":
            raise LookupError(f"job {job_id} has succeeded: its result (/jobs/{job_id}/result) is where it ended")
        if record["state"] == "queued":
            raise LookupError(f"job {job_id} has not started yet")
        if not record.get("has_current_state"):
            raise LookupError(f"model {record['model']} has no current state to give before it ends")
        raise LookupError(f"job {job_id} stopped without saving its current state")

    def _record_end(self, record: dict[str, Any]) -> None:
        """Write a finished job's record (caller holds self._cond); never raises.

        A record the database refuses is kept in memory. A success among them becomes a
        failure saying why, its result deleted: after a restart its stale "running" row would
        fail it anyway, and the space helps the record in.
        """
        try:
            self.store.save(record)
        except sqlite3.Error as e:
            problem = self.store.storage_problem(e, len(json.dumps(record)), "the job's record")
            log.error("job %s: its end could not be recorded: %s", record["id"], problem or e)
            if record["state"] == "succeeded":
                with contextlib.suppress(OSError):
                    self.store.result_path(record["id"]).unlink()
                record.update(state="failed", message="", has_result=False, result_metadata=None,
                              error=str(problem or f"the job's record could not be written: {e}"))
            self.store.keep_unsaved(record)



class _Recorder:
    """A running job's news into its live record (see job_run.Report)."""

    def __init__(self, manager: JobManager, job: _Job):
        self.manager, self.job, self.record = manager, job, job.record
        self.preview_path = manager.store.preview_path(job.record["id"])
        now = time.monotonic()
        self.phase, self.phase_t0, self.last, self.last_preview = None, now, now, -1e9
        self.preview_failed = False

    def note(self, message: str) -> None:
        self.record["message"] = message

    def placed(self, where: str) -> None:
        self.record["ran_on"] = where

    def state(self, glb: bytes) -> None:
        self.manager._store_current_state(self.job, glb)

    def checkpoint(self, data: bytes) -> None:
        self.manager._store_checkpoint(self.job, data)

    def progress(self, phase: str, step: int, total: int, preview: Optional[np.ndarray] = None,
                 within: float = 0.0, has_state: bool = False) -> None:
        record = self.record
        if has_state:
            record["has_current_state"] = True
        repeat = (phase, step, total) == (record.get("phase"), record.get("step"), record.get("total"))
        if repeat and preview is None and not within:
            return  # a repeat within a long step (e.g. a view's denoising): the cancel check only
        now = time.monotonic()
        if phase != self.phase:  # a phase's steps are timed from the end of the previous one
            self.phase, self.phase_t0 = phase, self.last
        if not repeat:
            self.last = now
        done = step + min(max(float(within), 0.0), 0.99)  # steps finished, and how far into the next
        eta = (now - self.phase_t0) / done * (total - done) if done > 0 and total >= done else None
        record.update(phase=phase, step=step, total=total, progress=done / total if total else 0.0,
                      eta_s=None if eta is None else round(eta, 2))
        if preview is not None and (now - self.last_preview >= PREVIEW_INTERVAL_S or step == total):
            self.last_preview = now
            try:
                if _save_preview(self.preview_path, preview):
                    record["has_preview"] = True
            except OSError as e:  # optional: a full disk fails the job when its result is written
                if not self.preview_failed:
                    log.warning("job %s: previews not saved: %s", record["id"], e)
                self.preview_failed = True


def _save_preview(path: Path, image: np.ndarray) -> bool:
    try:
        data = png_bytes(image)
    except (TypeError, ValueError) as e:  # a bad preview never fails the job
        log.warning("preview not saved: %s", e)
        return False
    write_atomic(path, data)
    return True
