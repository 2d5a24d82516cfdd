"""The notice board between `serve --ray`'s ingress and its replicas (one Ray actor per ingress).

The ingress pins each running job's controls (cancel, state asked for) where the replica
running it reads them between steps; each replica pins a heartbeat saying which models it holds
and which job it runs, which `/health` shows. Both tables are bounded: a job's entry goes when
it ends, a replica's when it has been silent for FORGET_S.
"""

from __future__ import annotations

import time
from typing import Any, Optional

LOST_S = 10.0  # a replica silent this long is reported lost (it beats every replica.BEAT_S)
FORGET_S = 600.0  # and left out after this long: Serve has replaced it long since


class Board:
    """Run as a Ray actor (`ray.remote(Board)`); every method is a quick table update."""

    def __init__(self):
        self._flags: dict[str, dict[str, Any]] = {}
        self._replicas: dict[str, dict[str, Any]] = {}

    def set_flags(self, job_id: str, flags: dict[str, Any]) -> None:
        self._flags[job_id] = flags

    def drop(self, job_id: str) -> None:
        self._flags.pop(job_id, None)

    def flags(self, job_id: str) -> Optional[dict[str, Any]]:
        return self._flags.get(job_id)

    def beat(self, replica_id: str, info: dict[str, Any]) -> None:
        self._replicas[replica_id] = {**info, "id": replica_id, "seen": time.time(), "died": False}

    def died(self, replica_id: str) -> None:
        """The ingress saw this replica's process die under a job."""
        if replica_id in self._replicas:
            self._replicas[replica_id]["died"] = True

    def replicas(self) -> list[dict[str, Any]]:
        """Every replica heard from lately: alive (beating), or lost with how long ago."""
        now = time.time()
        for key in [k for k, r in self._replicas.items() if now - r["seen"] > FORGET_S]:
            del self._replicas[key]
        report = []
        for replica in sorted(self._replicas.values(), key=lambda r: (r["node"], r["id"])):
            silent = now - replica["seen"]
            state = "lost" if replica["died"] or silent > LOST_S else ("busy" if replica["job"] else "idle")
            report.append({key: replica[key] for key in ("id", "node", "pid", "device", "models", "loads", "job")}
                          | {"state": state, "last_seen_s": round(silent, 1)})
        return report
