"""Exact resume of a score distillation: a run stopped at any step and resumed from its checkpoint
ends bit for bit where a run that never stopped ends, in the engine (field stage and mesh stage)
and through the service (a cancel, a backend that stops under the job, then POST /jobs/{id}/resume).
A checkpoint that does not fit, or is damaged, is refused in words."""

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from fastapi.testclient import TestClient
from PIL import Image

from backend.distill import checkpoint as checkpoints
from backend.distill.cameras import CameraConfig
from backend.distill.field import FieldConfig, RadianceField
from backend.distill.guidance.oracle import OracleDenoiser
from backend.distill.guidance.schedules import DreamTimeSchedule
from backend.distill.guidance.sds import ScoreDistillation, SDSConfig
from backend.distill.mesh_stage import MeshStageConfig, TexturedMesh, refine_mesh
from backend.distill.trainer import DistillConfig, distill
from backend.distill.volume import RenderConfig
from backend.errors import InputError, JobCancelled
from backend.geometry.glb import read_glb_meshes
from backend.distill.guidance.stable_diffusion import DEFAULT_MODEL
from backend.hub import MODEL_SOURCES_ENV
from backend.server import Settings, create_app
from formats.glb import read_glb
from tests.backend.test_distill_oracle import render_asset
from tests.backend.test_server import wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

STEPS = 30


