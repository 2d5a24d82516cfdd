"""A `serve --ray` replica: a Ray Serve deployment that runs jobs on one GPU (or CPU slot).

Each replica keeps up to `models_per_replica` models loaded (Serve's model multiplexing, least
recently used out first); the ingress names a job's model as its multiplexed model id, so Serve
sends the job to a free replica that holds that model when there is one. A job streams its news
back as events (see `ReplicaEvents`) and ends with its packed output, so nothing a replica makes
is kept on its own disk: if its process or machine dies, nothing of the job is lost but the
time it ran.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any, AsyncIterator, Optional

import numpy as np

from ..errors import JobCancelled
from ..job_run import StepControl, run_loaded

BEAT_S = 2.0  # how often a replica tells the board it lives (board.LOST_S is five of them), and at once
# when it starts or ends a job
WAIT_S = 30.0  # a long poll for a running job's controls is renewed this often
PROGRESS_S = 0.1  # progress within a step is sent at most this often
PREVIEW_S = 0.25  # and a preview image (as the job manager keeps them)


def replica_deployment(models_per_replica: int):
    """The Serve deployment, its model cache holding `models_per_replica` models."""
    from ray import serve

    class Replica:
        """Args (bound by the ingress): the board actor, LoadOptions fields without device and
        dtype (each replica picks its own device), and the torch threads of a CPU replica."""

        def __init__(self, board, options: dict[str, Any], cpu_threads: int):
            import ray

            from ..models import registry
            from .nodes import node_load_options

            self.options = node_load_options(options, cpu_threads)
            device = self.options.device
            self.board, self.entries = board, registry()
            self.id = serve.get_replica_context().replica_id.unique_id
            self.actor = ray.get_runtime_context().get_actor_name()  # what the ingress kills if this hangs
            self.info = {"node": ray.util.get_node_ip_address(), "pid": os.getpid(), "device": device,
                         "models": [], "loads": 0, "job": None}
            self._changed = threading.Event()
            threading.Thread(target=self._beat, name="diffusion3d-heartbeat", daemon=True).start()

        def _beat(self) -> None:
            import ray

            while True:
                try:
                    ray.get(self.board.beat.remote(self.id, dict(self.info, models=list(self.info["models"]))),
                            timeout=BEAT_S * 5)
                except Exception:  # the ingress went away: Serve deletes this replica soon
                    pass
                self._changed.wait(BEAT_S)
                self._changed.clear()

        @serve.multiplexed(max_num_models_per_replica=models_per_replica)
        async def model(self, name: str) -> "_Loaded":
            entry = next(e for e in self.entries if e.name == name)
            pipe = await asyncio.get_running_loop().run_in_executor(None, entry.load, self.options)
            self.info["loads"] += 1
            return _Loaded(name, pipe, self.info["models"])

        async def run(self, job_id: str, task: str, model: str, params: dict[str, Any],
                      files: dict[str, bytes]) -> AsyncIterator[dict[str, Any]]:
            """Run one job; yields its events, the last one "done" or "failed"."""
            from ..jobs import describe_error, is_out_of_memory
            from ..local_executor import free_accelerator_memory
            from ..models import get_entry

            self.info["job"] = job_id
            self._changed.set()
            control = StepControl()
            poller = asyncio.create_task(_poll(self.board, job_id, control))
            loop = asyncio.get_running_loop()
            events = ReplicaEvents(loop)
            work: Optional[asyncio.Future] = None
            try:
                yield {"kind": "started", "replica": self.id, "node": self.info["node"], "pid": self.info["pid"],
                       "actor": self.actor}
                entry = get_entry(task, model, self.entries)
                loaded = await self.model(model)
                events.note("")
                work = loop.run_in_executor(None, run_loaded, entry, loaded.pipe, params, files, control, events)
                work.add_done_callback(lambda _: events.close())
                async for event in events:
                    yield event
                yield {"kind": "done", "output": work.result()}
            except JobCancelled:
                yield {"kind": "failed", "cancelled": True}
            except Exception as e:  # the job's failure, in the words the ingress records
                if is_out_of_memory(e):
                    free_accelerator_memory()
                yield {"kind": "failed", "cancelled": False, "error": describe_error(e, self.options.device)}
            finally:
                control.cancel.set()  # ends the job where the request was dropped (the ingress went away)
                poller.cancel()
                if work is not None:
                    await asyncio.gather(work, return_exceptions=True)  # never two jobs on one replica
                self.info["job"] = None
                self._changed.set()

    return serve.deployment(Replica)


class _Loaded:
    """A loaded pipeline in Serve's model cache; leaves the replica's model list when evicted."""

    def __init__(self, name: str, pipe: Any, models: list[str]):
        self.name, self.pipe, self._models = name, pipe, models
        models.append(name)

    def __del__(self):
        if self.name in self._models:
            self._models.remove(self.name)


async def _poll(board, job_id: str, control: StepControl) -> None:
    """Copy the job's controls from the board, as they change, until the job ends."""
    known, seen_asks = None, 0
    while True:
        try:
            flags = await board.wait_flags.remote(job_id, known, WAIT_S)
        except asyncio.CancelledError:
            raise
        except Exception:  # the ingress (which owns the board) is gone: no one waits for this job
            control.cancel.set()
            return
        if flags and flags != known:
            if flags["asks"] > seen_asks:
                seen_asks = flags["asks"]
                control.state_wanted.set()
            if flags["cancel"]:
                control.cancelled_by_user = flags["by_user"]
                control.cancel.set()
        known = flags


class ReplicaEvents:
    """A job's news from its worker thread to the replica's event loop, thinned for the wire.

    A Report (job_run.Report) on one side, an async iterator of events on the other."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop, self._queue = loop, asyncio.Queue()
        self._sent: tuple = ()
        self._sent_at = self._preview_at = -1e9

    def _put(self, event: Optional[dict[str, Any]]) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def close(self) -> None:
        self._put(None)

    def note(self, message: str) -> None:
        self._put({"kind": "note", "message": message})

    def state(self, glb: bytes) -> None:
        self._put({"kind": "state", "glb": glb})

    def checkpoint(self, data: bytes) -> None:
        self._put({"kind": "checkpoint", "data": data})

    def progress(self, phase: str, step: int, total: int, preview: Optional[np.ndarray], within: float,
                 has_state: bool) -> None:
        # A new phase, the last step, a state to offer and a due preview go at once; the other
        # steps at most every PROGRESS_S (a fast model's 40 steps a second would cost the
        # ingress more than they tell).
        now = time.monotonic()
        if preview is not None and now - self._preview_at < PREVIEW_S and step != total:
            preview = None  # the job manager would drop it too
        news = (phase, has_state) != self._sent or step == total or preview is not None
        if not news and now - self._sent_at < PROGRESS_S:
            return
        self._sent, self._sent_at = (phase, has_state), now
        if preview is not None:
            self._preview_at = now
        self._put({"kind": "progress", "phase": phase, "step": step, "total": total, "preview": preview,
                   "within": within, "has_state": has_state})

    def __aiter__(self):
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event
