"""`serve --ray`: the service's jobs run on two Ray Serve replicas of a `ray start` cluster on this
machine (two declared GPUs, see tests/fixtures/ray_cluster.py). Jobs spread over both, go to
the replica holding their model, cancel within a step, keep their queue order, and a replica
killed mid-job loses nothing and writes nothing twice.

Named to run before test_ray_batch.py: in a process that has already run and shut down a local
Ray instance, Ray 2.60 cancels the actors it then creates on another cluster (the board here).
A backend process starts Ray once, so only a test process meets this."""

from __future__ import annotations

import collections
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("ray.serve")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from ray_cluster import join_node, ray_cluster  # noqa: E402
from tests.backend.test_server import AUTH, BASE, TOKEN, submit, wait  # noqa: E402

from backend.geometry.glb import EXTRAS_KEY, read_glb_extras, read_glb_meshes  # noqa: E402
from backend.models import TEST_MODELS_ENV  # noqa: E402
from backend.server import Settings, create_app  # noqa: E402

FINISHED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A TestClient on `serve --ray` with two replicas, each keeping one model loaded; the
    number of result files each job wrote is counted."""
    saved = dict(os.environ)
    try:
        with ray_cluster(token=False) as (address, env):
            os.environ[TEST_MODELS_ENV] = "1"
            app = create_app(Settings(token=TOKEN, cache_dir=str(tmp_path_factory.mktemp("cache")),
                                      ray_address=address, models_per_replica=1))  # one replica per GPU
            store, writes = app.state.jobs.store, collections.Counter()
            write_result = store.write_result

            def counted(job_id, data):
                writes[job_id] += 1
                return write_result(job_id, data)

            store.write_result = counted
            with TestClient(app, base_url=BASE, headers=AUTH) as client:
                client.writes, client.cluster = writes, (address, env)
                yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)


def replicas(client):
    return client.get("/health").json()["replicas"]


def wait_all(client, ids, timeout):
    deadline = time.monotonic() + timeout
    records = {}
    while time.monotonic() < deadline:
        records = {i: client.get(f"/jobs/{i}").json() for i in ids}
        if all(r["state"] in FINISHED for r in records.values()):
            return records
        time.sleep(0.2)
    raise AssertionError(f"not finished after {timeout} s: {[r['state'] for r in records.values()]}")


def test_health_names_both_replicas(service):
    health = service.get("/health").json()
    assert health["device"] == "ray: 2 replica(s), one GPU each"
    deadline = time.monotonic() + 30
    while len(health["replicas"] or []) < 2 and time.monotonic() < deadline:  # the first heartbeats
        time.sleep(0.5)
        health = service.get("/health").json()
    assert len(health["replicas"]) == 2 and all(r["state"] == "idle" for r in health["replicas"]), health
    assert all(r["device"] == "cpu" and r["pid"] != os.getpid() for r in health["replicas"])


def test_each_model_stays_on_the_replica_that_loaded_it(service):
    # One model per replica: alternating models would reload on every job if routing ignored them.
    for n in range(8):
        model, params = ("builtin", {"prompt": "a chair", "resolution": 32, "num_inference_steps": 4}) if n % 2 \
            else ("test-cube", {"num_inference_steps": 2})
        record = wait(service, submit(service, params, model=model).json()["id"], timeout=120)
        assert record["state"] == "succeeded", record
    loads = {r["id"]: (r["loads"], r["models"]) for r in replicas(service)}
    assert sum(count for count, _ in loads.values()) <= 3, loads  # 2 when the second model goes to the idle one
    assert sorted(m for _, models in loads.values() for m in models) == ["builtin", "test-cube"], loads


def test_cancel_queue_order_progress_and_errors_work_on_replicas(service):
    long = {"num_inference_steps": 400, "step_delay": 0.05}
    running = [submit(service, long).json()["id"] for _ in range(2)]
    for job_id in running:
        wait(service, job_id, until=("running",), timeout=60)
    queued = [submit(service, {"num_inference_steps": 3, "seed": n}).json()["id"] for n in range(3)]
    failing = submit(service, {"fail": "generation"}).json()["id"]
    assert service.get(f"/jobs/{queued[1]}").json()["message"] == "queued, 3 job(s) ahead"
    while service.get(f"/jobs/{running[0]}").json()["step"] < 3:  # progress comes back from the replica
        time.sleep(0.05)
    asked = time.monotonic()
    assert service.delete(f"/jobs/{running[0]}").status_code == 200
    cancelled = wait(service, running[0], timeout=30)
    assert cancelled["state"] == "cancelled" and time.monotonic() - asked < 2.0, cancelled
    assert cancelled["step"] < 400 and cancelled["ran_on"]
    service.delete(f"/jobs/{running[1]}")
    records = wait_all(service, queued + [failing, running[1]], timeout=120)
    starts = [records[i]["started_at"] for i in queued]
    assert starts == sorted(starts)  # first in, first out, over both replicas
    assert all(records[i]["state"] == "succeeded" and records[i]["has_preview"] for i in queued)
    assert service.get(f"/jobs/{queued[0]}/preview").status_code == 200
    assert records[failing]["state"] == "failed" and "empty surface" in records[failing]["error"]


def test_a_running_jobs_current_state_comes_from_its_replica(service):
    job_id = submit(service, {"num_inference_steps": 400, "step_delay": 0.05, "offer_state": True}).json()["id"]
    wait(service, job_id, until=("running",), timeout=60)
    while not service.get(f"/jobs/{job_id}").json()["has_current_state"]:
        time.sleep(0.05)
    first = service.get(f"/jobs/{job_id}/current")
    assert first.status_code == 200, first.text
    (cube,), _ = read_glb_meshes(first.content)
    step = read_glb_extras(first.content)[EXTRAS_KEY]["current_state"]["step"]
    assert 0 < step < 400 and abs(cube.vertices.max() - 0.5 * step / 400) < 1e-6  # the cube grown so far
    service.delete(f"/jobs/{job_id}")
    record = wait(service, job_id, timeout=30)
    assert record["state"] == "cancelled" and record["has_current_state"]  # saved as it stopped
    (last,), _ = read_glb_meshes(service.get(f"/jobs/{job_id}/current").content)
    assert last.vertices.max() > cube.vertices.max()


def test_forty_jobs_spread_over_both_replicas_and_a_killed_one_loses_none(service, caplog):
    # A slow job to kill mid-run (a built-in job may end between looking and killing), then 40 built-in ones.
    slow = submit(service, {"num_inference_steps": 100, "step_delay": 0.05}).json()["id"]
    ids = [slow] + [submit(service, {"prompt": ("a chair", "a table", "a lamp", "a stool")[n % 4], "seed": n,
                                     "resolution": 32, "num_inference_steps": 6}, model="builtin").json()["id"]
                    for n in range(40)]
    deadline = time.monotonic() + 120
    while not (busy := [r for r in replicas(service) if r["job"] == slow]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert busy, "the slow job never showed on a replica"
    killed = busy[0]
    time.sleep(1.0)  # mid-job: a fifth of its steps done
    os.kill(killed["pid"], signal.SIGKILL)
    records = wait_all(service, ids, timeout=300)
    assert [r["state"] for r in records.values()].count("succeeded") == 41, \
        [(r["state"], r["error"]) for r in records.values() if r["state"] != "succeeded"]
    assert all(service.writes[i] == 1 for i in ids), service.writes  # each result written once
    assert len({r["ran_on"] for r in records.values()}) >= 2  # spread over both (and the replacement)
    retried = [r.args[0] for r in caplog.records if "died under it" in r.getMessage()]
    assert retried == [slow] and killed["id"] in caplog.text, caplog.text
    assert records[slow]["ran_on"].split(" ")[0] != killed["id"]  # finished on another replica
    parts, _ = read_glb_meshes(service.get(f"/jobs/{slow}/result").content)
    assert parts
    deadline = time.monotonic() + 120  # Serve replaces the dead replica
    while time.monotonic() < deadline:
        states = collections.Counter(r["state"] for r in replicas(service))
        if states["idle"] == 2:
            break
        time.sleep(1)
    assert states["idle"] == 2 and states["lost"] == 1, states


def test_a_machine_that_joins_gets_a_replica_and_jobs(service):
    """Add machines, get throughput: a node with one more GPU joins the running cluster; a third
    replica starts there without a restart, and three long jobs run at once, one on each."""
    join_node(*service.cluster, gpus=1, cpus=1)
    deadline = time.monotonic() + 120
    while len(live := [r for r in replicas(service) if r["state"] != "lost"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(live) == 3, live  # (both raylets run on this machine: one address for all three)
    while (device := service.get("/health").json()["device"]) != "ray: 3 replica(s), one GPU each" and \
            time.monotonic() < deadline:  # running once Serve has checked it is healthy
        time.sleep(0.5)
    assert device == "ray: 3 replica(s), one GPU each"
    ids = [submit(service, {"num_inference_steps": 400, "step_delay": 0.05}).json()["id"] for _ in range(3)]
    deadline = time.monotonic() + 60
    while not all(on := [service.get(f"/jobs/{i}").json()["ran_on"] for i in ids]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(on) and len({place.split(" ")[0] for place in on}) == 3, on  # three replicas at once
    for job_id in ids:
        service.delete(f"/jobs/{job_id}")
    assert all(r["state"] == "cancelled" for r in wait_all(service, ids, timeout=60).values())


def test_a_hung_replica_is_stopped_and_its_job_fails_saying_so(service):
    """A step that never returns (a driver hang): no news for stall_s, the replica is killed, the
    job runs once more elsewhere, hangs again and is failed; nothing is left running."""
    executor = service.app.state.jobs.executor
    saved, executor.stall_s = executor.stall_s, 2.0
    try:
        hung = submit(service, {"num_inference_steps": 2, "step_delay": 3600}).json()["id"]
        record = wait_all(service, [hung], timeout=120)[hung]
    finally:
        executor.stall_s = saved
    assert record["state"] == "failed" and "failed 2 times" in record["error"], record
    assert "hung (no news for 2 s) and was stopped" in record["error"], record["error"]
    assert service.writes[hung] == 0


def test_a_silent_stream_is_stopped_once_the_job_has_started():
    from backend.cluster.ray_executor import watch

    released, stopped = threading.Event(), []

    def stream():
        time.sleep(0.5)  # waiting for a free replica: not a stall
        yield {"kind": "started"}
        released.wait(10)  # then nothing: hung
        raise RuntimeError("the replica died")

    replica: dict = {}
    events = watch(stream(), 0.2, replica, lambda: (stopped.append(time.monotonic()), released.set()))
    replica.update(next(events))  # as RayExecutor._attempt does with "started"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="died"):
        next(events)
    assert replica["stalled"] and len(stopped) == 1 and 0.15 < stopped[0] - started < 2.0
    assert list(watch(iter([{"kind": "done"}]), 0, {}, lambda: None)) == [{"kind": "done"}]  # 0: never stopped


def test_the_policy_counts_the_live_nodes_gpus_a_few_times_a_minute(monkeypatch):
    import ray

    from backend.cluster import scaling

    counts = iter([{"GPU": 2.0, "CPU": 4.0}, {"GPU": 3.0, "CPU": 5.0}, {"CPU": 5.0}])
    monkeypatch.setattr(ray, "cluster_resources", lambda: next(counts))
    monkeypatch.setattr(scaling, "_seen", {})
    clock = [100.0]
    monkeypatch.setattr(scaling.time, "monotonic", lambda: clock[0])
    assert scaling.one_per_gpu(None) == (2, {})
    clock[0] += 1.0  # within REFRESH_S: the count from before, Ray not asked
    assert scaling.one_per_gpu(None) == (2, {})
    clock[0] += scaling.REFRESH_S
    assert scaling.one_per_gpu(None) == (3, {})  # a machine joined
    clock[0] += scaling.REFRESH_S
    assert scaling.one_per_gpu(None) == (1, {})  # every GPU machine gone: one replica waits for one
