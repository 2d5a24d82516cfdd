"""Create the backend's own venv and pip-install its requirements, in a background thread."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from typing import Optional

# PyPI's Linux torch wheels carry CUDA (several GB); without an NVIDIA GPU the CPU build from
# PyTorch's own index does the same work in a tenth of the download.
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cuXYZ"  # XYZ: the CUDA version pytorch.org lists for the driver

# Run in the new venv after installing: which torch and which devices it can use.
TORCH_CHECK = """
try:
    import torch
except Exception as exc:
    print(f"torch does not import: {exc}")
else:
    if torch.cuda.is_available():
        devices = "CUDA (" + torch.cuda.get_device_name(0) + ")"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices = "MPS"
    else:
        devices = "CPU only"
    print(f"torch {torch.__version__}: {devices}")
"""


def venv_python(venv_dir: str) -> str:
    """The interpreter inside a venv (Windows and POSIX layouts)."""
    if os.name == "nt":
        return os.path.join(venv_dir, "Scripts", "python.exe")
    return os.path.join(venv_dir, "bin", "python")


def nvidia_gpu_present() -> bool:
    """An NVIDIA driver answers: `nvidia-smi -L` lists at least one GPU."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return False
    try:
        listed = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def pinned_torch(requirements: str) -> Optional[str]:
    """The `torch==X` requirement of a requirements file, if it pins one."""
    try:
        with open(requirements, encoding="utf-8") as handle:
            for line in handle:
                match = re.match(r"\s*(torch==[\w.+-]+)", line)
                if match:
                    return match.group(1)
    except OSError:
        pass
    return None


def install_commands(base_python: str, venv_dir: str, requirements: str, platform: str, nvidia: bool) -> list[list[str]]:
    """The commands that make the venv and install into it (torch first, from the CPU index, on a
    Linux machine without an NVIDIA GPU)."""
    python = venv_python(venv_dir)
    commands = [] if os.path.exists(python) else [[base_python, "-m", "venv", venv_dir]]
    torch = pinned_torch(requirements)
    if torch and platform.startswith("linux") and not nvidia:
        commands.append([python, "-m", "pip", "install", torch, "--index-url", CPU_INDEX])
    commands.append([python, "-m", "pip", "install", "-r", requirements])
    return commands


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
        self._cancelled = False

    def start(self, base_python: str, venv_dir: str, requirements: str, log_path: str) -> None:
        if self.state == "RUNNING":
            return
        self.state, self.lines, self.log_path, self._cancelled = "RUNNING", [], log_path, False
        self._thread = threading.Thread(
            target=self._run, args=(base_python, venv_dir, requirements), name="diffusion3d-install", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        """Stop the install: the step running now, and no further step starts."""
        self._cancelled = True
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def _run(self, base_python: str, venv_dir: str, requirements: str) -> None:
        nvidia = nvidia_gpu_present()
        steps = install_commands(base_python, venv_dir, requirements, sys.platform, nvidia)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        try:
            with open(self.log_path, "w", encoding="utf-8") as log:
                for command in steps:
                    if self._cancelled:
                        break
                    self._emit(log, "$ " + " ".join(command))
                    self._process = subprocess.Popen(
                        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        env=env, text=True, errors="replace",
                    )
                    for line in self._process.stdout:
                        self._emit(log, line.rstrip())
                    if self._process.wait() != 0 and not self._cancelled:
                        self._emit(log, f"failed with exit code {self._process.returncode}")
                        if CPU_INDEX in command:  # e.g. only PyPI is reachable: its build works too
                            self._emit(log, "torch's CPU build could not be installed; the next step takes PyPI's")
                            continue
                        self.state = "FAILED"
                        return
                if self._cancelled:
                    self._emit(log, "cancelled: the add-on was disabled")
                    self.state = "FAILED"
                    return
                self._report_torch(log, venv_dir, requirements, nvidia, env)
                self._emit(log, f"done: the backend will run with {venv_python(venv_dir)}")
            self.state = "DONE"
        except OSError as exc:
            self.lines.append(f"could not run {base_python!r}: {exc}")
            self.state = "FAILED"

    def _report_torch(self, log, venv_dir: str, requirements: str, nvidia: bool, env: dict) -> None:
        """Say which torch was installed and what it can run on; with an NVIDIA GPU and a torch
        that cannot use it (e.g. PyPI's Windows wheels are CPU builds), say how to get one that can."""
        python = venv_python(venv_dir)
        try:
            found = subprocess.run([python, "-c", TORCH_CHECK], capture_output=True, text=True, env=env,
                                   timeout=300).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            found = f"torch could not be checked: {exc}"
        self._emit(log, found)
        if nvidia and found.startswith("torch ") and "CUDA" not in found:
            torch = pinned_torch(requirements) or "torch"
            self._emit(log, f"warning: this machine has an NVIDIA GPU but this torch cannot use it. For a CUDA "
                            f"build run: {python} -m pip install --force-reinstall {torch} --index-url "
                            f"{CUDA_INDEX} (XYZ: the CUDA version pytorch.org lists for your driver, e.g. 128)")

    def _emit(self, log, line: str) -> None:
        log.write(line + "\n")
        log.flush()
        self.lines.append(line)
        del self.lines[:-200]


INSTALLER = RequirementsInstaller()
