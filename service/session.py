"""Which backend to talk to (local child process or remote URL), from plain settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .client import BackendClient, BackendError
from .process import LocalBackend, launch_signature

LOCAL = LocalBackend()  # the one local backend of this Blender session


@dataclass
class BackendSettings:
    """The add-on preferences that matter for a connection, as plain values."""

    mode: str = "LOCAL"  # 'LOCAL' | 'REMOTE'
    python: str = ""
    remote_url: str = ""
    remote_token: str = ""
    device: str = "auto"  # auto | cuda | mps | cpu
    threads: int = 0  # CPU threads of the local backend (0: torch's default)
    allow_downloads: bool = False
    attention_slicing: bool = False
    cpu_offload: bool = False  # model CPU offload: the least GPU memory, slower
    full_precision: bool = False  # float32 on CUDA too
    request_timeout: float = 30.0
    startup_timeout: float = 120.0
    extension_dir: str = ""
    user_dir: str = ""

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.user_dir, "cache")

    @property
    def log_path(self) -> str:
        return os.path.join(self.user_dir, "logs", "backend.log")

    def backend_env(self) -> dict[str, str]:
        return {} if self.allow_downloads else {"HF_HUB_OFFLINE": "1"}

    def backend_args(self) -> list[str]:
        args = ["--device", self.device, "--threads", str(self.threads)]
        if not self.allow_downloads:
            args.append("--offline")  # models must already be on disk; the backend's error names the fix
        if self.attention_slicing:
            args.append("--attention-slicing")
        if self.cpu_offload:
            args.append("--cpu-offload")
        if self.full_precision:
            args.append("--full-precision")
        return args


def needs_restart(settings: BackendSettings) -> bool:
    """The local backend runs with other preferences than these (it applies them only at start)."""
    return (settings.mode == "LOCAL" and LOCAL.is_running()
            and LOCAL.launched_with != launch_signature(settings.python, settings.backend_args(), settings.backend_env()))


def connect(settings: BackendSettings, start: bool = True) -> BackendClient:
    """A client for the configured backend; starts the local one when `start` and it is not up.

    Raises BackendError with a readable message (dead process and its log, bad URL, ...).
    """
    if settings.mode == "REMOTE":
        if not settings.remote_url:
            raise BackendError("no remote backend URL set: fill it in the add-on preferences")
        return BackendClient(settings.remote_url, settings.remote_token, settings.request_timeout)
    if LOCAL.is_running() and LOCAL.ready:
        return LOCAL.client(settings.request_timeout)
    if not start:
        if LOCAL.is_running():
            raise BackendError("the local backend is still starting: try again in a moment")
        raise BackendError(LOCAL.died() or "the local backend is not running: start it from the sidebar (Diffusion 3D › Backend)")
    LOCAL.start(
        settings.python,
        settings.extension_dir,
        settings.cache_dir,
        settings.log_path,
        settings.backend_env(),
        settings.startup_timeout,
        settings.backend_args(),
    )
    return LOCAL.client(settings.request_timeout)


def status_text(settings: BackendSettings) -> str:
    """One line for the sidebar."""
    if settings.mode == "REMOTE":
        return f"Remote: {settings.remote_url or '(no URL set)'}"
    if needs_restart(settings):
        return "Local: restart to apply preferences"
    if LOCAL.is_running():
        return f"Local: running at {LOCAL.url}" if LOCAL.ready else "Local: starting…"
    if LOCAL.died():
        return "Local: exited (see the log)"
    return "Local: not running"
