"""Import current state: a long job hands out where it stands while it runs, keeps it when it
is cancelled, and every other case gets a clear answer instead of a hang."""

import time

import numpy as np
import pytest

from backend.job_store import JobStore
from backend.jobs import JobManager
from backend.models import LoadOptions, ModelEntry
from backend.results import MeshPart, MeshResult
from formats.glb import read_glb
from tests.backend.test_jobs import cube_entry, wait


def climbing_entry(step_delay: float = 0.02, offers_state: bool = True) -> ModelEntry:
    """A model whose state after step k is a triangle k units high, and that says so each step."""

    def run(pipe, params, files, callback):
        total = int(params["num_inference_steps"])
        for step in range(1, total + 1):
            time.sleep(step_delay)
            state = (lambda k=step: triangle(k)) if offers_state else None
            callback("climb", step, total, state=state)
        return triangle(total)

    return ModelEntry(name="climb", task="text_to_3d", description="test", source="test", load=lambda options: None,
                      run=run, params={"prompt": "", "num_inference_steps": 400})


def triangle(height: float) -> MeshResult:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, height, 0]], np.float32)
    return MeshResult(parts=[MeshPart("t", vertices, np.array([[0, 1, 2]]))], metadata={"height": height})


def height_of(path) -> float:
    return float(read_glb(path.read_bytes()).parts[0].vertices[:, 1].max())


@pytest.fixture
def manager(tmp_path):
    jobs = JobManager(tmp_path, [climbing_entry(), cube_entry(name="plain")], LoadOptions(device="cpu"))
    jobs.start()
    yield jobs
    jobs.close()


def test_a_running_job_gives_its_state_at_its_next_step(manager):
    job = manager.submit("text_to_3d", "climb", {}, {})
    while (record := manager.get(job["id"]))["step"] < 5:
        time.sleep(0.01)
    assert record["has_current_state"]
    first = height_of(manager.current_state(job["id"]))
    time.sleep(0.2)
    second = height_of(manager.current_state(job["id"]))
    assert 5 <= first < second < 400  # made fresh each time, from the running job
    meta = read_glb(manager.current_state(job["id"]).read_bytes()).metadata
    assert meta["current_state"]["total"] == 400 and meta["height"] >= second
    manager.cancel(job["id"])
    done = wait(manager, job["id"])
    assert done["state"] == "cancelled" and done["has_current_state"]  # saved as it stopped
    kept = height_of(manager.current_state(job["id"]))
    assert kept >= second and kept in (done["step"], done["step"] + 1)  # the step it was cancelled at


def test_every_other_case_gets_a_reason(manager, tmp_path):
    plain = manager.submit("text_to_3d", "plain", {"num_inference_steps": 50, "step_delay": 0.02}, {})
    while manager.get(plain["id"])["state"] != "running":
        time.sleep(0.005)
    with pytest.raises(LookupError, match="has no current state"):
        manager.current_state(plain["id"])  # a model that offers none
    wait(manager, plain["id"])
    with pytest.raises(LookupError, match="has succeeded"):
        manager.current_state(plain["id"])
    with pytest.raises(KeyError):
        manager.current_state("nope")
    finished = manager.submit("text_to_3d", "climb", {"num_inference_steps": 3}, {})
    assert not wait(manager, finished["id"])["has_current_state"]  # its result is where it ended


def test_a_slow_step_times_out_instead_of_hanging(tmp_path):
    jobs = JobManager(tmp_path, [climbing_entry(step_delay=1.0)], LoadOptions(device="cpu"))
    jobs.start()
    try:
        job = jobs.submit("text_to_3d", "climb", {"num_inference_steps": 5}, {})
        while jobs.get(job["id"])["step"] < 1:
            time.sleep(0.01)
        with pytest.raises(TimeoutError, match="did not reach its next step"):
            jobs.current_state(job["id"], timeout=0.05)
        jobs.cancel(job["id"])
    finally:
        jobs.close()


def test_a_long_job_saves_itself_and_a_restart_still_offers_it(tmp_path, monkeypatch):
    monkeypatch.setattr("backend.job_run.AUTOSAVE_S", 0.1)
    jobs = JobManager(tmp_path, [climbing_entry()], LoadOptions(device="cpu"))
    jobs.start()
    job = jobs.submit("text_to_3d", "climb", {}, {})
    path = jobs.store.current_state_path(job["id"])
    deadline = time.monotonic() + 10
    while not path.is_file():  # nobody asked: it saved itself
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert height_of(path) >= 1
    record = dict(jobs.get(job["id"]))
    jobs.close()
    store = JobStore(tmp_path)  # as if the process had died under it: the database still says "running"
    store.save({**record, "state": "running", "has_current_state": False})
    store.close()
    restarted = JobManager(tmp_path, [climbing_entry()], LoadOptions(device="cpu"))
    try:
        after = restarted.get(job["id"])
        assert after["state"] == "failed" and after["has_current_state"] and "continued from" in after["error"], after
        assert height_of(restarted.current_state(job["id"])) >= 1
    finally:
        restarted.close()


def test_waiting_requests_are_capped(tmp_path):
    """Each request for a running job's state holds a server thread while it waits: beyond a few
    at once, the next is told to come back instead of taking another thread."""
    import threading

    from backend.jobs import MAX_STATE_WAITERS, StateRequestsBusy

    jobs = JobManager(tmp_path, [climbing_entry(step_delay=0.5)], LoadOptions(device="cpu"))
    jobs.start()
    try:
        job = jobs.submit("text_to_3d", "climb", {"num_inference_steps": 20}, {})
        while jobs.get(job["id"])["step"] < 1:
            time.sleep(0.01)
        waiters = [threading.Thread(target=jobs.current_state, args=(job["id"],)) for _ in range(MAX_STATE_WAITERS)]
        for waiter in waiters:
            waiter.start()
        deadline = time.monotonic() + 5
        while jobs._state_waiters < MAX_STATE_WAITERS:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with pytest.raises(StateRequestsBusy, match="waiting already"):
            jobs.current_state(job["id"])
        for waiter in waiters:
            waiter.join(timeout=5)
        assert jobs._state_waiters == 0
        height_of(jobs.current_state(job["id"]))  # and once they are answered, the next is served
        jobs.cancel(job["id"])
    finally:
        jobs.close()


def test_a_cancel_alone_keeps_where_the_job_stood(manager):
    """Nobody asked before: the cancel itself saves the state, at the step it stopped."""
    job = manager.submit("text_to_3d", "climb", {}, {})
    while manager.get(job["id"])["step"] < 5:
        time.sleep(0.01)
    assert not manager.store.current_state_path(job["id"]).is_file()
    manager.cancel(job["id"])
    done = wait(manager, job["id"])
    assert done["state"] == "cancelled" and done["has_current_state"]
    assert height_of(manager.current_state(job["id"])) in (done["step"], done["step"] + 1)


def test_a_state_asked_for_mid_run_goes_when_the_job_succeeds(manager):
    job = manager.submit("text_to_3d", "climb", {"num_inference_steps": 30}, {})
    while manager.get(job["id"])["step"] < 2:
        time.sleep(0.01)
    manager.current_state(job["id"])
    assert wait(manager, job["id"])["state"] == "succeeded"
    with pytest.raises(LookupError, match="has succeeded"):  # not the stale mid-run file
        manager.current_state(job["id"])