def field_run(stop_at=None, resume=None, field_config=FieldConfig(resolutions=(8, 16), features=2, hidden=16)):
    """A small field distilled against the oracle on DreamTime's schedule; stopped after step
    `stop_at` (returns its packed checkpoint) or run to the end (returns the field)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    oracle = OracleDenoiser(render_asset)
    guidance = ScoreDistillation(oracle, SDSConfig(), total_steps=STEPS, generator=generator,
                                 schedule=DreamTimeSchedule(oracle.alphas_cumprod, generator=generator))
    config = DistillConfig(steps=STEPS, cameras=CameraConfig(resolution=16), rendering=RenderConfig(samples=16),
                           albedo_steps=8, occupancy_every=4, seed=3)  # lit steps and grid refreshes on both sides
    return _stoppable(lambda callback: distill(RadianceField(field_config), guidance, "x", config, callback,
                                               resume=resume), stop_at)


def _stoppable(run, stop_at):
    kept = {}

    def callback(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        if step == stop_at:
            kept["data"] = checkpoints.pack(checkpoint())
            raise JobCancelled()

    try:
        return run(callback)
    except JobCancelled:
        return kept["data"]


def test_a_field_stopped_and_resumed_ends_exactly_where_an_unstopped_run_does():
    whole = field_run()
    for stop_at in (1, 13):
        resumed = field_run(resume=checkpoints.unpack(field_run(stop_at=stop_at)))
        for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
            assert torch.equal(a, b), stop_at
    # resumed without the optimiser's moments (what going on from a draft loses), it drifts
    damaged = checkpoints.unpack(field_run(stop_at=13))
    damaged["parts"]["optimiser"]["state"] = {}
    drifted = field_run(resume=damaged)
    assert not all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), drifted.state_dict().values()))


def mesh_run(stop_at=None, resume=None):
    torch.manual_seed(0)
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    texture = RadianceField(FieldConfig(resolutions=(8,), features=2, hidden=8))
    mesh = TexturedMesh(sphere.vertices.astype(np.float32), sphere.faces, texture)
    guidance = ScoreDistillation(OracleDenoiser(render_asset), SDSConfig(), total_steps=12,
                                 generator=torch.Generator().manual_seed(2))
    config = MeshStageConfig(steps=12, cameras=CameraConfig(resolution=16), seed=5)
    return _stoppable(lambda callback: refine_mesh(mesh, guidance, "x", config, callback, resume=resume), stop_at)


def test_the_mesh_stage_stopped_and_resumed_ends_exactly_where_an_unstopped_run_does():
    whole = mesh_run()
    resumed = mesh_run(resume=checkpoints.unpack(mesh_run(stop_at=5)))
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert float(whole.shape.u.detach().abs().max()) > 0  # the shape moved: there was something to get right


def test_a_checkpoint_that_does_not_fit_or_is_damaged_is_refused_in_words():
    data = field_run(stop_at=2)
    with pytest.raises(InputError, match="checkpoint's field does not fit"):
        field_run(resume=checkpoints.unpack(data), field_config=FieldConfig(resolutions=(8, 32), features=2, hidden=16))
    late = checkpoints.unpack(data)
    late["step"] = STEPS + 5
    with pytest.raises(InputError, match="step 35 of a 30-step run"):
        field_run(resume=late)
    for damaged in (b"", data[:40], b"\xff" * 64, data[:8] + b"[" + data[9:]):
        with pytest.raises(InputError, match="checkpoint"):
            checkpoints.unpack(damaged)
    with pytest.raises(TypeError):
        checkpoints.pack({"a": object()})


FEW = {"render_resolution": 16, "grid_size": 32, "texture_size": 256, "seed": 7}


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{DEFAULT_MODEL}={tiny_sd.text_pipeline(tmp_path)}")

    def start():
        app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                                  allowed_hosts=("testserver",)))
        return TestClient(app, headers={"Authorization": "Bearer t"})
    return start


def result_of(client, job_id):
    record = wait(client, job_id, timeout=300)
    assert record["state"] == "succeeded", record["error"]
    return client.get(f"/jobs/{job_id}/result").content


def wait_for_step(client, job_id, phase, step):
    deadline = time.monotonic() + 300
    while (record := client.get(f"/jobs/{job_id}").json())["phase"] != phase or record["step"] < step:
        assert record["state"] in ("queued", "running") and time.monotonic() < deadline, record
        time.sleep(0.02)


def assert_same_mesh(a: bytes, b: bytes):
    """The same GLB: vertices, UVs, baked texture and notes."""
    for first, second in zip(read_glb_meshes(a)[0], read_glb_meshes(b)[0], strict=True):
        assert np.array_equal(first.vertices, second.vertices) and np.array_equal(first.uv, second.uv)
    assert a == b


def test_magic3d_cancelled_in_its_mesh_stage_resumes_to_the_same_result(service):
    spec = {"task": "text_to_3d", "model": "magic3d-sd",
            "params": {"prompt": "a vase", "num_inference_steps": 4, "fine_steps": 24, "fine_resolution": 64, **FEW}}
    with service() as client:
        whole = result_of(client, client.post("/jobs", data={"spec": json.dumps(spec)}).json()["id"])
        stopped = client.post("/jobs", data={"spec": json.dumps(spec)}).json()["id"]
        wait_for_step(client, stopped, "refine", 3)
        client.delete(f"/jobs/{stopped}")
        record = wait(client, stopped)
        assert record["state"] == "cancelled" and record["has_checkpoint"] and record["step"] < 24, record
        resumed = client.post(f"/jobs/{stopped}/resume")
        assert resumed.status_code == 201, resumed.text
        assert resumed.json()["resumed_from"] == stopped and resumed.json()["params"] == record["params"]
        assert_same_mesh(whole, result_of(client, resumed.json()["id"]))
        done = client.get(f"/jobs/{resumed.json()['id']}").json()
        assert not done["has_checkpoint"]  # it ended: nothing is left to go on from
        again = client.post(f"/jobs/{resumed.json()['id']}/resume")
        assert again.status_code == 409 and "only a cancelled or interrupted job" in again.json()["detail"]


def test_prolificdreamer_stopped_by_a_backend_restart_resumes_to_the_same_result(service):
    """Two VSD particles, side by side in one result; their camera LoRA and its optimiser are
    part of what goes on."""
    spec = {"task": "text_to_3d", "model": "prolificdreamer-sd",
            "params": {"prompt": "a teapot", "num_inference_steps": 10, "lora_rank": 2, "particles": 2, **FEW}}
    with service() as client:
        whole = result_of(client, client.post("/jobs", data={"spec": json.dumps(spec)}).json()["id"])
        scene = read_glb(whole)
        assert [part.name for part in scene.parts] == ["particle 1", "particle 2"]
        first, second = (part.vertices[:, 0] for part in scene.parts)
        assert first.max() < second.min()  # side by side, not inside each other
        assert not np.array_equal(scene.parts[0].vertices, scene.parts[1].vertices)  # two shapes, not one twice
        (image,) = scene.images
        texture = Image.open(io.BytesIO(image.data))
        assert texture.size == (2 * 256, 256)  # one atlas: each particle's texture in its own half
        assert all(0 <= part.uv[:, 0].min() and part.uv[:, 0].max() <= 0.5 for part in scene.parts[:1])
        assert scene.parts[1].uv[:, 0].min() >= 0.5
        stopped = client.post("/jobs", data={"spec": json.dumps(spec)}).json()["id"]
        wait_for_step(client, stopped, "distill", 3)
    with service() as client:  # the backend stopped under the job and started again
        record = client.get(f"/jobs/{stopped}").json()
        assert record["state"] == "failed" and record["has_checkpoint"] and "resumed from its checkpoint" in record["error"], record
        resumed = client.post(f"/jobs/{stopped}/resume").json()
        assert_same_mesh(whole, result_of(client, resumed["id"]))
