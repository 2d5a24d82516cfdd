"""A batch spread over a local Ray cluster (two workers on this machine's two cores): every row
ends once, bad rows recorded, and a worker killed mid-run loses nothing and makes nothing twice;
a local instance slow to start is started once more."""

from __future__ import annotations

import json
import os
import signal

import pytest

from backend.batch import run_batch
from backend.cluster.nodes import connect
from backend.errors import InputError
from backend.models import TEST_MODELS_ENV, LoadOptions

pytest.importorskip("ray")


def write_rows(folder, count: int):
    rows = [{"name": f"cube-{n:02d}", "model": "test-cube", "prompt": f"cube {n}",
             "params": {"seed": n, "num_inference_steps": 4, "step_delay": 0.1}} for n in range(count)]
    rows.append({"name": "broken", "model": "test-cube", "prompt": "x", "params": {"fail": "generation"}})
    rows.append({"name": "missing", "task": "texture", "mesh": "nowhere.glb", "prompt": "rust"})
    (folder / "jobs.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return folder / "jobs.jsonl"


def test_rows_spread_over_workers_and_a_killed_worker_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(TEST_MODELS_ENV, "1")  # the workers inherit it
    jobs, out = write_rows(tmp_path, 16), tmp_path / "out"
    killed = []

    def kill_the_first_worker(outcome):
        if not killed and outcome.get("worker"):
            killed.append(outcome["worker"])
            os.kill(outcome["worker"], signal.SIGKILL)  # mid-run: it has taken its next row

    summary = run_batch(jobs, out, LoadOptions(), progress=False, ray_address="local", on_outcome=kill_the_first_worker)
    outcomes = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_name = {o["name"]: o for o in outcomes}
    assert len(outcomes) == len(by_name) == 18  # every row ends, each once
    assert (summary.succeeded, summary.failed) == (16, 2), outcomes
    assert "empty surface" in by_name["broken"]["error"] and "no mesh file" in by_name["missing"]["error"]
    workers = {o["worker"] for o in outcomes if "worker" in o}
    assert killed and len(workers) >= 2  # spread over both, and a restarted one after the kill
    assert all((out / f"cube-{n:02d}.glb").is_file() for n in range(16))
    assert not list(out.glob("*.partial*"))
    again = run_batch(jobs, out, LoadOptions(), progress=False, ray_address="local")
    assert (again.succeeded, again.skipped, again.failed) == (0, 16, 2)  # resumed: nothing made twice


def test_the_command_takes_ray_local(tmp_path, monkeypatch, capsys):
    from backend.__main__ import main

    monkeypatch.setenv(TEST_MODELS_ENV, "1")
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps({"name": f"c{n}", "model": "test-cube", "prompt": "c"})
                                                   for n in range(3)) + "\n")
    status = main(["batch", str(tmp_path / "jobs.jsonl"), "--out-dir", str(tmp_path / "out"), "--ray", "local"])
    assert status == 0 and "3 succeeded" in capsys.readouterr().err


class SlowStartingRay:
    """A `ray` module whose local node times out starting `failures` times, as Ray's own does on
    a busy machine, then comes up."""

    def __init__(self, failures: int):
        self.failures, self.inits, self.shutdowns = failures, 0, 0

    def init(self, **kwargs):
        self.inits += 1
        if self.inits <= self.failures:
            raise Exception("The current node timed out during startup.")

    def shutdown(self):
        self.shutdowns += 1


def test_a_local_instance_that_times_out_starting_is_started_once_more():
    ray = SlowStartingRay(failures=1)
    connect(ray, "local")
    assert (ray.inits, ray.shutdowns) == (2, 1)
    never = SlowStartingRay(failures=5)
    with pytest.raises(InputError, match="timed out during startup"):
        connect(never, "local")
    assert never.inits == 2
    remote = SlowStartingRay(failures=1)
    with pytest.raises(InputError, match="could not reach the Ray cluster"):
        connect(remote, "10.0.0.1:6379")  # a cluster's own trouble: said at once, not retried
    assert remote.inits == 1
