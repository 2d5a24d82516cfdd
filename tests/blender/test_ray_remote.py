"""The add-on, unchanged, against `python -m backend serve --ray` on a `ray start` cluster with
token authentication, as a studio deploys it: the part-edit script (generate, edit, complete, mix)
passes with every job run on the cluster's replicas."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from ray_cluster import free_port, ray_cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "studio-token"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="cluster requirements not installed")


def get(url: str, path: str):
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def start_service(address: str, env: dict, cache: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backend", "serve", "--ray", address, "--port", str(free_port_for(extra)),
         "--token", TOKEN, "--cache-dir", str(cache), *extra],
        cwd=ROOT, env={**os.environ, **env, "DIFFUSION3D_TEST_MODELS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def free_port_for(extra) -> int:
    return int(extra[extra.index("--port") + 1]) if "--port" in extra else free_port()


def test_the_add_on_runs_unchanged_against_serve_ray(run_blender, tmp_path):
    with ray_cluster(token=True) as (address, env):
        refused = start_service(address, env, tmp_path / "refused", "--replicas", "3")
        output, _ = refused.communicate(timeout=180)
        assert refused.returncode == 2 and "has 2 GPU(s)" in output, output[-2000:]

        port = free_port()
        service = start_service(address, env, tmp_path / "cache", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if len(get(url, "/health")["replicas"]) == 2:
                        break
                except OSError:
                    pass
                assert service.poll() is None, service.stdout.read()[-3000:]
                time.sleep(1)
            run_blender("bl_part_edit.py", env={"DIFFUSION3D_REMOTE_URL": url, "DIFFUSION3D_REMOTE_TOKEN": TOKEN},
                        timeout=900)
            jobs = get(url, "/jobs")
            assert len(jobs) >= 4 and all(job["state"] == "succeeded" and job["ran_on"] for job in jobs), jobs
            assert {job["task"] for job in jobs} == {"text_to_3d", "edit_part"}
        finally:
            service.terminate()
            output, _ = service.communicate(timeout=60)
        # A graceful stop: the jobs' threads closed and the replicas taken down with the app.
        assert "Application shutdown complete" in output and "Deleting app ['diffusion3d']" in output, output[-3000:]
