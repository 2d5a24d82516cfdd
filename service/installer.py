"""Create the backend's own venv and pip-install its requirements, in a background thread."""

from __future__ import annotations

import os
import subprocess
import threading
from typing import Optional


def venv_python(venv_dir: str) -> str:
    """The interpreter inside a venv (Windows and POSIX layouts)."""
    if os.name == "nt":
        return os.path.join(venv_dir, "Scripts", "python.exe")
    return os.path.join(venv_dir, "bin", "python")


class RequirementsInstaller:
    """`python -m venv DIR` then `DIR/python -m pip install -r requirements.txt`, logged line by line.

    Poll `state` ('IDLE' | 'RUNNING' | 'DONE' | 'FAILED') and `lines` (the log) from the UI.
    """

    def __init__(self):
        self.state = "IDLE"
        self.lines: list[str] = []
        self.log_path = ""
        self._thread: Optional[threading.Thread] = None
        self._process: Optional[subprocess.Popen] = None

    def start(self, base_python: str, venv_dir: str, requirements: str, log_path: str) -> None:
        if self.state == "RUNNING":
            return
        self.state, self.lines, self.log_path = "RUNNING", [], log_path
        self._thread = threading.Thread(
            target=self._run, args=(base_python, venv_dir, requirements), name="diffusion3d-install", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def _run(self, base_python: str, venv_dir: str, requirements: str) -> None:
        steps = []
        if not os.path.exists(venv_python(venv_dir)):
            steps.append([base_python, "-m", "venv", venv_dir])
        steps.append([venv_python(venv_dir), "-m", "pip", "install", "-r", requirements])
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        try:
            with open(self.log_path, "w", encoding="utf-8") as log:
                for command in steps:
                    self._emit(log, "$ " + " ".join(command))
                    self._process = subprocess.Popen(
                        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        env=env, text=True, errors="replace",
                    )
                    for line in self._process.stdout:
                        self._emit(log, line.rstrip())
                    if self._process.wait() != 0:
                        self._emit(log, f"failed with exit code {self._process.returncode}")
                        self.state = "FAILED"
                        return
                self._emit(log, f"done: the backend will run with {venv_python(venv_dir)}")
            self.state = "DONE"
        except OSError as exc:
            self.lines.append(f"could not run {base_python!r}: {exc}")
            self.state = "FAILED"

    def _emit(self, log, line: str) -> None:
        log.write(line + "\n")
        log.flush()
        self.lines.append(line)
        del self.lines[:-200]


INSTALLER = RequirementsInstaller()
