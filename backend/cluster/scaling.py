"""Replicas that follow the cluster: one per GPU (or CPU) of the nodes alive now.

Ray Serve calls these policies in its controller, a few times a second; each returns how many
replicas the deployment should have. A machine that joins (`ray start --address HEAD:6379`)
raises the count and its replicas start there; one that leaves lowers it. Serve bounds the
answer by the deployment's min and max replicas and applies its up- and downscale delays.
"""

from __future__ import annotations

import time

DEFAULT_MAX_REPLICAS = 64  # `serve --ray` grows to at most this many replicas unless told
REFRESH_S = 2.0  # how stale the cluster's resource count may be
_seen: dict[str, tuple[float, int]] = {}  # kind -> (when counted, how many); per controller process


def _alive(kind: str) -> int:
    """GPUs or CPUs in the cluster's live nodes, counted at most every REFRESH_S."""
    now = time.monotonic()
    when, count = _seen.get(kind, (-REFRESH_S, 0))
    if now - when >= REFRESH_S:
        import ray

        count = int(ray.cluster_resources().get(kind, 0))
        _seen[kind] = (now, count)
    return count


def one_per_gpu(ctx) -> tuple[int, dict]:
    return max(1, _alive("GPU")), {}


def one_per_cpu(ctx) -> tuple[int, dict]:
    return max(1, _alive("CPU")), {}


def autoscaling_config(kind: str, start: int, most: int) -> dict:
    """Serve's autoscaling config for replicas that follow the cluster's `kind` ("GPU", "CPU"),
    starting at `start`, never more than `most`."""
    return {"min_replicas": 1, "initial_replicas": start, "max_replicas": max(most, start),
            "upscale_delay_s": 1.0,  # a machine that joined is used at once
            "downscale_delay_s": 30.0,  # a node that is gone for good: its pending replicas are dropped
            "policy": {"policy_function": f"{__name__}:one_per_{kind.lower()}"}}
