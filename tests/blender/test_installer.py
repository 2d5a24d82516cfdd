"""The backend's venv installer (bpy-free): the real pip path offline, which torch build it asks
for, and what it says about the torch it installed."""

import os
import subprocess
import sys
import time

import pytest

from service.installer import (
    CPU_INDEX, CUDA_INDEX, RequirementsInstaller, install_commands, nvidia_gpu_present, venv_python,
)


def tiny_wheel(folder, name: str = "tinypkg", version: str = "0.1", code: str = "VERSION = '0.1'\n") -> str:
    """A pure-Python wheel built by hand (a zip with the package and its dist-info), so pip can
    install something real with no index and no network."""
    import base64
    import hashlib
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": code,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    wheel_path = os.path.join(str(folder), f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(wheel_path, "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
    return wheel_path


def test_installer_creates_a_venv_installs_and_logs(tmp_path):
    """The real pip path, offline: a requirement that cannot be found fails with pip's reason in
    the log; then a local wheel installs into the same venv and imports there."""
    venv, log = str(tmp_path / "venv"), tmp_path / "logs" / "install.log"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tiny_wheel(wheels)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n--find-links {wheels}\nno-such-package-diffusion3d==1.0\n")
    installer = RequirementsInstaller()
    installer.start(sys.executable, venv, str(requirements), str(log))
    installer._thread.join(300)
    assert installer.state == "FAILED", "\n".join(installer.lines)
    assert any("no-such-package-diffusion3d" in line for line in installer.lines)
    assert any("-m venv" in line for line in installer.lines)

    requirements.write_text(f"--no-index\n--find-links {wheels}\ntinypkg==0.1\n")
    installer = RequirementsInstaller()
    installer.start(sys.executable, venv, str(requirements), str(log))
    installer._thread.join(300)
    assert installer.state == "DONE", "\n".join(installer.lines)
    assert not any("-m venv" in line for line in installer.lines)  # the venv is reused
    assert log.read_text().strip().endswith(venv_python(venv))
    assert any(line.startswith("torch does not import") for line in installer.lines)  # said, not fatal
    out = subprocess.run([venv_python(venv), "-c", "import tinypkg; print(tinypkg.VERSION)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "0.1", out.stderr

# A stand-in torch: the names the installer's check reads, on the CPU.
FAKE_TORCH = """__version__ = "2.13.0"
class cuda:
    is_available = staticmethod(lambda: False)
class backends:
    mps = None
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU-index step is Linux's")
def test_without_pytorchs_index_torch_comes_from_the_next_step(tmp_path, monkeypatch):
    """Only PyPI reachable (here: PyTorch's index is an empty folder): the CPU-build step fails,
    the install goes on, and the requirements' own source provides torch."""
    monkeypatch.setattr("service.installer.CPU_INDEX", (tmp_path / "empty-index").as_uri())
    monkeypatch.setattr("service.installer.nvidia_gpu_present", lambda: False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no machine-wide find-links: only the sources named here
    (tmp_path / "empty-index").mkdir()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tiny_wheel(wheels, "torch", "2.13.0", FAKE_TORCH)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n--find-links {wheels}\ntorch==2.13.0\n")
    installer = RequirementsInstaller()
    installer.start(sys.executable, str(tmp_path / "venv"), str(requirements), str(tmp_path / "install.log"))
    installer._thread.join(300)
    log = "\n".join(installer.lines)
    assert installer.state == "DONE", log
    assert "torch's CPU build could not be installed; the next step takes PyPI's" in log
    assert "torch 2.13.0: CPU only" in installer.lines, log


def test_cancel_stops_the_running_step_and_starts_no_other(tmp_path, monkeypatch):
    """Disabling the add-on mid-install: the step running ends and the next never starts (a
    terminated torch step used to look like an unreachable index, and the install went on)."""
    marker = tmp_path / "next step ran"
    monkeypatch.setattr("service.installer.nvidia_gpu_present", lambda: False)
    monkeypatch.setattr("service.installer.install_commands", lambda *args: [
        [sys.executable, "-c", "import time; print('installing', flush=True); time.sleep(60)"],
        [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
    ])
    installer = RequirementsInstaller()
    installer.start(sys.executable, str(tmp_path / "venv"), "requirements.txt", str(tmp_path / "install.log"))
    deadline = time.monotonic() + 30
    while "installing" not in installer.lines and time.monotonic() < deadline:
        time.sleep(0.05)
    installer.cancel()
    installer._thread.join(30)
    assert installer.state == "FAILED" and not marker.exists(), installer.lines
    assert "cancelled: the add-on was disabled" in installer.lines


@pytest.fixture
def requirements_pinning_torch(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("# backend\ntorch==2.13.0\ndiffusers>=0.42\n")
    return str(path)


@pytest.mark.parametrize("platform, nvidia, cpu_build", [
    ("linux", False, True), ("linux", True, False), ("win32", False, False), ("win32", True, False),
    ("darwin", False, False),
])
def test_torch_comes_from_the_cpu_index_only_on_linux_without_an_nvidia_gpu(tmp_path, requirements_pinning_torch,
                                                                             platform, nvidia, cpu_build):
    venv = str(tmp_path / "venv")
    commands = install_commands("python3", venv, requirements_pinning_torch, platform, nvidia)
    assert commands[0] == ["python3", "-m", "venv", venv] and commands[-1][-2:] == ["-r", requirements_pinning_torch]
    cpu = [c for c in commands if CPU_INDEX in c]
    assert cpu == ([[venv_python(venv), "-m", "pip", "install", "torch==2.13.0", "--index-url", CPU_INDEX]]
                   if cpu_build else [])
    if cpu_build:
        assert commands.index(cpu[0]) < len(commands) - 1  # before the rest: -r finds torch satisfied


def test_no_torch_pin_no_torch_step_and_an_existing_venv_is_reused(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tinypkg==0.1\n")
    venv = tmp_path / "venv"
    (venv / ("Scripts" if os.name == "nt" else "bin")).mkdir(parents=True)
    open(venv_python(str(venv)), "w").close()
    assert install_commands("python3", str(venv), str(requirements), "linux", False) == [
        [venv_python(str(venv)), "-m", "pip", "install", "-r", str(requirements)]]


def fake_tool(folder, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


@pytest.mark.skipif(os.name == "nt", reason="fake tools are shell scripts")
def test_an_nvidia_gpu_is_found_through_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not nvidia_gpu_present()  # no driver tool at all
    fake_tool(tmp_path, "nvidia-smi", "echo 'GPU 0: NVIDIA H200 (UUID: GPU-1234)'")
    assert nvidia_gpu_present()
    fake_tool(tmp_path, "nvidia-smi", "echo 'NVIDIA-SMI has failed: no devices were found' && exit 9")
    assert not nvidia_gpu_present()


@pytest.mark.skipif(os.name == "nt", reason="fake tools are shell scripts")
def test_a_cpu_torch_on_an_nvidia_machine_comes_with_the_fix(tmp_path, requirements_pinning_torch):
    """The venv's python stands in for a real one whose torch is a CPU build (PyPI's Windows wheels)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake_tool(venv / "bin", "python", "echo 'torch 2.13.0: CPU only'")
    installer, log_path = RequirementsInstaller(), tmp_path / "install.log"
    with open(log_path, "w") as log:
        installer._report_torch(log, str(venv), requirements_pinning_torch, True, dict(os.environ))
        installer._report_torch(log, str(venv), requirements_pinning_torch, False, dict(os.environ))
    lines = log_path.read_text().splitlines()
    assert lines[0] == "torch 2.13.0: CPU only" and lines[2] == "torch 2.13.0: CPU only" and len(lines) == 3
    assert "has an NVIDIA GPU but this torch cannot use it" in lines[1]
    assert f"{venv_python(str(venv))} -m pip install --force-reinstall torch==2.13.0 --index-url" in lines[1]
    assert CUDA_INDEX in lines[1]
