"""Resuming a stopped job (POST /jobs/{id}/resume, JobManager.resume): the new job runs from the
checkpoint with the first one's model, settings and uploads; everything that cannot be resumed
gets a reason; old checkpoints are deleted so they cannot fill the disk."""

import time
from pathlib import Path

import pytest
import torch

from backend.errors import InputError
from backend.geometry.glb import mesh_result_to_glb
from backend.job_run import CHECKPOINT, StepControl, pack_checkpoint, run_loaded
from backend.job_store import KEEP_CHECKPOINTS
from backend.jobs import JobManager
from backend.models import LoadOptions, ModelEntry
from tests.backend.test_current_state import triangle
from tests.backend.test_jobs import cube_entry, wait


def counting_entry() -> ModelEntry:
    """A resumable model: its value after step k depends on every step before, so a resume that
    lost or repeated a step ends elsewhere; it notes the size of its `mesh` upload."""

    def run(pipe, params, files, callback, resume=None):
        total, delay = int(params["num_inference_steps"]), float(params["step_delay"])
        step, value = (int(resume["step"]), resume["value"]) if resume else (0, torch.tensor(1.0, dtype=torch.float64))
        for step in range(step + 1, total + 1):
            time.sleep(delay)
            value = value * 1.01 + step
            callback("count", step, total, checkpoint=lambda k=step, v=value: {"step": k, "value": v})
        result = triangle(float(value))
        result.metadata = {"value": float(value), "upload": len(files.get("mesh", b""))}
        return result

    return ModelEntry(name="count", task="text_to_3d", description="test", source="test", load=lambda options: None,
                      run=run, params={"prompt": "", "num_inference_steps": 60, "step_delay": 0.01}, resumable=True)


@pytest.fixture
def manager(tmp_path):
    jobs = JobManager(tmp_path, [counting_entry(), cube_entry()], LoadOptions(device="cpu"))
    jobs.start()
    yield jobs
    jobs.close()


def cancelled_midway(manager, files=None) -> dict:
    job = manager.submit("text_to_3d", "count", {}, files or {})
    deadline = time.monotonic() + 10
    while manager.get(job["id"])["step"] < 5:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    manager.cancel(job["id"])
    return wait(manager, job["id"])


