"""`dreamfusion-sd` end to end on tiny random SD components: the command line and the job
system take it from a prompt to a mesh (the images are noise; the wiring is what is tested)."""

import json
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.__main__ import main
from backend.distill.guidance.stable_diffusion import DEFAULT_MODEL
from backend.geometry.glb import read_glb_meshes
from formats.glb import read_glb
from backend.hub import MODEL_SOURCES_ENV
from backend.server import Settings, create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

FEW_STEPS = {"num_inference_steps": 3, "render_resolution": 16, "grid_size": 32, "texture_size": 256}


@pytest.fixture
def tiny_prior(tmp_path, monkeypatch):
    """Stable Diffusion 2.1-base's id resolves to a tiny random model."""
    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{DEFAULT_MODEL}={tiny_sd.text_pipeline(tmp_path)}")


def test_the_command_line_distils_a_mesh(tiny_prior, tmp_path, capsys):
    out = tmp_path / "teapot.glb"
    args = ["generate", "--model", "dreamfusion-sd", "--prompt", "a teapot", "--seed", "1", "--out", str(out)]
    for key, value in FEW_STEPS.items():
        args += ["--param", f"{key}={value}"]
    assert main(args) == 0, capsys.readouterr().err
    parts, extras = read_glb_meshes(out.read_bytes())
    assert len(parts[0].faces) > 0 and parts[0].uv is not None and parts[0].vertex_colors is None
    assert read_glb(out.read_bytes()).images[0].data[:4] == b"\x89PNG"  # the baked albedo
    assert extras["diffusion3d"]["model"] == "dreamfusion-sd" and extras["diffusion3d"]["steps"] == 3


def test_a_job_reports_each_step_with_previews_and_lands_a_mesh(tiny_prior, tmp_path):
    """With Perp-Neg and DreamTime's schedule: every option reaches the prior."""
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        spec = {"task": "text_to_3d", "model": "dreamfusion-sd",
                "params": {"prompt": "a teapot", "perp_neg": True, "schedule": "dreamtime", **FEW_STEPS}}
        job = client.post("/jobs", data={"spec": json.dumps(spec)}).json()
        phases = set()
        deadline = time.monotonic() + 120
        while (record := client.get(f"/jobs/{job['id']}").json())["state"] not in ("succeeded", "failed"):
            phases.add(record["phase"])
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert record["state"] == "succeeded", record["error"]
        assert record["has_preview"] and client.get(f"/jobs/{job['id']}/preview").content[:4] == b"\x89PNG"
        parts, extras = read_glb_meshes(client.get(f"/jobs/{job['id']}/result").content)
        assert len(parts[0].faces) > 0 and extras["diffusion3d"]["perp_neg"] is True


@pytest.mark.parametrize("params, words", [
    ({"prompt": " "}, "needs a prompt"),
    ({"prompt": "a cup", "schedule": "backwards"}, "schedule must be one of random, annealed, dreamtime"),
    ({"prompt": "a cup", "guidance_scale": 0.5}, "guidance_scale"),
])
def test_bad_requests_are_refused_at_submit(tiny_prior, tmp_path, params, words):
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        spec = {"task": "text_to_3d", "model": "dreamfusion-sd", "params": params}
        response = client.post("/jobs", data={"spec": json.dumps(spec)})
        assert response.status_code == 400 and words in response.json()["detail"]


def test_a_draft_is_refined_in_its_own_place_and_size(tiny_prior, tmp_path, capsys):
    """--init: the field starts from the draft's shape (a few steps of a random prior barely move
    it), and the result comes back where the draft was, at its size."""
    import numpy as np
    import trimesh

    draft = trimesh.creation.box(extents=(2.0, 1.0, 1.0))
    draft.apply_translation([10.0, 0.5, -3.0])
    draft.export(tmp_path / "draft.glb")
    out = tmp_path / "refined.glb"
    args = ["generate", "--model", "dreamfusion-sd", "--prompt", "a brick", "--init", str(tmp_path / "draft.glb"),
            "--seed", "0", "--out", str(out)]
    for key, value in {**FEW_STEPS, "grid_size": 64}.items():
        args += ["--param", f"{key}={value}"]
    assert main(args) == 0, capsys.readouterr().err
    parts, extras = read_glb_meshes(out.read_bytes())
    low, high = parts[0].vertices.min(0), parts[0].vertices.max(0)
    np.testing.assert_allclose(low, draft.bounds[0], atol=0.15)  # a tenth of the draft's size, about two cells
    np.testing.assert_allclose(high, draft.bounds[1], atol=0.15)
    assert extras["diffusion3d"]["initialised"] is True
    # Models that cannot start from a draft say so, and which can.
    assert main(["generate", "--model", "builtin", "--prompt", "a chair", "--init", str(tmp_path / "draft.glb"),
                 "--out", str(out)]) == 2
    assert "does not start from a draft; these do: dreamfusion-sd" in capsys.readouterr().err


def test_a_textured_draft_gives_the_field_its_texture_colours():
    """A draft with a base-colour texture and no vertex colours (a current state, a textured
    result): the fitted albedo takes the texture's colours at the surface, not grey."""
    import numpy as np
    import torch
    import trimesh

    from backend.distill.field import FieldConfig, RadianceField
    from backend.distill.init import fit_to_upload
    from backend.geometry.glb import mesh_result_to_glb
    from backend.results import MeshPart, MeshResult

    ball = trimesh.creation.icosphere(subdivisions=3)
    uv = np.where(ball.vertices[:, 1:2] > 0, [[0.25, 0.5]], [[0.75, 0.5]]).astype(np.float32)  # top: left half
    texture = np.zeros((8, 8, 3), np.uint8)
    texture[:, :4] = (200, 30, 30)  # red on the left
    texture[:, 4:] = (30, 30, 200)  # blue on the right
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", ball.vertices.astype(np.float32), ball.faces, uv=uv)],
                                        texture=texture))
    torch.manual_seed(0)
    field = RadianceField(FieldConfig(resolutions=(16, 32), features=4, hidden=32))
    draft = fit_to_upload(field, glb, seed=0)
    with torch.no_grad():
        top = field(torch.tensor([[0.0, 0.68, 0.0]]))[1][0]  # just inside the placed sphere's top
        bottom = field(torch.tensor([[0.0, -0.68, 0.0]]))[1][0]
    # Red on top, blue below (grey, the old fallback, would make both differences zero).
    assert (top[0] - top[2]) - (bottom[0] - bottom[2]) > 0.3 and top[0] > top[2] and bottom[2] > bottom[0], (top, bottom)
    assert draft.vertices.shape == ball.vertices.shape
