"""The shared service on a full, read-only or abruptly stopped disk: real servers, real mounts.

A server runs inside `unshare -rm` (a user and mount namespace, no root needed) over a small
tmpfs or a read-only bind mount; the test reaches that namespace's files through
/proc/<pid>/root. A second backend on the same folder (exit 75, its message) is covered by
tests/blender/test_service.py::test_a_second_blender_gets_a_cache_directory_of_its_own.
"""

import errno
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from backend.geometry.glb import mesh_result_to_glb
from backend.job_store import JobStore, StorageFull, StorageReadOnly
from backend.jobs import JobManager
from backend.models import LoadOptions, ModelEntry, run_test_cube
from backend.results import MeshPart, MeshResult

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "storage-faults"
TMPFS = 'mount -t tmpfs -o size=8m,mode=700 tmpfs "$0" && exec "$@"'
MAKE_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0"'  # over the folder, for that namespace
READ_ONLY = MAKE_READ_ONLY + ' && exec "$@"'
OWN_NAMESPACE = 'exec "$@"'  # nothing mounted yet


def _namespaces_work() -> bool:
    if not (sys.platform.startswith("linux") and shutil.which("unshare") and shutil.which("nsenter")):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces_work(),
                                      reason="needs Linux `unshare -rm` and `nsenter` (user namespaces)")


class Server:
    """`python -m backend serve` on `cache`, inside `unshare -rm sh -c <mount>` when given one."""

    def __init__(self, cache: Path, mount: str = ""):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = [sys.executable, "-m", "backend", "serve", "--port", str(self.port), "--token", TOKEN,
                   "--cache-dir", str(cache), "--device", "cpu", "--offline"]
        if mount:  # unshare and sh exec: the pid is the server's
            command = ["unshare", "-rm", "sh", "-c", mount, str(cache), *command]
        env = {**os.environ, "DIFFUSION3D_TEST_MODELS": "1", "OMP_NUM_THREADS": "1"}
        self.cache = cache
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10,
                                 headers={"Authorization": f"Bearer {TOKEN}"})

    def wait_ready(self) -> "Server":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.http.get("/health").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the backend did not start:\n{self.stop()}")

    def stop(self) -> str:
        """Stop the server; returns its log."""
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.communicate()[0]

    def folder(self) -> Path:
        """The cache folder as the server sees it (its tmpfs, its read-only mount)."""
        return Path(f"/proc/{self.process.pid}/root{self.cache}")

    def in_namespace(self, script: str) -> None:
        subprocess.run(["nsenter", "-t", str(self.process.pid), "-U", "-m", "sh", "-c", script, str(self.cache)],
                       check=True)

    def submit(self, params=None, model="test-cube", task="text_to_3d", files=None) -> httpx.Response:
        spec = {"task": task, "model": model, "params": params or {}}
        return self.http.post("/jobs", data={"spec": json.dumps(spec)}, files=files or {})

    def wait(self, job_id: str, until=("succeeded", "failed", "cancelled"), step=0, timeout=60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.http.get(f"/jobs/{job_id}").json()
            if record["state"] in until and record["step"] >= step:
                return record
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} still {record['state']} at step {record['step']}")


@pytest.fixture
def servers():
    started = []

    def start(cache: Path, mount: str = "") -> Server:
        started.append(Server(cache, mount))
        return started[-1].wait_ready()

    yield start
    for server in started:
        server.stop()


def mesh_upload() -> dict:
    import trimesh

    ball = trimesh.creation.icosphere(subdivisions=2)
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", ball.vertices.astype(np.float32), ball.faces)]))
    return {"mesh": ("ball.glb", glb, "model/gltf-binary")}


