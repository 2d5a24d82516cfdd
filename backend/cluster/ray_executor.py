"""`serve --ray`: the job manager's jobs run in Ray Serve replicas across a cluster.

The backend process stays the ingress: the same HTTP API, token and Host checks, job records
in its SQLite store and result files in its cache folder. Only the pipelines move: one replica
per GPU (or CPU slot), each a Serve deployment replica keeping its models loaded
(cluster/replica.py). Uploads travel to a replica and results back through Ray's object store,
so the nodes need no shared file system, and a replica that dies takes nothing finished with it.

A job whose replica dies is run again once on another replica (Serve replaces the dead one),
then failed saying so. A replica that sends no news of its job for `stall_s` (a step hung in a
driver, a deadlock) is taken as dead: it is killed, Serve replaces it, and the job goes the same
way. Cancel and "current state" requests reach the running replica through the board
(cluster/board.py), read between steps.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..errors import GenerationFailed, InputError, JobCancelled
from ..job_run import JobOutput, Report, StepControl
from .scaling import DEFAULT_MAX_REPLICAS

log = logging.getLogger(__name__)

APP_NAME = "diffusion3d"
RETRIES = 1  # a job whose replica died runs once more, then fails
COUNT_S = 1.0  # how stale the count of running replicas may be
# A running job's replica silent this long is hung. Every model reports each step (seconds at most);
# the longest silence a healthy job has is loading a model (minutes for the largest, from a slow disk).
DEFAULT_STALL_S = 1200.0
# Passed on to every replica: which models exist and where their files are.
ENV_PREFIXES = ("DIFFUSION3D_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_")
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def watch(stream, stall_s: float, replica: dict, stop: Callable[[], None]) -> Iterator[dict[str, Any]]:
    """The events of a replica's job stream; once the job has started on a replica (`replica`
    filled in), `stop()` is called for each `stall_s` with no event (0: never), and
    `replica["stalled"]` set. Stopping the replica ends the stream with its error, raised here.
    Waiting for a free replica is not a stall: the clock starts with the job."""
    if not stall_s:
        yield from stream
        return
    events: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for event in stream:
                events.put(("event", event))
            events.put(("end", None))
        except BaseException as e:  # the replica's death, delivered where the caller handles it
            events.put(("error", e))

    threading.Thread(target=pump, name="diffusion3d-job-stream", daemon=True).start()
    while True:
        try:
            kind, item = events.get(timeout=stall_s if replica else None)
        except queue.Empty:
            replica["stalled"] = True
            stop()
            continue
        if kind == "end":
            return
        if kind == "error":
            raise item
        yield item


class RayExecutor:
    """Connects to (or starts) a Ray cluster and deploys the replicas.

    Args:
        address: "local" starts a Ray instance on this machine; else a running cluster's
            address ("HEAD:6379", or "auto" for the one this machine belongs to).
        options: LoadOptions; each replica picks its own device and precision.
        replicas: Replicas to run, a fixed number; 0 (the default): one per GPU in the cluster,
            else one per CPU, following the cluster as machines join or leave (cluster/scaling.py).
        max_replicas: With `replicas` 0, the most replicas it grows to.
        models_per_replica: Models a replica keeps loaded before it drops the least recently used.
        cpu_threads: torch threads of a replica running on a CPU (0: the cluster's CPUs shared
            evenly among the replicas).
        stall_s: Seconds a replica may send no news of its running job before it is killed as
            hung (0: never).

    Raises:
        InputError: Ray is not installed, the cluster cannot be reached, or it has fewer GPUs
            (CPUs) than the replicas asked for.
    """

    reads_files = False  # a replica may run on another machine: every upload goes as bytes

    def __init__(self, address: str, options, replicas: int = 0, models_per_replica: int = 2, cpu_threads: int = 0,
                 max_replicas: int = DEFAULT_MAX_REPLICAS, stall_s: float = DEFAULT_STALL_S):
        try:
            import ray
            from ray import serve
        except ImportError:
            raise InputError("--ray needs Ray Serve: pip install -r backend/requirements-cluster.txt "
                             "(on every node)") from None
        from .board import Board
        from .nodes import capacity, connect, portable_options
        from .replica import replica_deployment
        from .scaling import autoscaling_config

        self._ray, self._serve, self._local = ray, serve, address == "local"
        self.stall_s = stall_s
        self._closed, self._counter, self._handle = threading.Event(), None, None
        env = {key: value for key, value in os.environ.items() if key.startswith(ENV_PREFIXES)}
        # Every node runs the project from the same folder as this one (see the deployment docs).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, os.environ.get("PYTHONPATH")]))
        connect(ray, address, runtime_env={"env_vars": env})
        try:
            have, self._kind, cpus = capacity(ray)
            if replicas > have:
                raise InputError(f"--replicas {replicas}: the cluster has {have} {self._kind}(s) and each replica takes "
                                 f"one; add machines or ask for at most {have}")
            # One worker thread per replica there may be; `capacity()` says how many may run now.
            self.slots = replicas or max(max_replicas, have)
            self._running = replicas or have
            scaling = {"num_replicas": replicas} if replicas else \
                {"autoscaling_config": autoscaling_config(self._kind, have, max_replicas)}
            self._board = ray.remote(Board).options(num_cpus=0, name=f"diffusion3d-board-{os.getpid()}").remote()
            serve.start(proxy_location="Disabled")  # our own ingress serves HTTP
            deployment = replica_deployment(models_per_replica).options(
                name="replica", max_ongoing_requests=1, **scaling,
                ray_actor_options={"num_gpus": 1, "num_cpus": 0} if self._kind == "GPU" else {"num_cpus": 1})
            self._handle = serve.run(deployment.bind(self._board, portable_options(options),
                                                     cpu_threads or max(1, cpus // (replicas or have))),
                                     name=APP_NAME, route_prefix=None)
            self._counter = threading.Thread(target=self._count_replicas, name="diffusion3d-replica-count", daemon=True)
            self._counter.start()
        except BaseException:
            self._shutdown()
            raise

    @property
    def device(self) -> str:
        return f"ray: {self.capacity()} replica(s), one {self._kind} each"

    def capacity(self) -> int:
        """Replicas running now (as counted within the last COUNT_S); at least 1: with none running
        (a node lost, its replicas restarting), one job waits in Serve's queue for the next."""
        return self._running

    def _count_replicas(self) -> None:
        """Keep `capacity()` current from Serve's status, off the job manager's lock."""
        while not self._closed.wait(COUNT_S):
            try:
                deployment = self._serve.status().applications[APP_NAME].deployments["replica"]
                self._running = max(1, int(deployment.replica_states.get("RUNNING", 0)))
            except Exception as e:  # the count from before stays
                log.warning("Ray Serve's status did not answer: %s", e)

    def run(self, job_id: str, entry, params: dict[str, Any], files: dict[str, bytes], control: StepControl,
            report: Report) -> JobOutput:
        """Run a job on a replica, once more on another if the first one dies under it."""
        self.signal(job_id, control)
        try:
            for attempt in range(RETRIES + 1):
                replica: dict[str, Any] = {}
                try:
                    return self._attempt(job_id, entry, params, files, report, replica)
                except self._ray.exceptions.RayActorError as error:
                    if replica:
                        self._board.died.remote(replica["replica"])
                    where = f"replica {replica['replica']} on {replica['node']}" if replica else "its replica"
                    how = f"hung (no news for {self.stall_s:.0f} s) and was stopped" if replica.get("stalled") else "died"
                    log.warning("job %s: %s %s under it: %s", job_id, where, how, str(error).splitlines()[0])
                    if control.cancel.is_set():
                        raise JobCancelled() from None
                    if attempt == RETRIES:
                        times = "once" if attempt == 0 else f"{attempt + 1} times"
                        raise GenerationFailed(
                            f"the replica running this job failed {times} (last: {where} {how}), so it was not "
                            "finished; the Ray dashboard's logs say why (often the node ran out of memory)") from None
                    report.note(f"{where} {how}; running the job again on another replica")
        finally:
            self._board.drop.remote(job_id)
        raise AssertionError("unreachable")

    def _attempt(self, job_id: str, entry, params, files, report: Report, replica: dict) -> JobOutput:
        report.note("waiting for a replica")
        stream = self._handle.options(multiplexed_model_id=entry.name, stream=True).run.remote(
            job_id, entry.task, entry.name, params, files)
        for event in watch(stream, self.stall_s, replica, lambda: self._stop(replica)):
            kind = event["kind"]
            if kind == "started":
                replica.update(event)
                report.placed(f"{event['replica']} on {event['node']}")
                report.note(f"loading model {entry.name} on {event['node']}")
            elif kind == "note":
                report.note(event["message"])
            elif kind == "progress":
                report.progress(event["phase"], event["step"], event["total"], event["preview"], event["within"],
                                event["has_state"])
            elif kind == "state":
                report.state(event["glb"])
            elif kind == "checkpoint":
                report.checkpoint(event["data"])
            elif kind == "done":
                return event["output"]
            elif kind == "failed":
                if event["cancelled"]:
                    raise JobCancelled()
                raise GenerationFailed(event["error"])
        raise GenerationFailed("the replica ended the job without a result")

    def _stop(self, replica: dict) -> None:
        """Kill a hung replica's actor: its job's stream ends as if it had died, Serve starts another."""
        log.warning("replica %s on %s sent no news for %.0f s: stopping it", replica["replica"], replica["node"],
                    self.stall_s)
        try:
            self._ray.kill(self._ray.get_actor(replica["actor"], namespace="serve"))
        except Exception as e:  # gone already: its stream ends by itself
            log.warning("could not stop replica %s: %s", replica["replica"], e)

    def signal(self, job_id: str, control: StepControl) -> None:
        self._board.set_flags.remote(job_id, {"cancel": control.cancel.is_set(),
                                              "by_user": control.cancelled_by_user, "asks": control.asks})

    def failed(self, exc: BaseException) -> None:
        """Nothing to free here: the replica that ran the job freed its own memory."""

    def replicas(self) -> Optional[list[dict[str, Any]]]:
        """Each replica's node, process, device, models held and job running (from its heartbeats)."""
        try:
            return self._ray.get(self._board.replicas.remote(), timeout=5)
        except Exception as e:
            log.warning("the replicas' board did not answer: %s", e)
            return []

    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        """Take the replicas down (a shared cluster keeps running); a local Ray instance stops."""
        # Nothing of ours may be inside a call to Ray when Ray goes: the replica count's thread, and the
        # handle's router, which pushes load figures to Serve's autoscaler every few seconds.
        self._closed.set()
        if self._counter is not None:
            self._counter.join(timeout=30)
        try:
            if self._handle is not None:
                self._handle.shutdown()
            if self._serve.status().applications.get(APP_NAME) is not None:
                self._serve.delete(APP_NAME)
            if self._local:
                self._serve.shutdown()
        except Exception as e:
            log.warning("Ray Serve did not shut down cleanly: %s", e)
        self._ray.shutdown()
