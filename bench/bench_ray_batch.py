"""Batch throughput on a local Ray cluster, 1 worker vs 2 (one torch thread each), beside the
in-process batch on one thread: the scaling Ray gives and the time it adds per row.

Rows are the built-in model's (prompts cycling over four categories, 64³ grid). Throughput is
steady state: rows finished after each worker's first (which loads the model) over the time they
took, so the cluster's start and the model loads are left out.

    PYTHONPATH=. python bench/bench_ray_batch.py [--rows 24]

Targets (issue: a studio's backend on Ray): 2 workers ≥ 1.7× one; Ray's overhead ≤ 50 ms a row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from backend.batch import run_batch
from backend.devices import set_cpu_threads
from backend.models import LoadOptions

PROMPTS = ("a chair with four legs", "a table with a round top", "a stool with three legs", "a bookshelf")


def steady_rate(times: list[float], warm: int) -> float:
    """Rows a second after the first `warm` rows."""
    done = sorted(times)[warm - 1:]
    return (len(done) - 1) / (done[-1] - done[0])


def run(rows: Path, ray_address, workers: int) -> tuple[float, float]:
    times: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run_batch(rows, Path(out), LoadOptions(), progress=False, ray_address=ray_address,
                            on_outcome=lambda outcome: times.append(time.perf_counter()), workers=workers)
        wall = time.perf_counter() - start
    assert summary.failed == 0, summary
    return steady_rate(times, workers), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=24)
    args = parser.parse_args()
    set_cpu_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        rows = Path(folder) / "jobs.jsonl"
        rows.write_text("\n".join(json.dumps({"name": f"r{n:03d}", "prompt": PROMPTS[n % len(PROMPTS)],
                                              "params": {"seed": n, "resolution": 64}})
                                  for n in range(args.rows)) + "\n")
        local, local_wall = run(rows, None, 1)
        one, one_wall = run(rows, "local", 1)
        two, two_wall = run(rows, "local", 2)
    print(f"{args.rows} built-in rows at 64³, one torch thread per worker (steady state, rows/s; wall incl. start):")
    print(f"  in process, 1 thread   {local:6.2f} rows/s  ({1000 / local:6.0f} ms a row; wall {local_wall:5.1f} s)")
    print(f"  Ray, 1 worker          {one:6.2f} rows/s  ({1000 / one:6.0f} ms a row; wall {one_wall:5.1f} s)")
    print(f"  Ray, 2 workers         {two:6.2f} rows/s  (wall {two_wall:5.1f} s)")
    print(f"  scaling 2 vs 1 worker: {two / one:.2f}x (target >= 1.7x)")
    print(f"  Ray's overhead a row:  {1000 / one - 1000 / local:+.0f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
