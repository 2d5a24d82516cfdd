"""`python -m backend batch JOBS.jsonl --ray ADDRESS`: the rows spread over a Ray cluster.

Ray Data streams the rows to a pool of workers (actors), one per GPU (or per CPU slot on CPU
machines, each with one torch thread), each holding its models loaded between rows, as the
local batch does (`batch.RowRunner`). A worker that dies mid-row is restarted and the row run
again on a worker, once; a row is written whole or not at all, so none is made twice. Outputs go
to `out_dir` from wherever a row runs: give a folder every node reaches (a shared file system).
Rows run in parallel, so a row must not read another row's output (`$OUT/...`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Iterator, Optional

from ..batch import Row, RowRunner
from ..errors import InputError
from .nodes import capacity, connect, node_load_options, portable_options

RETRIES = 1  # a row whose worker died is run once more, then failed


def run_on_ray(rows: list[Row], rows_folder: Path, out_dir: Path, load_options, address: str,
               workers: Optional[int] = None) -> Iterator[dict[str, Any]]:
    """Each row's outcome, in the order they finish. `workers` caps the pool (default: one per
    GPU in the cluster, else one per CPU core).

    Raises:
        InputError: Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError("--ray needs Ray: pip install -r backend/requirements-cluster.txt (on every node)") from None
    if not rows:
        return iter(())
    connect(ray, address)
    return _outcomes(ray, rows, rows_folder, out_dir, load_options, workers)


def _outcomes(ray, rows, rows_folder, out_dir, load_options, cap: Optional[int]) -> Iterator[dict[str, Any]]:
    have, kind, _ = capacity(ray)
    workers = max(1, min(len(rows), have, cap or len(rows)))
    per_worker = {"num_gpus": 1} if kind == "GPU" else {"num_cpus": 1}
    items = [{"row": json.dumps(dataclasses.asdict(row))} for row in rows]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _Worker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"rows_folder": str(rows_folder), "out_dir": str(out_dir),
                               "options": portable_options(load_options), "threads": 0 if kind == "GPU" else 1},
        max_restarts=RETRIES, max_task_retries=RETRIES, **per_worker)  # (Ray 2.64 renames these: pinned 2.60)
    try:
        for item in dataset.iter_rows():
            yield json.loads(item["outcome"])
    finally:
        ray.shutdown()


class _Worker:
    """One Ray actor: a RowRunner on whatever device its node has."""

    def __init__(self, rows_folder: str, out_dir: str, options: dict, threads: int):
        self.runner = RowRunner(Path(rows_folder), Path(out_dir), node_load_options(options, threads))

    def __call__(self, batch: dict) -> dict:
        outcomes = []
        for text in batch["row"]:
            fields = json.loads(text)
            outcome = self.runner.run(Row(**fields))
            outcome["worker"] = os.getpid()
            outcomes.append(json.dumps(outcome))
        return {"outcome": outcomes}
