"""Running one job with its model loaded, wherever that happens: in the backend's own worker
thread, or in a Ray replica on another machine (cluster/replica.py).

The job manager owns records and files; what runs the pipeline reports back through a
`Report` (progress, a saved current state, a message) and hands over a `JobOutput`: the
result already packed as the bytes the job store keeps, so it can cross a process or machine
boundary as it is.
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Union

import numpy as np

from .errors import GenerationFailed, InputError, JobCancelled
from .results import MeshResult

# A long job saves where it stands (and its checkpoint) this often on its own, so a backend that
# stops under it (a crash, a reboot) loses at most this much of it.
AUTOSAVE_S = 600.0
# The upload a resumed job runs from: the checkpoint its first run left (never a user's upload:
# models.UPLOADS does not name it, so a request that sends one is refused).
CHECKPOINT = "checkpoint"


@dataclass
class JobOutput:
    """A finished job as stored: the result GLB (None for a gallery of images), the candidate
    images as PNG, and the result's notes (JSON-clean)."""

    glb: Optional[bytes]
    candidates: list[bytes] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


class Report(Protocol):
    """Where a running job's news goes (the job manager's side)."""

    def progress(self, phase: str, step: int, total: int, preview: Optional[np.ndarray], within: float,
                 has_state: bool) -> None: ...

    def state(self, glb: bytes) -> None: ...

    def checkpoint(self, data: bytes) -> None: ...  # what a resumed job goes on from

    def note(self, message: str) -> None: ...

    def placed(self, where: str) -> None: ...  # a cluster's replica took the job


class StepControl:
    """A running job's controls, looked at between the pipeline's steps.

    Attributes:
        cancel: Set to stop the job at its next step.
        cancelled_by_user: The stop is the user's (else the backend is stopping under it).
        state_wanted: Set when someone asks for where the job stands: saved at the next step.
        asks: How many times the state was asked for (a replica compares it with what it saw).
        state: The pipeline's "make where it stands now", once it has given one.
    """

    def __init__(self):
        self.cancel = threading.Event()
        self.cancelled_by_user = False
        self.state_wanted = threading.Event()
        self.asks = 0
        self.state: Optional[Callable[[], MeshResult]] = None
        self._saved_at: Optional[float] = None

    def at_step(self, state: Optional[Callable[[], MeshResult]], save: Callable[[], None],
                save_checkpoint: Optional[Callable[[], None]] = None) -> None:
        """Take the pipeline's state, save it when asked or due, stop when cancelled; save the
        checkpoint (when the pipeline offers one) when due and on any stop.

        Raises:
            JobCancelled: the job is to stop (a user's cancel saves the state first).
        """
        if state is not None:
            self.state = state
        if self._saved_at is None and (state is not None or save_checkpoint is not None):
            self._saved_at = time.monotonic()  # the first autosave comes AUTOSAVE_S from now
        if self.cancel.is_set():
            if save_checkpoint is not None:
                save_checkpoint()  # cancelled, or the backend stops: the run can go on from here
            if self.cancelled_by_user and self.state is not None:
                save()  # what was reached stays importable
            raise JobCancelled()
        due = self._saved_at is not None and time.monotonic() - self._saved_at >= AUTOSAVE_S
        if self.state_wanted.is_set() or due:
            self.state_wanted.clear()
            if self.state is not None:
                save()
            if due and save_checkpoint is not None:
                save_checkpoint()
            self._saved_at = time.monotonic()


def run_loaded(entry, pipe: Any, params: dict[str, Any], files: dict[str, Union[bytes, Path]], control: StepControl,
               report: Report) -> JobOutput:
    """Run one job on an already loaded pipeline and pack what it made.

    Raises:
        JobCancelled: its control said stop.
        GenerationFailed: the model made nothing; anything else the pipeline raised.
    """
    resume = None
    if CHECKPOINT in files:  # a resumed job: its first run's uploads and state, as its checkpoint kept them.
        # Taken out of the caller's dict, so its bytes (a hundred megabytes for a distillation) go
        # once read instead of staying for the whole run; a job store in this process gives its
        # file's path instead (JobStore.read_uploads), read a tensor at a time.
        files, resume = unpack_checkpoint(files.pop(CHECKPOINT), entry)

    def callback(phase: str, step: int, total: int, preview: Optional[np.ndarray] = None,
                 within: float = 0.0, state: Optional[Callable[[], MeshResult]] = None,
                 checkpoint: Optional[Callable[[], dict[str, Any]]] = None) -> None:
        save_checkpoint = checkpoint and (lambda: report.checkpoint(pack_checkpoint(entry, files, checkpoint())))
        control.at_step(state, lambda: report.state(state_glb(control.state(), step, total)), save_checkpoint)
        report.progress(phase, step, total, preview, within, control.state is not None)

    if control.cancel.is_set():
        raise JobCancelled()
    if resume is not None:
        return pack_result(entry.run(pipe, params, files, callback, resume=resume))
    return pack_result(entry.run(pipe, params, files, callback))


def pack_checkpoint(entry, files: dict[str, bytes], run: dict[str, Any]) -> bytes:
    """A job's checkpoint: its model, its uploads (a resumed job has no others) and the
    pipeline's state."""
    import torch

    from .distill.checkpoint import pack

    uploads = {name: torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)
               for name, data in files.items()}
    return pack({"model": entry.name, "uploads": uploads, "run": run})


def unpack_checkpoint(data: Union[bytes, Path], entry) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The uploads and pipeline state a checkpoint (its bytes or its file) kept.

    Raises:
        InputError: it is damaged, another model's, or this model cannot resume.
    """
    from .distill.checkpoint import restore, unpack
    from .models import UPLOADS

    tree = unpack(data)
    model = restore("model", lambda: tree["model"])
    if model != entry.name or not entry.resumable:
        raise InputError(f"this checkpoint is {model!r}'s; model {entry.name} cannot go on from it")
    uploads = restore("uploads", lambda: {name: t.numpy().tobytes() for name, t in tree["uploads"].items()})
    if not set(uploads) <= set(UPLOADS):
        raise InputError("the checkpoint holds uploads no job takes; it is damaged: start the job again")
    run = restore("state", lambda: tree["run"])
    if not isinstance(run, dict):
        raise InputError("the checkpoint holds no run state; start the job again")
    return uploads, run


def pack_result(result: MeshResult) -> JobOutput:
    """The GLB, candidate PNGs and notes of a pipeline's result.

    Raises:
        GenerationFailed: it holds neither a mesh nor images.
    """
    from .geometry.glb import EXTRAS_KEY, mesh_result_to_glb, read_glb_extras

    if not (result.parts or result.candidates):
        raise GenerationFailed("the model returned neither a mesh nor images")
    candidates = [png_bytes(image) for image in result.candidates]
    if not result.parts:  # a gallery: the artist picks, then a reconstruction job makes the mesh
        return JobOutput(None, candidates, json.loads(json.dumps(result.metadata, default=str)))
    data = mesh_result_to_glb(result)
    return JobOutput(data, candidates, read_glb_extras(data).get(EXTRAS_KEY, {}))  # a JSON-clean copy


def state_glb(result: MeshResult, step: int, total: int) -> bytes:
    """A running job's current state as a GLB, marked with the step it is from."""
    from .geometry.glb import mesh_result_to_glb

    result.metadata = {**result.metadata, "current_state": {"step": step, "total": total}}
    return mesh_result_to_glb(result)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
