"""The notice board between `serve --ray`'s ingress and its replicas (one Ray actor per ingress).

The ingress pins each running job's controls (cancel, state asked for) where the replica
running it waits for them (a long poll: a change reaches it at once, and nothing is spent while
nothing changes); each replica pins a heartbeat saying which models it holds
and which job it runs, which `/health` shows. Both tables are bounded: a job's entry goes when
it ends, a replica's when it has been silent for FORGET_S.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

LOST_S = 10.0  # a replica silent this long is reported lost (it beats every replica.BEAT_S)
FORGET_S = 600.0  # and left out after this long: Serve has replaced it long since


class Board:
    """Run as a Ray actor (`ray.remote(Board)`, an async actor: many replicas wait on it at once)."""

    def __init__(self):
        self._flags: dict[str, dict[str, Any]] = {}
        self._changed: dict[str, asyncio.Event] = {}  # only for jobs a replica waits on
        self._replicas: dict[str, dict[str, Any]] = {}

    async def set_flags(self, job_id: str, flags: dict[str, Any]) -> None:
        self._flags[job_id] = flags
        self._wake(job_id)

    async def drop(self, job_id: str) -> None:
        self._flags.pop(job_id, None)
        self._wake(job_id)

    async def wait_flags(self, job_id: str, known: Optional[dict[str, Any]], timeout: float) -> Optional[dict[str, Any]]:
        """The job's controls once they differ from `known` (or after `timeout` seconds)."""
        if self._flags.get(job_id) == known:
            changed = self._changed.setdefault(job_id, asyncio.Event())
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self._flags.get(job_id)

    def _wake(self, job_id: str) -> None:
        changed = self._changed.pop(job_id, None)
        if changed is not None:
            changed.set()

    async def beat(self, replica_id: str, info: dict[str, Any]) -> None:
        self._replicas[replica_id] = {**info, "id": replica_id, "seen": time.time(), "died": False}

    async def died(self, replica_id: str) -> None:
        """The ingress saw this replica's process die under a job."""
        if replica_id in self._replicas:
            self._replicas[replica_id]["died"] = True

    async def replicas(self) -> list[dict[str, Any]]:
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
