"""The score-distillation models end to end on tiny random components: `magic3d-sd` (coarse field
then fine mesh from a prompt, and a draft refined directly, the sidebar's Refine),
`prolificdreamer-sd` (VSD with its camera LoRA) and `dreamfields-clip` (CLIP). The images are
noise; the wiring is what is tested."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient

from backend.__main__ import main
from backend.distill.guidance.stable_diffusion import DEFAULT_MODEL
from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes
from backend.hub import MODEL_SOURCES_ENV
from backend.results import MeshPart, MeshResult
from backend.server import Settings, create_app
from tests.backend.test_server import wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

FEW = {"num_inference_steps": 2, "fine_steps": 2, "render_resolution": 16, "fine_resolution": 64, "grid_size": 32,
       "texture_size": 256}


@pytest.fixture
def tiny_prior(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{DEFAULT_MODEL}={tiny_sd.text_pipeline(tmp_path)}")


def test_the_command_line_runs_both_stages(tiny_prior, tmp_path, capsys):
    out = tmp_path / "vase.glb"
    args = ["generate", "--model", "magic3d-sd", "--prompt", "a vase", "--seed", "1", "--out", str(out)]
    for key, value in FEW.items():
        args += ["--param", f"{key}={value}"]
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "distill" in err and "refine" in err  # a progress bar per stage
    parts, extras = read_glb_meshes(out.read_bytes())
    assert len(parts[0].faces) > 0 and parts[0].uv is not None
    assert extras["diffusion3d"]["model"] == "magic3d-sd" and extras["diffusion3d"]["fine_steps"] == 2


def test_refine_keeps_a_draft_in_place_and_offers_its_current_state(tiny_prior, tmp_path):
    draft = trimesh.creation.icosphere(subdivisions=3, radius=2.0).apply_translation([10.0, 0.0, 0.0])
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("draft", draft.vertices.astype(np.float32), draft.faces)]))
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        spec = {"task": "text_to_3d", "model": "magic3d-sd",
                "params": {"prompt": "a marble ball", **FEW, "num_inference_steps": 0, "fine_steps": 30}}
        job = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"mesh": ("d.glb", glb)}).json()
        deadline = time.monotonic() + 180
        while (record := client.get(f"/jobs/{job['id']}").json())["phase"] != "refine" or record["step"] < 2:
            assert record["state"] in ("queued", "running") and time.monotonic() < deadline, record
            time.sleep(0.05)
        current = client.get(f"/jobs/{job['id']}/current")
        assert current.status_code == 200, current.text
        parts, extras = read_glb_meshes(current.content)
        assert extras["diffusion3d"]["current_state"]["total"] == 30
        while (record := client.get(f"/jobs/{job['id']}").json())["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert record["state"] == "succeeded", record["error"]
        parts, extras = read_glb_meshes(client.get(f"/jobs/{job['id']}/result").content)
        centre = (parts[0].vertices.max(0) + parts[0].vertices.min(0)) / 2
        size = parts[0].vertices.max(0) - parts[0].vertices.min(0)
        assert np.allclose(centre, [10.0, 0.0, 0.0], atol=0.2) and np.allclose(size, 4.0, atol=0.3)  # the draft's place
        assert extras["diffusion3d"]["initialised"] is True and extras["diffusion3d"]["steps"] == 0
        refused = client.post("/jobs", data={"spec": json.dumps({**spec, "params": {"prompt": "x", "num_inference_steps": 0}})})
        assert refused.status_code == 400 and "refines a draft" in refused.json()["detail"]


def test_prolificdreamer_distils_a_mesh_through_the_service(tiny_prior, tmp_path):
    """VSD with its camera LoRA on the tiny prior, through the job system, to a textured mesh."""
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        spec = {"task": "text_to_3d", "model": "prolificdreamer-sd",
                "params": {"prompt": "a teapot", "num_inference_steps": 3, "render_resolution": 16, "grid_size": 32,
                           "texture_size": 256, "lora_rank": 2, "seed": 4}}
        job = client.post("/jobs", data={"spec": json.dumps(spec)}).json()
        record = wait(client, job["id"], timeout=120)
        assert record["state"] == "succeeded", record["error"]
        parts, extras = read_glb_meshes(client.get(f"/jobs/{job['id']}/result").content)
        assert len(parts[0].faces) > 0 and parts[0].uv is not None
        assert extras["diffusion3d"]["model"] == "prolificdreamer-sd" and extras["diffusion3d"]["steps"] == 3
        model = next(m for m in client.get("/models").json() if m["name"] == "prolificdreamer-sd")
        assert model["params"]["guidance_scale"] == 7.5 and "perp_neg" not in model["params"]


def test_dreamfields_distils_a_mesh_with_clip_through_the_service(tmp_path, monkeypatch):
    from backend.distill.guidance.clip import DEFAULT_MODEL as CLIP

    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{CLIP}={tiny_sd.clip_model(tmp_path)}")
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        model = next(m for m in client.get("/models").json() if m["name"] == "dreamfields-clip")
        assert model["available_offline"] and model["params"]["transmittance"] == 0.88
        spec = {"task": "text_to_3d", "model": "dreamfields-clip",
                "params": {"prompt": "a bouquet", "num_inference_steps": 3, "render_resolution": 16, "grid_size": 32,
                           "texture_size": 256, "seed": 2}}
        job = client.post("/jobs", data={"spec": json.dumps(spec)}).json()
        record = wait(client, job["id"], timeout=120)
        assert record["state"] == "succeeded", record["error"]
        parts, extras = read_glb_meshes(client.get(f"/jobs/{job['id']}/result").content)
        assert len(parts[0].faces) > 0 and extras["diffusion3d"]["model"] == "dreamfields-clip"
        refused = client.post("/jobs", data={"spec": json.dumps({**spec, "params": {"prompt": " "}})})
        assert refused.status_code == 400 and "needs a prompt" in refused.json()["detail"]
