"""The extension as Blender's tools see it: validate, build, install, enable/disable."""

import subprocess
import sys
import zipfile


def test_manifest_validates(ext_tool, repo_root):
    proc = subprocess.run([sys.executable, str(ext_tool), "validate", str(repo_root)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_build_ships_backend_and_leaves_out_dev_files(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "formats/glb.py" in names and "operators/jobs.py" in names
    assert "backend/__main__.py" in names
    for excluded in ("tests/", "bench/", ".venv/", "pyproject.toml", "requirements-dev.txt", ".git"):
        assert not any(name.startswith(excluded) for name in names), excluded
    assert not any("__pycache__" in name for name in names)


def test_install_enable_disable_register_twice(run_blender):
    run_blender("bl_register.py")
