"""What `batch --ray` and `serve --ray` share: joining the cluster, sizing the pool to it, and
each worker's load options on its own node."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ..errors import InputError

LOCAL_STARTS = 2  # tries at starting a local Ray instance


def connect(ray, address: str, runtime_env: Optional[dict] = None) -> None:
    """Join the cluster at `address` ("local": start a Ray instance on this machine, even where
    RAY_ADDRESS names a cluster: the user asked for this one).

    A local instance that does not come up in time (Ray gives its node 30 s, which a busy
    two-core machine can miss: "The current node timed out during startup") is started once more.

    Raises:
        InputError: the cluster cannot be reached, saying how to start one.
    """
    for attempt in range(LOCAL_STARTS if address == "local" else 1):
        try:
            ray.init(address=address, include_dashboard=False if address == "local" else None, log_to_driver=False,
                     ignore_reinit_error=True, runtime_env=runtime_env)
            return
        except (ConnectionError, RuntimeError, ValueError) as error:
            failure = error
            break
        except Exception as error:  # Ray's own: a node that timed out during startup
            failure = error
            ray.shutdown()  # what came up of it, before the next start
    raise InputError(f"could not reach the Ray cluster at {address!r} ({failure}); start it with `ray start "
                     "--head` (and `ray start --address HEAD:6379` on each worker machine)")


def capacity(ray) -> tuple[int, str, int]:
    """(workers the cluster holds, "GPU" or "CPU" as each takes one, CPUs in all): one per GPU,
    else one per CPU on a cluster without GPUs."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    return (gpus, "GPU", cpus) if gpus else (cpus, "CPU", cpus)


def portable_options(load_options) -> dict[str, Any]:
    """LoadOptions as fields to send: without device and precision, which each node picks."""
    return {k: v for k, v in dataclasses.asdict(load_options).items() if k not in ("device", "dtype")}


def node_load_options(fields: dict[str, Any], cpu_threads: int):
    """LoadOptions on the node a worker runs on: its GPU if it has one, else its CPU with
    `cpu_threads` torch threads (0: torch's default)."""
    from ..devices import pick_device, set_cpu_threads
    from ..models import LoadOptions

    device, dtype = pick_device("auto", False)
    if device == "cpu" and cpu_threads:
        set_cpu_threads(cpu_threads)
    return LoadOptions(**fields, device=device, dtype=dtype)
