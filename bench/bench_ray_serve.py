"""`serve --ray` throughput on a local Ray instance, 1 replica vs 2 (one torch thread each), beside
the service's own worker thread on one thread: the scaling replicas give and the time the trip
to a replica adds per job.

Jobs are the built-in model's (prompts cycling over four categories, 64³ grid), submitted to the
job manager as the HTTP routes do. Throughput is steady state: jobs finished after each
replica's first (which loads the model) over the time they took. The overhead is measured
apart, on jobs that do next to nothing (test-cube, one step): on a 0.7 s job it is within the
run-to-run noise of this machine.

    PYTHONPATH=. python bench/bench_ray_serve.py [--jobs 24]

Targets (issue: a studio's backend on Ray): 2 replicas ≥ 1.7× one; Ray's overhead ≤ 50 ms a job.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench_ray_batch import PROMPTS, steady_rate

from backend.devices import set_cpu_threads
from backend.jobs import FINISHED, JobManager
from backend.models import TEST_MODELS_ENV, LoadOptions, registry


BUILTIN = ("builtin", lambda n: {"prompt": PROMPTS[n % len(PROMPTS)], "seed": n, "resolution": 64})
EMPTY = ("test-cube", lambda n: {"num_inference_steps": 1, "seed": n})


def run(jobs_count: int, executor_for, kind=BUILTIN) -> tuple[float, float]:
    """(steady jobs/s, wall s) of `jobs_count` jobs of `kind` on a fresh job manager."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        executor = executor_for()
        manager = JobManager(cache, registry(), LoadOptions(), executor=executor)
        manager.start()
        try:
            model, params = kind
            ids = [manager.submit("text_to_3d", model, params(n), {})["id"] for n in range(jobs_count)]
            finished: dict[str, float] = {}
            while len(finished) < len(ids):
                for job_id in ids:
                    if job_id not in finished and manager.get(job_id)["state"] in FINISHED:
                        finished[job_id] = time.perf_counter()
                        assert manager.get(job_id)["state"] == "succeeded", manager.get(job_id)
                time.sleep(0.05)  # (a tighter poll would take the replicas' CPU time on a small machine)
            wall = time.perf_counter() - start
        finally:
            manager.close()
    return steady_rate(list(finished.values()), manager.executor.slots), wall


def main() -> None:
    from backend.cluster.ray_executor import RayExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    args = parser.parse_args()
    os.environ[TEST_MODELS_ENV] = "1"
    set_cpu_threads(1)
    replicas = {n: (lambda n=n: RayExecutor("local", LoadOptions(), replicas=n, cpu_threads=1)) for n in (1, 2)}
    local, local_wall = run(args.jobs, lambda: None)
    one, one_wall = run(args.jobs, replicas[1])
    two, two_wall = run(args.jobs, replicas[2])
    empty_local, _ = run(args.jobs, lambda: None, EMPTY)
    empty_one, _ = run(args.jobs, replicas[1], EMPTY)
    print(f"{args.jobs} built-in jobs at 64³, one torch thread per replica (steady state, jobs/s; wall incl. start):")
    print(f"  service's own worker     {local:6.2f} jobs/s  ({1000 / local:6.0f} ms a job; wall {local_wall:5.1f} s)")
    print(f"  serve --ray, 1 replica   {one:6.2f} jobs/s  ({1000 / one:6.0f} ms a job; wall {one_wall:5.1f} s)")
    print(f"  serve --ray, 2 replicas  {two:6.2f} jobs/s  (wall {two_wall:5.1f} s)")
    print(f"  scaling 2 vs 1 replica:  {two / one:.2f}x (target >= 1.7x)")
    print(f"  difference a job:        {1000 / one - 1000 / local:+.0f} ms (overhead plus noise)")
    print(f"{args.jobs} empty jobs (test-cube, 1 step): service's own worker {1000 / empty_local:.0f} ms a job, "
          f"1 replica {1000 / empty_one:.0f} ms a job")
    print(f"  Ray's overhead a job:    {1000 / empty_one - 1000 / empty_local:+.0f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