def fill(path: Path) -> None:
    """Write `path` until the disk is full, to the last page."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in (folder / "jobs").rglob("*.tmp"))


@needs_namespaces
def test_a_full_disk_refuses_uploads_fails_the_job_it_cannot_store_and_the_server_keeps_answering(tmp_path, servers):
    (cache := tmp_path / "cache").mkdir()
    server = servers(cache, TMPFS)
    folder = server.folder()
    first = server.submit().json()
    assert server.wait(first["id"])["state"] == "succeeded"

    # 1. A full disk: the upload is refused with the folder, the room free and needed, and nothing stays.
    fill(folder / "filler")
    refused = server.submit({"prompt": "bronze"}, model="test-texture", task="texture", files=mesh_upload())
    assert refused.status_code == 507, refused.text
    detail = refused.json()["detail"]
    assert f"the cache folder {cache} has 0 KB free; this upload needs" in detail and "--cache-dir" in detail, detail
    listed = server.http.get("/jobs")
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [first["id"]]
    assert [p.name for p in (folder / "jobs").iterdir()] == [first["id"]]

    # 2. A job whose result the disk cannot take ends failed, saying why; no .tmp stays.
    (folder / "filler").unlink()
    slow = server.submit({"num_inference_steps": 10, "step_delay": 0.2}).json()
    server.wait(slow["id"], until=("running",), step=1)
    fill(folder / "filler")
    failed = server.wait(slow["id"])
    assert failed["state"] == "failed" and not failed["has_result"], failed
    assert f"the cache folder {cache} has 0 KB free; this job's result needs" in failed["error"], failed["error"]
    assert server.http.get("/health").json()["queue_length"] == 0
    assert {r["id"]: r["state"] for r in server.http.get("/jobs").json()}[slow["id"]] == "failed"
    assert leftovers(folder) == [] and not (folder / "jobs" / slow["id"] / "result.glb").exists()

    # 3. Room again: uploads are taken, and the failure is in the database (written late if it had to be).
    (folder / "filler").unlink()
    again = server.submit({"prompt": "bronze"}, model="test-texture", task="texture", files=mesh_upload())
    assert again.status_code == 201, again.text
    assert server.wait(again.json()["id"])["state"] == "succeeded"
    for suffix in ("", "-wal"):  # a copy: SQLite would follow /proc/<pid>/root out of the namespace
        shutil.copy(folder / f"jobs.sqlite3{suffix}", tmp_path / f"copy.sqlite3{suffix}")
    with sqlite3.connect(tmp_path / "copy.sqlite3") as db:
        (state,) = db.execute("SELECT state FROM jobs WHERE id = ?", (slow["id"],)).fetchone()
    assert state == "failed"


@needs_namespaces
def test_a_read_only_cache_folder_stops_the_start_with_the_fix(tmp_path):
    (cache := tmp_path / "cache").mkdir()
    command = [sys.executable, "-m", "backend", "serve", "--port", "8769", "--cache-dir", str(cache), "--device", "cpu"]
    start = subprocess.run(["unshare", "-rm", "sh", "-c", READ_ONLY, str(cache), *command], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert start.returncode == 2, start.stderr
    assert f"error: cannot write in the cache folder {cache} (Read-only file system)" in start.stderr, start.stderr
    assert "--cache-dir" in start.stderr and "DIFFUSION3D_CACHE" in start.stderr and "Traceback" not in start.stderr


@needs_namespaces
def test_a_cache_folder_turned_read_only_refuses_submits_and_still_serves_reads(tmp_path, servers):
    (cache := tmp_path / "cache").mkdir()
    server = servers(cache, OWN_NAMESPACE)
    done = server.submit().json()
    assert server.wait(done["id"])["state"] == "succeeded"

    server.in_namespace(MAKE_READ_ONLY)
    for refused in (server.submit(), server.submit({"prompt": "bronze"}, model="test-texture", task="texture",
                                                   files=mesh_upload())):
        assert refused.status_code == 507, refused.text
        assert refused.json()["detail"] == (f"the cache folder {cache} is not writable (Read-only file system): "
                                            "make it writable or start the backend with --cache-dir on a writable disk")
    assert [r["id"] for r in server.http.get("/jobs").json()] == [done["id"]]
    assert server.http.get(f"/jobs/{done['id']}/result").content[:4] == b"glTF"
    assert [p.name for p in (cache / "jobs").iterdir()] == [done["id"]]


def test_a_backend_killed_mid_job_leaves_nothing_a_restart_does_not_clear(tmp_path, servers):
    cache = tmp_path / "cache"
    server = servers(cache)
    job = server.submit({"num_inference_steps": 100, "step_delay": 0.1}).json()
    server.wait(job["id"], until=("running",), step=1)
    stray = cache / "jobs" / job["id"] / "result.glb.tmp"  # as a kill during the result's write leaves it
    stray.write_bytes(b"glTF, the first half")
    server.process.kill()
    server.process.wait()

    restarted = servers(cache)
    record = restarted.http.get(f"/jobs/{job['id']}").json()
    assert record["state"] == "failed" and record["error"] == "the backend stopped while this job ran"
    assert not stray.exists()
    assert restarted.wait(restarted.submit().json()["id"])["state"] == "succeeded"


def cube_entry(run=run_test_cube) -> ModelEntry:
    return ModelEntry(name="cube", task="text_to_3d", description="test", source="test", load=lambda options: "pipe",
                      run=run, params={"prompt": "", "num_inference_steps": 3, "step_delay": 0.0, "fail": ""})


def wait(manager, job_id, step=0, until=("succeeded", "failed", "cancelled")):
    deadline = time.monotonic() + 20
    while (record := manager.get(job_id))["state"] not in until or record["step"] < step:
        assert time.monotonic() < deadline, record
        time.sleep(0.005)
    return record


def test_a_record_the_database_refuses_reads_failed_and_is_written_once_it_can_be(tmp_path):
    """The database turns read-only (a real SQLite refusal) as a job ends: the job reads failed
    with the reason, not "running", and its record is written with the next save that succeeds."""
    manager = JobManager(tmp_path, [cube_entry()], LoadOptions(device="cpu"))
    manager.start()
    try:
        store = manager.store
        job = manager.submit("text_to_3d", None, {"num_inference_steps": 4, "step_delay": 0.05}, {})
        wait(manager, job["id"], step=1, until=("running",))
        with store._lock:
            writable, store._db = store._db, sqlite3.connect(
                f"file:{tmp_path / 'jobs.sqlite3'}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
        record = wait(manager, job["id"])
        assert record["state"] == "failed" and not record["has_result"]
        assert record["error"].startswith(
            f"the cache folder {tmp_path} is not writable (attempt to write a readonly database)"), record["error"]
        assert not store.result_path(job["id"]).exists()
        assert [r["state"] for r in manager.list()] == ["failed"] and manager.get(job["id"]) == record
        assert store._db.execute("SELECT state FROM jobs").fetchall() == [("running",)]  # the stale row

        with store._lock:
            store._db.close()
            store._db = writable
        assert wait(manager, manager.submit("text_to_3d", None, {}, {})["id"])["state"] == "succeeded"
        (text,) = store._db.execute("SELECT record FROM jobs WHERE id = ?", (job["id"],)).fetchone()
        assert json.loads(text) == record
    finally:
        manager.close()


@pytest.mark.parametrize("error, kind", [
    (OSError(errno.ENOSPC, "No space left on device"), StorageFull),
    (OSError(errno.EROFS, "Read-only file system"), StorageReadOnly),
    (OSError(errno.EACCES, "Permission denied"), StorageReadOnly),
    (OSError(errno.ENOENT, "No such file or directory"), None),
])
def test_what_a_failed_write_says_of_the_disk(tmp_path, error, kind):
    store = JobStore(tmp_path)
    problem = store.storage_problem(error, 12 * 2**20, "this upload")
    store.close()
    assert type(problem) is (kind or type(None))
    if kind is StorageFull:
        assert str(problem).startswith(f"the cache folder {tmp_path} has ")
        assert "; this upload needs 12.0 MB: free space or start the backend with --cache-dir" in str(problem)


def mode(path: Path) -> str:
    return f"{path.stat().st_mode & 0o777:o}"


def test_everything_in_the_cache_is_private_whatever_the_umask(tmp_path, caplog):
    gate = threading.Event()

    def run(pipe, params, files, callback):
        gate.wait(10)
        return run_test_cube(pipe, params, files, callback)

    old = os.umask(0o022)
    try:
        cache = tmp_path / "cache"
        manager = JobManager(cache, [cube_entry(run)], LoadOptions(device="cpu"))
        manager.start()
        mesh = mesh_upload()["mesh"][1]
        job = manager.submit("text_to_3d", None, {}, {"mesh": mesh})
        uploads = cache / "jobs" / job["id"] / "uploads"
        assert [mode(uploads), mode(uploads / "mesh")] == ["700", "600"]
        gate.set()
        assert wait(manager, job["id"])["state"] == "succeeded"
        modes = {p.name: mode(p) for p in [cache, *cache.iterdir(), *(cache / "jobs").rglob("*")]}
        manager.close()
        assert modes.pop("cache") == modes.pop("jobs") == modes.pop(job["id"]) == "700", modes
        assert set(modes) == {"jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "backend.lock", "result.glb",
                              "preview.png"}, modes
        assert set(modes.values()) == {"600"}, modes

        # A folder someone else made open is left as it is, with a warning; what goes in it is private.
        (shared := tmp_path / "shared").mkdir(mode=0o755)
        JobManager(shared, [], LoadOptions(device="cpu")).close()
        assert f"the cache folder {shared} is open to other users (mode 755)" in caplog.text
        assert [mode(shared), mode(shared / "jobs")] == ["755", "700"]
    finally:
        os.umask(old)
