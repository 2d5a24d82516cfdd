"""The local backend as a child process: start on a free port, health-check, detect death, stop."""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import threading
import time
from typing import Optional, Sequence

from .client import BackendClient, BackendError

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def tail(path: str, lines: int = 20) -> str:
    """The last `lines` lines of a text file ("" when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


CACHE_DIR_IN_USE = 75  # the backend's exit status when another backend holds its cache directory
MORE_CACHE_DIRS = 4  # cache-2 ... cache-5: as many other Blenders with a backend of their own


class LocalBackend:
    """`python -m backend serve` run from the extension's own directory.

    Thread-safe: `start` may be called from job worker threads.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self.process: Optional[subprocess.Popen] = None
        self.url = ""
        self.token = ""
        self.log_path = ""
        self.ready = False  # set once GET /health answered
        self.launched_with: tuple = ()  # (python, arguments, environment overrides) of the running process
        self._log_handle = None
        self._atexit_registered = False

    # ------------------------------------------------------------------ state
    def is_running(self) -> bool:
        with self._lock:
            return self.process is not None and self.process.poll() is None

    def died(self) -> Optional[str]:
        """A readable sentence when the process we started has exited unexpectedly, else None."""
        with self._lock:
            if self.process is None or self.process.poll() is None:
                return None
            code = self.process.returncode
        if code < 0:  # ended by a signal; SIGKILL out of the blue is most often the kernel's OOM killer
            how = f"was killed (signal {-code}{', most likely out of memory' if -code == 9 else ''})"
        else:
            how = f"exited (code {code})"
        return f"the local backend {how}; restart it from the sidebar. Log {self.log_path}:\n{tail(self.log_path, 12)}"

    def client(self, timeout: float = 30.0) -> BackendClient:
        with self._lock:
            if not self.url:
                raise BackendError("the local backend is not running: start it from the sidebar (Diffusion 3D › Backend)")
            return BackendClient(self.url, self.token, timeout)

    # ------------------------------------------------------------------ control
    def start(
        self,
        python: str,
        extension_dir: str,
        cache_dir: str,
        log_path: str,
        env: Optional[dict[str, str]] = None,
        startup_timeout: float = 60.0,
        extra_args: Sequence[str] = (),
    ) -> BackendClient:
        """Start the backend and wait until GET /health answers; returns its client.

        Raises BackendError with the log's tail when it exits or does not answer in time.
        """
        with self._lock:
            if self.is_running():
                if self.ready:
                    return self.client()
                return_when_ready = True  # another thread launched it: wait for the same health check
            else:
                return_when_ready = False
                self._launch(python, extension_dir, cache_dir, log_path, env, extra_args)
        if return_when_ready:
            return self.wait_ready(startup_timeout)
        # A backend of another Blender (several may run at once) holds the cache directory:
        # this one takes a folder of its own next to it.
        others = iter(f"{cache_dir}-{n}" for n in range(2, 2 + MORE_CACHE_DIRS))
        while True:
            try:
                return self.wait_ready(startup_timeout)
            except BackendError:
                folder = next(others, None)
                if self._exit_code() != CACHE_DIR_IN_USE or folder is None:
                    raise
            with self._lock:
                self._launch(python, extension_dir, folder, log_path, env, extra_args)

    def _exit_code(self) -> Optional[int]:
        with self._lock:
            return None if self.process is None else self.process.poll()

    def _launch(self, python, extension_dir, cache_dir, log_path, env, extra_args) -> None:
        with self._lock:
            self.stop()
            port = free_port()
            self.token = secrets.token_urlsafe(32)
            self.url = f"http://{HOST}:{port}"
            self.log_path = log_path
            self.launched_with = launch_signature(python, extra_args, env)
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            os.makedirs(cache_dir, exist_ok=True)
            # Blender's environment passes through (DIFFUSION3D_TEST_MODELS, HF_*, CUDA_*, ...), except
            # Blender's own Python paths, which would shadow the chosen interpreter's packages.
            child_env = dict(os.environ)
            child_env.update(env or {})
            child_env["PYTHONUNBUFFERED"] = "1"
            # The token goes through the environment, not --token: command lines are readable by
            # every local user (ps, /proc), a process's environment is not.
            child_env["DIFFUSION3D_TOKEN"] = self.token
            child_env.pop("PYTHONPATH", None)  # `backend` must come from the extension directory
            child_env.pop("PYTHONHOME", None)
            # Our end of its stdin stays open while Blender lives: if Blender crashes or is killed
            # (no atexit runs), the backend sees the end of input and stops by itself.
            command = [
                python, "-m", "backend", "serve", "--stop-when-stdin-closes",
                "--host", HOST, "--port", str(port), "--cache-dir", cache_dir, *extra_args,
            ]
            self._log_handle = open(log_path, "ab")
            self._log_handle.write(f"\n--- starting: {' '.join(command)} (cwd {extension_dir})\n".encode())
            self._log_handle.flush()
            try:
                self.process = subprocess.Popen(
                    command, cwd=extension_dir, env=child_env, stdout=self._log_handle, stderr=subprocess.STDOUT,
                    stdin=subprocess.PIPE, start_new_session=True,
                )
            except OSError as exc:
                self._close_log()
                self.url = ""
                raise BackendError(
                    f"could not start the backend with Python interpreter {python!r}: {exc}. "
                    f"Set the interpreter in the add-on preferences or press 'Install Backend Requirements'"
                ) from exc
            if not self._atexit_registered:
                atexit.register(self.stop)
                self._atexit_registered = True

    def wait_ready(self, timeout: float) -> BackendClient:
        """Wait for the process launched last to answer GET /health; returns its client.

        Raises BackendError when it exits, does not answer in time (it is then stopped), or is
        stopped or replaced meanwhile (Stop pressed during start-up: give up at once, and never
        stop the process that replaced it).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            process = self.process
            client = self.client(timeout=2.0)
        while True:
            if self.process is not process:
                raise BackendError("the local backend was stopped while it was starting")
            message = self.died()
            if message:
                raise BackendError(_hint(message))
            try:
                client.health(timeout=2.0)
                self.ready = True
                return self.client()
            except BackendError as exc:
                if exc.status is not None:  # it answered, but refused: a bug or a foreign server
                    raise
            if time.monotonic() > deadline:
                log = tail(self.log_path, 12)
                self.stop(only=process)
                raise BackendError(
                    _hint(f"the backend did not become ready within {timeout:.0f} s (raise the startup timeout "
                          f"in the preferences). Log {self.log_path}:\n{log}")
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 5.0, only: Optional[subprocess.Popen] = None) -> None:
        """Terminate the process (then kill it); a no-op when none runs, or when `only` is given
        and another process runs now."""
        with self._lock:
            if only is not None and self.process is not only:
                return
            process, self.process = self.process, None
            self.url = ""
            self.ready = False
            if process is not None and process.stdin is not None:
                process.stdin.close()
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
            self._close_log()

    def _close_log(self) -> None:
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None


def launch_signature(python: str, extra_args: Sequence[str] = (), env: Optional[dict[str, str]] = None) -> tuple:
    """What a launch depends on beyond its port and token: a running backend launched with
    another signature runs on stale preferences (device, threads, downloads, interpreter)."""
    return python, tuple(extra_args), tuple(sorted((env or {}).items()))


def _hint(message: str) -> str:
    if "No module named" in message:
        return (
            message + "\n→ this Python interpreter lacks the backend's packages: press 'Install Backend "
            "Requirements' in the add-on preferences, or pick an interpreter that has them."
        )
    return message