def test_a_resumed_job_goes_on_with_the_first_ones_settings_and_uploads(manager):
    upload = mesh_result_to_glb(triangle(2.0))
    whole = wait(manager, manager.submit("text_to_3d", "count", {}, {"mesh": upload})["id"])
    stopped = cancelled_midway(manager, {"mesh": upload})
    assert stopped["state"] == "cancelled" and stopped["has_checkpoint"] and 5 <= stopped["step"] < 60, stopped
    resumed = manager.resume(stopped["id"])
    assert resumed["resumed_from"] == stopped["id"] and resumed["params"] == stopped["params"]
    done = wait(manager, resumed["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["result_metadata"]["value"] == whole["result_metadata"]["value"]  # no step lost or repeated
    assert done["result_metadata"]["upload"] == len(upload)  # its uploads came back from the checkpoint
    assert not done["has_checkpoint"] and not manager.store.checkpoint_path(done["id"]).exists()


def test_what_cannot_be_resumed_says_why(manager):
    with pytest.raises(KeyError):
        manager.resume("nope")
    plain = wait(manager, manager.submit("text_to_3d", "cube", {}, {})["id"])
    with pytest.raises(LookupError, match="only a cancelled or interrupted job"):
        manager.resume(plain["id"])
    stopped = manager.submit("text_to_3d", "cube", {"num_inference_steps": 400, "step_delay": 0.01}, {})
    manager.cancel(stopped["id"])
    with pytest.raises(LookupError, match="model cube cannot resume"):
        manager.resume(wait(manager, stopped["id"])["id"])
    early = cancelled_midway(manager)
    manager.store.checkpoint_path(early["id"]).unlink()
    with pytest.raises(LookupError, match="kept no checkpoint"):
        manager.resume(early["id"])
    with pytest.raises(InputError, match="unknown upload"):  # nobody sends a checkpoint of their own
        manager.submit("text_to_3d", "count", {}, {"checkpoint": b"anything"})


def test_a_damaged_checkpoint_fails_the_resumed_job_in_words(manager):
    stopped = cancelled_midway(manager)
    path = manager.store.checkpoint_path(stopped["id"])
    path.write_bytes(path.read_bytes()[:100])
    done = wait(manager, manager.resume(stopped["id"])["id"])
    assert done["state"] == "failed" and "checkpoint cannot be read" in done["error"], done


def test_only_the_newest_checkpoints_are_kept(manager):
    stopped = [cancelled_midway(manager)["id"] for _ in range(KEEP_CHECKPOINTS + 1)]
    manager.store.prune(manager.keep_jobs)
    kept = [manager.store.checkpoint_path(job_id).is_file() for job_id in stopped]
    assert kept == [False] + [True] * KEEP_CHECKPOINTS
    assert not manager.get(stopped[0])["has_checkpoint"] and manager.get(stopped[-1])["has_checkpoint"]


def test_a_checkpoint_is_copied_to_the_resumed_job_and_run_from_its_file(manager, monkeypatch):
    stopped = cancelled_midway(manager)
    checkpoint = manager.store.checkpoint_path(stopped["id"])
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real(self))
    resumed = manager.resume(stopped["id"])
    assert checkpoint not in read  # the request copies it a chunk at a time
    assert wait(manager, resumed["id"])["state"] == "succeeded"
    assert not [path for path in read if path.name == CHECKPOINT]  # and the run reads its copy from the file


class _Quiet:
    """A Report that keeps nothing."""

    def progress(self, *args):
        pass

    state = checkpoint = note = placed = progress


def test_a_running_job_lets_go_of_its_checkpoint_bytes_once_read():
    entry = counting_entry()
    params = {"prompt": "", "num_inference_steps": 8, "step_delay": 0.0}
    files = {CHECKPOINT: pack_checkpoint(entry, {}, {"step": 6, "value": torch.tensor(2.0, dtype=torch.float64)})}
    output = run_loaded(entry, None, params, files, StepControl(), _Quiet())
    assert CHECKPOINT not in files  # the caller's dict no longer holds a hundred megabytes for the whole run
    assert output.glb


def test_a_checkpoint_file_is_read_a_tensor_at_a_time(tmp_path):
    """Given its file (as the local executor is), the run never holds the checkpoint's bytes whole:
    Python's allocations peak far below its size, where reading the bytes first needs all of it."""
    import tracemalloc

    entry = counting_entry()
    params = {"prompt": "", "num_inference_steps": 8, "step_delay": 0.0}
    # mostly run state, as a distillation's is (its field and optimiser moments), and a 1 MB upload
    upload = torch.arange(1 << 20, dtype=torch.uint8)
    state = {"step": 6, "value": torch.tensor(2.0, dtype=torch.float64), "field": torch.rand(3 << 20)}  # 12 MB
    path = tmp_path / CHECKPOINT
    path.write_bytes(pack_checkpoint(entry, {"mesh": bytes(upload.numpy())}, state))
    size = path.stat().st_size

    def peak(files):
        tracemalloc.start()
        try:
            output = run_loaded(entry, None, params, files, StepControl(), _Quiet())
            return tracemalloc.get_traced_memory()[1], output
        finally:
            tracemalloc.stop()

    from_bytes, _ = peak({CHECKPOINT: path.read_bytes()})  # first: the modules a run imports are imported
    from_file, output = peak({CHECKPOINT: path})
    assert output.metadata["upload"] == len(upload)  # the uploads it kept came back whole
    assert from_file < size / 4 < size <= from_bytes, (from_file, from_bytes, size)
