"""The add-on's bpy-free service layer: readable client errors and the local backend process."""

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.client import BackendClient, BackendError
from service.process import LocalBackend, free_port

ROOT = Path(__file__).resolve().parents[2]


class _Stub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer good":
            return self._send(401, {"detail": "wrong token"})
        if self.path in ("/health", "/behind/a/proxy/health"):
            return self._send(200, {"status": "ok", "path": self.path})
        if self.path == "/jobs?limit=3":
            return self._send(200, [{"id": "j1"}])
        if self.path == "/slow":
            time.sleep(3)
            return self._send(200, {})
        if self.path.startswith("/jobs/missing"):
            return self._send(404, {"detail": "no job 'missing': it may have been deleted"})
        if self.path == "/boom":
            return self._send(500, {"detail": "Internal Server Error"})
        if self.path == "/jobs/x/preview":
            return self._send(404, {"detail": "no preview"})
        if self.path == "/jobs/bomb/preview":  # a PNG header claiming 100,000 x 100,000 pixels
            return self._send_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + struct.pack(">II", 100_000, 100_000) + b"\x08\x02")
        if self.path == "/jobs/text/preview":
            return self._send_bytes(b"<html>a login page</html>")
        if self.path == "/announced":  # claims a huge body up front
            self.send_response(200)
            self.send_header("Content-Length", str(10 * 2**30))
            self.end_headers()
            return None
        if self.path == "/streamed":  # no Content-Length: read until the connection closes
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b" " * 65536)
            return None
        if self.path == "/nested":
            return self._send_bytes(b"[" * 100_000 + b"]" * 100_000)
        return self._send(422, {"detail": [{"msg": "field required"}, {"msg": "bad seed"}]})

    def do_POST(self):
        """Parses the multipart body as a server does and echoes what it found."""
        import email.parser
        import email.policy

        body = self.rfile.read(int(self.headers["Content-Length"]))
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        self._send(201, {"id": "j1", "state": "queued",
                         "spec": json.loads(parts["spec"].get_content()),
                         "mask": list(parts["face_mask"].get_content()) if "face_mask" in parts else None,
                         "mesh_filename": parts["mesh"].get_filename() if "mesh" in parts else None})

    def _send_bytes(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_client_turns_failures_into_readable_messages(stub_url):
    assert BackendClient(stub_url, "good").health() == {"status": "ok", "path": "/health"}
    with pytest.raises(BackendError, match="refused the token .*preferences") as info:
        BackendClient(stub_url, "bad").health()
    assert info.value.status == 401
    client = BackendClient(stub_url, "good")
    with pytest.raises(BackendError, match="no job 'missing'"):
        client.job("missing")
    with pytest.raises(BackendError, match="field required; bad seed"):
        client.models()
    with pytest.raises(BackendError, match="a bug in the backend"):
        client._json("GET", "/boom")
    assert client.preview("x") is None
    assert client.jobs(limit=3) == [{"id": "j1"}]
    record = client.submit("edit_part", {"mode": "edit"}, "builtin", files={"mesh": b"glb", "face_mask": b"\x01\x00"})
    assert record["spec"] == {"task": "edit_part", "params": {"mode": "edit"}, "model": "builtin"}
    assert record["mask"] == [1, 0] and record["mesh_filename"] == "mesh.glb"


def test_a_hostile_or_broken_backend_cannot_run_blender_out_of_memory(stub_url, monkeypatch):
    """Replies are read no further than their cap, announced or streamed; nested JSON and
    previews that would decode to gigapixels are refused, each with a readable error."""
    import service.client as client_module

    client = BackendClient(stub_url, "good")
    with pytest.raises(BackendError, match="10,240 MB, more than the 64 MB the add-on reads"):
        client._json("GET", "/announced")
    monkeypatch.setattr(client_module, "MAX_JSON_BYTES", 2**20)
    with pytest.raises(BackendError, match="more than the 1 MB the add-on reads"):
        client._json("GET", "/streamed")
    with pytest.raises(BackendError, match="unreadable answer"):
        client._json("GET", "/nested")
    with pytest.raises(BackendError, match="100000x100000 pixels"):
        client.preview("bomb")
    with pytest.raises(BackendError, match="not a PNG"):
        client.preview("text")


def test_client_keeps_a_base_path_and_says_when_a_backend_is_too_slow(stub_url):
    assert BackendClient(stub_url + "/behind/a/proxy/", "good").health()["path"] == "/behind/a/proxy/health"
    with pytest.raises(BackendError, match="did not answer within 1 s .*request timeout") as info:
        BackendClient(stub_url, "good", timeout=1)._json("GET", "/slow")
    assert info.value.status is None


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://host", "http://"])
def test_a_malformed_backend_url_says_how_to_write_one(url):
    with pytest.raises(BackendError, match="not an http:// or https:// address"):
        BackendClient(url)


def test_connection_refused_says_how_to_fix():
    client = BackendClient(f"http://127.0.0.1:{free_port()}", "t", timeout=2)
    with pytest.raises(BackendError, match="backend not running at .*start it from the sidebar") as info:
        client.health()
    assert info.value.status is None


def start_fake_backend(tmp_path, main: str) -> tuple[LocalBackend, str]:
    """A LocalBackend started on an extension folder whose `backend` package runs `main`, and the
    error its `start` raised (every fake here dies)."""
    fake = tmp_path / "ext" / "backend"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(main)
    backend = LocalBackend()
    with pytest.raises(BackendError) as info:
        backend.start(sys.executable, str(tmp_path / "ext"), str(tmp_path / "cache"), str(tmp_path / "logs" / "b.log"),
                      startup_timeout=30)
    return backend, str(info.value)


def test_local_backend_reports_a_process_that_dies_with_its_log(tmp_path):
    backend, message = start_fake_backend(
        tmp_path, "import sys\nprint('cannot start: No module named torch', flush=True)\nsys.exit(3)\n")
    assert "exited (code 3)" in message and "No module named torch" in message and "Install Backend Requirements" in message
    assert not backend.is_running()
    backend.stop()  # idempotent


def test_a_backend_killed_by_a_signal_is_named_so(tmp_path):
    """SIGKILL from nowhere (the kernel's out-of-memory killer, most often) is not an exit code."""
    backend, message = start_fake_backend(
        tmp_path, "import os, signal\nprint('loading', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert "was killed (signal 9, most likely out of memory)" in message
    assert "loading" in backend.died()


def test_stop_during_start_up_ends_the_wait_and_spares_a_newer_backend(tmp_path):
    """Stop pressed while the backend loads: the waiting start gives up at once (it polled a dead
    address until its timeout, the sidebar stuck on "Starting"), and its timeout can no longer
    stop the backend started after it."""
    fake = tmp_path / "ext" / "backend"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("import time\nprint('loading a large model', flush=True)\ntime.sleep(60)\n")
    backend = LocalBackend()
    args = (sys.executable, str(tmp_path / "ext"), str(tmp_path / "cache"), str(tmp_path / "logs" / "b.log"))
    outcome = {}

    def start():
        try:
            backend.start(*args, startup_timeout=3)
        except BackendError as exc:
            outcome["error"], outcome["at"] = str(exc), time.monotonic()

    waiting = threading.Thread(target=start)
    waiting.start()
    time.sleep(1.0)
    first = backend.process
    stopped_at = time.monotonic()
    backend.stop()
    backend._launch(*args[:2], str(tmp_path / "cache-new"), args[3], None, ())  # the next start's process
    newer = backend.process
    waiting.join(10)
    try:
        assert "stopped while it was starting" in outcome["error"] and outcome["at"] - stopped_at < 1.0
        assert first.poll() is not None and newer.poll() is None and backend.process is newer
    finally:
        backend.stop()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_backend_stops_by_itself_when_blender_crashes(tmp_path):
    """Blender killed outright runs no atexit: the real backend it started must not live on
    (holding the GPU and the cache directory's lock). It sees the end of its stdin and stops."""
    script = (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from service.process import LocalBackend\n"
        "backend = LocalBackend()\n"
        f"backend.start(sys.executable, {str(ROOT)!r}, {str(tmp_path / 'cache')!r}, {str(tmp_path / 'b.log')!r},\n"
        "              startup_timeout=120, extra_args=['--device', 'cpu'])\n"
        "print(backend.process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)  # as a crash: no atexit, no stop()\n"
    )
    blender = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert blender.returncode == -signal.SIGKILL, blender.stderr
    pid = int(blender.stdout.split()[0])
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    still = alive(pid)
    if still:
        os.kill(pid, signal.SIGKILL)
    assert not still, "the backend outlived the Blender that started it"
    assert "standard input closed" in (tmp_path / "b.log").read_text()


def test_a_second_blender_gets_a_cache_directory_of_its_own(tmp_path):
    """Two Blenders, one user folder: the second's backend finds the cache directory held and
    runs on `cache-2` instead of failing; both answer."""
    cache = str(tmp_path / "cache")
    first, second = LocalBackend(), LocalBackend()
    try:
        for backend, log in ((first, "first.log"), (second, "second.log")):
            backend.start(sys.executable, str(ROOT), cache, str(tmp_path / log), startup_timeout=120,
                          extra_args=["--device", "cpu"])
        assert first.client().health()["status"] == second.client().health()["status"] == "ok"
        log = (tmp_path / "second.log").read_text()
        assert "already using the cache directory" in log and f"--cache-dir {cache}-2 " in log
    finally:
        first.stop()
        second.stop()
