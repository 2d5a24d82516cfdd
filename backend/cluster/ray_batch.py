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
    try:
        if address == "local":
            # "local" even where RAY_ADDRESS names a cluster: the user asked for this machine
            ray.init(address="local", include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        else:
            ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise InputError(f"could not reach the Ray cluster at {address!r} ({error}); start it with `ray start "
                         "--head` (and `ray start --address HEAD:6379` on each worker machine)") from None
    return _outcomes(ray, rows, rows_folder, out_dir, load_options, workers)


def _outcomes(ray, rows, rows_folder, out_dir, load_options, cap: Optional[int]) -> Iterator[dict[str, Any]]:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    workers = max(1, min(len(rows), gpus or int(resources.get("CPU", 1)), cap or len(rows)))
    per_worker = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    options = dataclasses.asdict(load_options) if dataclasses.is_dataclass(load_options) else dict(load_options)
    options.pop("dtype", None)  # each worker picks its own device and precision
    items = [{"row": json.dumps(dataclasses.asdict(row))} for row in rows]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _Worker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"rows_folder": str(rows_folder), "out_dir": str(out_dir), "options": options,
                               "threads": 0 if gpus else 1},
        max_restarts=RETRIES, max_task_retries=RETRIES, **per_worker)  # (Ray 2.64 renames these: pinned 2.60)
    try:
        for item in dataset.iter_rows():
            yield json.loads(item["outcome"])
    finally:
        ray.shutdown()


class _Worker:
    """One Ray actor: a RowRunner on whatever device its node has."""

    def __init__(self, rows_folder: str, out_dir: str, options: dict, threads: int):
        from ..devices import pick_device, set_cpu_threads
        from ..models import LoadOptions

        if threads:
            set_cpu_threads(threads)
        device, dtype = pick_device("auto", False)  # this node's GPU if it has one, whatever the driver has
        self.runner = RowRunner(Path(rows_folder), Path(out_dir), LoadOptions(**{**options, "device": device,
                                                                                    "dtype": dtype}))

    def __call__(self, batch: dict) -> dict:
        outcomes = []
        for text in batch["row"]:
            fields = json.loads(text)
            outcome = self.runner.run(Row(**fields))
            outcome["worker"] = os.getpid()
            outcomes.append(json.dumps(outcome))
        return {"outcome": outcomes}
