"""The job manager without HTTP: FIFO, progress, previews, model caching, restarts, errors."""

import threading
import time

import numpy as np
import pytest

from backend.geometry.glb import mesh_result_to_glb
from backend.job_store import JobStore
from backend.jobs import BackendStopping, JobManager, check_inputs, describe_error
from backend.models import LoadOptions, ModelEntry, get_entry, resolve_params, run_test_cube
from backend.errors import GenerationFailed, InputError, ModelUnavailable
from backend.results import MeshPart, MeshResult


def cube_entry(**overrides) -> ModelEntry:
    fields = dict(name="cube", task="text_to_3d", description="test", source="test", load=lambda options: "pipe",
                  run=run_test_cube, params={"prompt": "", "num_inference_steps": 3, "step_delay": 0.0, "fail": ""})
    fields.update(overrides)
    return ModelEntry(**fields)


@pytest.fixture
def make_manager(tmp_path):
    managers = []

    def make(entries):
        manager = JobManager(tmp_path, entries, LoadOptions(device="cpu"))
        manager.start()
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.close()


def wait(manager, job_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = manager.get(job_id)
        if record["state"] in ("succeeded", "failed", "cancelled"):
            return record
        time.sleep(0.005)
    raise AssertionError(f"job {job_id} did not finish")


def test_jobs_run_in_submission_order(make_manager):
    manager = make_manager([cube_entry()])
    ids = [manager.submit("text_to_3d", None, {"prompt": str(i), "step_delay": 0.01}, {})["id"] for i in range(4)]
    records = [wait(manager, i) for i in ids]
    starts = [r["started_at"] for r in records]
    assert starts == sorted(starts)
    # One worker: each job starts after the previous one finished.
    assert all(b["started_at"] >= a["finished_at"] for a, b in zip(records, records[1:]))


def test_progress_eta_and_preview(make_manager, tmp_path):
    manager = make_manager([cube_entry()])
    job = manager.submit("text_to_3d", None, {"num_inference_steps": 6, "step_delay": 0.05}, {})
    seen = []
    while (record := manager.get(job["id"]))["state"] in ("queued", "running"):
        seen.append(record)
        time.sleep(0.01)
    mid = [r for r in seen if r["state"] == "running" and 2 <= r["step"] < 6]
    assert mid, "no progress was reported while running"
    assert all(r["phase"] == "denoise" and r["total"] == 6 and r["progress"] == r["step"] / 6 for r in mid)
    assert all(r["eta_s"] is not None and r["eta_s"] > 0 for r in mid)
    assert record["state"] == "succeeded" and record["has_preview"]
    png = (tmp_path / "jobs" / job["id"] / "preview.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert (tmp_path / "jobs" / job["id"] / "result.glb").read_bytes()[:4] == b"glTF"


def test_a_repeated_step_checks_for_cancel_and_leaves_the_eta_alone(make_manager):
    """A texture view calls back after each denoising step with the view's own step: the ETA
    must not climb while it repeats, and a cancel must still land there."""
    etas = []

    def run(pipe, params, files, callback):
        callback("paint", 1, 4, np.zeros((4, 4, 3), np.uint8))
        job_id = manager.list(1)[0]["id"]
        for _ in range(5):
            time.sleep(0.05)
            callback("paint", 1, 4)
            etas.append(manager.get(job_id)["eta_s"])
        manager.cancel(job_id)
        callback("paint", 1, 4)
        raise AssertionError("the cancel was not seen")

    manager = make_manager([cube_entry(run=run)])
    record = wait(manager, manager.submit("text_to_3d", None, {}, {})["id"])
    assert record["state"] == "cancelled", record
    assert len(set(etas)) == 1, etas


def test_progress_moves_within_a_long_step(make_manager):
    """A view's denoising steps report how far into the view they are: the bar moves, the step
    (views painted) stays, and the ETA follows."""
    seen = []

    def run(pipe, params, files, callback):
        callback("paint", 1, 4, np.zeros((4, 4, 3), np.uint8))
        job_id = manager.list(1)[0]["id"]
        for k in (1, 2, 3):
            time.sleep(0.05)
            callback("paint", 1, 4, within=k / 4)
            record = manager.get(job_id)
            seen.append((record["step"], record["progress"], record["eta_s"]))
        return run_test_cube(pipe, {**params, "num_inference_steps": 1}, files, lambda *a, **k: None)

    manager = make_manager([cube_entry(run=run)])
    assert wait(manager, manager.submit("text_to_3d", None, {}, {})["id"])["state"] == "succeeded"
    assert [(step, progress) for step, progress, _ in seen] == [(1, 1.25 / 4), (1, 1.5 / 4), (1, 1.75 / 4)], seen
    assert all(eta is not None and eta > 0 for _, _, eta in seen)


def test_uploads_wait_on_disk_and_go_when_the_job_ends(make_manager, tmp_path):
    """A queue of texture jobs must not hold every mesh in memory: uploads wait in the job's
    folder, reach the pipeline whole, and are deleted once the job is over (or cancelled)."""
    gate, seen = threading.Event(), {}

    def run(pipe, params, files, callback):
        if params["prompt"] == "first":
            gate.wait(10)  # the others stay queued meanwhile
        seen.update(files)
        return run_test_cube(pipe, {**params, "num_inference_steps": 1}, files, callback)

    manager = make_manager([cube_entry(run=run)])
    first = manager.submit("text_to_3d", None, {"prompt": "first"}, {})
    mesh = mesh_result_to_glb(MeshResult(parts=[MeshPart("m", np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))]))
    queued = manager.submit("text_to_3d", None, {}, {"mesh": mesh})
    cancelled = manager.submit("text_to_3d", None, {}, {"mesh": mesh})
    uploads = tmp_path / "jobs" / queued["id"] / "uploads"
    assert (uploads / "mesh").read_bytes() == mesh
    manager.cancel(cancelled["id"])
    assert not (tmp_path / "jobs" / cancelled["id"] / "uploads").exists()
    gate.set()
    assert wait(manager, queued["id"])["state"] == "succeeded" and wait(manager, first["id"])["state"] == "succeeded"
    assert seen["mesh"] == mesh and not uploads.exists()


def test_pipeline_is_loaded_once_per_model(make_manager):
    loads = []
    manager = make_manager([cube_entry(load=lambda options: loads.append(options.device) or "pipe")])
    for _ in range(3):
        wait(manager, manager.submit("text_to_3d", "cube", {}, {})["id"])
    assert loads == ["cpu"]


def test_one_downloaded_model_is_kept_loaded_at_a_time(make_manager):
    """Shap-E, then SD2-depth, then Shap-E again: the second load frees the first (an 8 GB GPU
    does not hold both); the small built-in model stays loaded throughout."""
    loads = []

    def entry(name, source, task="text_to_3d"):
        return cube_entry(name=name, source=source, task=task, load=lambda options: loads.append(name) or name)

    manager = make_manager([entry("shap-e", "openai/shap-e"), entry("sd2", "stabilityai/sd2"), entry("builtin", "builtin")])
    for name in ("builtin", "shap-e", "sd2", "builtin", "shap-e", "shap-e"):
        assert wait(manager, manager.submit("text_to_3d", name, {}, {})["id"])["state"] == "succeeded"
    assert loads == ["builtin", "shap-e", "sd2", "shap-e"]


def test_load_failure_fails_the_job_with_its_message(make_manager):
    def load(options):
        raise ModelUnavailable("model x is not downloaded; run with downloads allowed once")

    manager = make_manager([cube_entry(load=load)])
    record = wait(manager, manager.submit("text_to_3d", None, {}, {})["id"])
    assert record["state"] == "failed" and record["error"] == "model x is not downloaded; run with downloads allowed once"


def test_interrupted_jobs_are_failed_on_restart(tmp_path):
    store = JobStore(tmp_path)
    base = {"task": "text_to_3d", "model": "cube", "params": {}, "phase": "denoise", "step": 3, "total": 9,
            "progress": 0.3, "eta_s": 1.0, "message": "", "error": None, "has_preview": False, "has_result": False,
            "result_metadata": None, "started_at": None, "finished_at": None}
    store.save({**base, "id": "ran", "state": "running", "created_at": 1.0})
    store.save({**base, "id": "waited", "state": "queued", "created_at": 2.0})
    store.save({**base, "id": "done", "state": "succeeded", "created_at": 3.0, "has_result": True})
    store.close()

    manager = JobManager(tmp_path, [cube_entry()], LoadOptions())
    try:
        assert manager.get("ran")["state"] == "failed"
        assert manager.get("ran")["error"] == "the backend stopped while this job ran"
        assert manager.get("waited")["error"] == "the backend stopped before this job ran"
        assert manager.get("done")["state"] == "succeeded" and manager.get("done")["error"] is None
        assert [r["id"] for r in manager.list(10)] == ["done", "waited", "ran"]
        assert [r["id"] for r in manager.list(2)] == ["done", "waited"]
    finally:
        manager.close()


def test_only_the_newest_finished_jobs_are_kept(tmp_path):
    manager = JobManager(tmp_path, [cube_entry()], LoadOptions(), keep_jobs=2)
    manager.start()
    try:
        ids = [manager.submit("text_to_3d", None, {"prompt": str(i)}, {})["id"] for i in range(4)]
        wait(manager, ids[-1])  # one worker, first in first out: the others finished before
        folders = lambda: sorted(p.name for p in (tmp_path / "jobs").iterdir())  # noqa: E731
        deadline = time.monotonic() + 5
        while (len(manager.list(10)) > 2 or len(folders()) > 2) and time.monotonic() < deadline:
            time.sleep(0.01)  # pruning follows each job's end
        assert [r["id"] for r in manager.list(10)] == ids[:1:-1]
        assert folders() == sorted(ids[2:])  # their files went too
        kept = manager.list(1)[0]
    finally:
        manager.close()

    store = JobStore(tmp_path)
    store.save({**kept, "id": "waiting", "state": "queued", "created_at": 0.0})
    assert store.prune(0) == 2 and [r["id"] for r in store.list(10)] == ["waiting"]  # never a queued job
    store.close()


def test_describe_error():
    assert describe_error(InputError("the prompt is empty"), "cuda") == "the prompt is empty"
    assert describe_error(ModelUnavailable("get it with X"), "cuda") == "get it with X"
    assert describe_error(GenerationFailed("empty surface"), "cuda") == "empty surface"
    oom = "out of memory on cuda: lower the resolution (grid, view or texture size), turn on model CPU offload, or use the CPU"
    assert describe_error(RuntimeError("CUDA out of memory. Tried to allocate 1 GiB"), "cuda") == oom
    torch = pytest.importorskip("torch")
    assert describe_error(torch.OutOfMemoryError("boom"), "cuda") == oom
    # System memory, whatever the device: torch's CPU allocator words it otherwise (Linux, then
    # Windows), and offload or the CPU would only need more of it.
    ram = "out of system memory: lower the resolution (grid, view or texture size), or close programs that hold memory"
    for text in ("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                 "you tried to allocate 68719476736 bytes.",
                 "[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: "
                 "you tried to allocate 68719476736 bytes."):
        assert describe_error(RuntimeError(text), "cuda") == describe_error(RuntimeError(text), "cpu") == ram
    assert describe_error(MemoryError(), "cuda") == ram
    assert describe_error(KeyError("x"), "cpu") == "internal error: KeyError: 'x'"


def test_resolve_params():
    entry = cube_entry()
    params = resolve_params(entry, {"prompt": "a", "step_delay": 1})
    assert params == {"seed": None, "prompt": "a", "num_inference_steps": 3, "step_delay": 1.0, "fail": ""}
    assert isinstance(params["step_delay"], float)
    with pytest.raises(InputError, match="unknown parameter.*bogus"):
        resolve_params(entry, {"bogus": 1})
    with pytest.raises(InputError, match="num_inference_steps"):
        resolve_params(entry, {"num_inference_steps": True})  # a bool is not a step count
    with pytest.raises(InputError, match="prompt"):
        resolve_params(entry, {"prompt": 5})


def test_get_entry_picks_defaults_and_explains_misses():
    a, b = cube_entry(name="a"), cube_entry(name="b", default=True)
    assert get_entry("text_to_3d", None, [a, b]) is b
    assert get_entry("text_to_3d", "a", [a, b]) is a
    with pytest.raises(InputError, match="unknown model 'c' for task 'text_to_3d'; available: a, b"):
        get_entry("text_to_3d", "c", [a, b])
    with pytest.raises(InputError, match="no model for this task yet"):
        get_entry("texture", None, [a, b])
    with pytest.raises(InputError, match="unknown task"):
        get_entry("paint", None, [a, b])


def test_check_inputs():
    mesh = mesh_result_to_glb(MeshResult(parts=[
        MeshPart("a", np.eye(3, dtype=np.float32), np.array([[0, 1, 2]])),
        MeshPart("b", np.eye(3, dtype=np.float32), np.array([[0, 1, 2], [0, 2, 1]])),
    ]))
    check_inputs("edit_part", {"mesh": mesh, "face_mask": b"\0\1\1"})  # 3 triangles over two parts
    with pytest.raises(InputError, match="needs the file.*mesh"):
        check_inputs("edit_part", {})
    with pytest.raises(InputError, match="needs the file.*image"):
        check_inputs("image_to_3d", {})
    with pytest.raises(InputError, match="face_mask has 2 bytes but mesh has 3 triangles"):
        check_inputs("edit_part", {"mesh": mesh, "face_mask": b"\0\1"})
    with pytest.raises(InputError, match="mesh_b"):
        check_inputs("edit_part", {"mesh": mesh, "mesh_b": b"glTF nonsense"})
    with pytest.raises(InputError, match="no mesh"):
        check_inputs("text_to_3d", {"face_mask": b"\1"})
    broken = np.eye(3, dtype=np.float32)
    broken[1, 2] = np.nan
    nan_mesh = mesh_result_to_glb(MeshResult(parts=[MeshPart("bent", broken, np.array([[0, 1, 2]]))]))
    with pytest.raises(InputError, match="mesh: part 'bent' has vertices that are NaN"):  # before any model loads
        check_inputs("texture", {"mesh": nan_mesh})


def test_stopping_the_backend_fails_the_running_job(tmp_path):
    manager = JobManager(tmp_path, [cube_entry()], LoadOptions())
    manager.start()
    running = manager.submit("text_to_3d", None, {"num_inference_steps": 1000, "step_delay": 0.02}, {})
    queued = manager.submit("text_to_3d", None, {}, {})
    while manager.get(running["id"])["step"] < 1:
        time.sleep(0.005)
    manager.close()
    with pytest.raises(BackendStopping, match="shutting down"):  # the server answers it with 503
        manager.submit("text_to_3d", None, {}, {})

    restarted = JobManager(tmp_path, [cube_entry()], LoadOptions())
    try:
        record = restarted.get(running["id"])
        assert record["state"] == "failed" and record["error"] == "the backend stopped while this job ran"
        assert record["step"] < 1000
        assert restarted.get(queued["id"])["error"] == "the backend stopped before this job ran"
    finally:
        restarted.close()


def test_a_second_backend_on_the_same_cache_dir_is_refused(tmp_path):
    first = JobManager(tmp_path, [cube_entry()], LoadOptions())
    try:
        with pytest.raises(ValueError, match="another backend is already using the cache directory"):
            JobManager(tmp_path, [cube_entry()], LoadOptions())
    finally:
        first.close()
    JobManager(tmp_path, [cube_entry()], LoadOptions()).close()  # free again once the first closed


def test_devices_take_cuda_then_mps_then_cpu_and_half_precision_on_cuda_only(monkeypatch):
    import torch

    from backend.devices import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == ("cuda", torch.float16)
    assert pick_device("auto", full_precision=True) == ("cuda", torch.float32)  # --full-precision
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto") == ("mps", torch.float32)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == ("cpu", torch.float32)
    with pytest.raises(ValueError, match="sees no CUDA GPU.*--device auto or cpu"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")


def test_cpu_offload_is_used_on_cuda_only():
    from backend.devices import place_pipeline

    class Pipeline:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            return lambda *args, **kwargs: self.calls.append((name, kwargs.get("device", args[0] if args else None)))

    on_cuda, on_cpu = Pipeline(), Pipeline()
    place_pipeline(on_cuda, "cuda", attention_slicing=True, cpu_offload=True)
    place_pipeline(on_cpu, "cpu", cpu_offload=True)
    assert [c[0] for c in on_cuda.calls] == ["enable_attention_slicing", "enable_model_cpu_offload", "set_progress_bar_config"]
    assert on_cpu.calls[0] == ("to", "cpu")  # offload is a CUDA feature: elsewhere the model just moves
