"""Blender tests run each script in a fresh interpreter: BLENDER_USER_RESOURCES must be set
before bpy is imported, and the extension is installed from the zip Blender's own tool built."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def blender_ext_tool() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None:
        pytest.skip("bpy is not installed (pip install bpy==5.0.1)")
    base = Path(spec.origin).parent
    return next(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))


@pytest.fixture(scope="session")
def ext_tool() -> Path:
    return blender_ext_tool()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    """The extension built with `blender_ext.py build`, as an installer would get it."""
    out = tmp_path_factory.mktemp("build")
    tool = blender_ext_tool()
    subprocess.run([sys.executable, str(tool), "validate", str(ROOT)], check=True, capture_output=True, text=True)
    subprocess.run(
        [sys.executable, str(tool), "build", "--source-dir", str(ROOT), "--output-dir", str(out)],
        check=True, capture_output=True, text=True,
    )
    (zip_path,) = out.glob("diffusion3d-*.zip")
    return zip_path


@pytest.fixture
def run_blender(tmp_path, extension_zip):
    """run_blender(script, *args, env={...}) → stdout; the script installs the zip into a fresh user dir."""

    def run(script: str, *args: str, env: dict | None = None, timeout: float = 300) -> str:
        child_env = dict(os.environ)
        child_env.update(
            BLENDER_USER_RESOURCES=str(tmp_path / "user"),
            DIFFUSION3D_TEST_MODELS="1",
            DIFFUSION3D_ZIP=str(extension_zip),
            DIFFUSION3D_TMP=str(tmp_path),
            PYTHONPATH=str(SCRIPTS),
            OMP_NUM_THREADS="1",
        )
        child_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, str(SCRIPTS / script), *args],
            cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=timeout,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{script} failed ({proc.returncode}):\n{output[-6000:]}"
        assert "ALL CHECKS PASSED" in proc.stdout, output[-6000:]
        return output

    return run
