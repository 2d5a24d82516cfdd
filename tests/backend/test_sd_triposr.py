"""Text to image to 3D with a gallery: tiny Stable Diffusion and TripoSR behind the models' ids,
through the service."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from backend.hub import MODEL_SOURCES_ENV
from backend.pipelines import sd_triposr
from backend.server import Settings, create_app
from tests.backend.test_server import wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402
import tiny_triposr  # noqa: E402


@pytest.fixture()
def client(tmp_path, monkeypatch):
    sources = (f"stabilityai/stable-diffusion-2-1-base={tiny_sd.text_pipeline(tmp_path / 'sd')};"
               f"stabilityai/TripoSR={tiny_triposr.write_folder(tmp_path / 'tsr', sphere=True)}")
    monkeypatch.setenv(MODEL_SOURCES_ENV, sources)
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as test_client:
        yield test_client


def submit(client, **params):
    spec = {"task": "text_to_3d", "model": "sd-triposr",
            "params": {"prompt": "a red lantern", "num_inference_steps": 2, "image_size": 64, "grid_size": 48,
                       "texture_size": 256, **params}}
    return client.post("/jobs", data={"spec": json.dumps(spec)})


def candidate(client, job_id: str, index: int) -> np.ndarray:
    answer = client.get(f"/jobs/{job_id}/candidates/{index}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_a_gallery_job_draws_candidates_and_stops_before_3d(client):
    job = submit(client, candidates=3, pick=-1, seed=10).json()
    record = wait(client, job["id"], timeout=120)
    assert record["state"] == "succeeded" and not record["has_result"] and record["candidates"] == 3
    assert record["result_metadata"]["candidate_seeds"] == [10, 11, 12]
    images = [candidate(client, job["id"], k) for k in range(3)]
    assert images[0].shape == (64, 64, 3) and not np.array_equal(images[0], images[1])  # one seed each
    assert client.get(f"/jobs/{job['id']}/candidates/3").status_code == 404
    refused = client.get(f"/jobs/{job['id']}/result")
    assert refused.status_code == 409 and "candidate image(s) and no mesh" in refused.json()["detail"]
    sheet = Image.open(io.BytesIO(client.get(f"/jobs/{job['id']}/preview").content))
    assert sheet.size == (3 * 192, 192)  # the gallery, numbered
    again = wait(client, submit(client, candidates=1, pick=-1, seed=11).json()["id"], timeout=120)
    alone = candidate(client, again["id"], 0).astype(int)
    assert np.abs(alone - images[1]).max() <= 2  # a seed draws the same image again (batching rounds a little)


def test_a_picked_candidate_becomes_a_mesh_and_a_cluttered_one_is_explained(client, monkeypatch):
    # Noise from tiny random SD cannot be cut out: the pick fails saying what to do.
    failed = wait(client, submit(client, candidates=2, pick=1, seed=3).json()["id"], timeout=120)
    assert failed["state"] == "failed" and "candidate 1 cannot be made 3D" in failed["error"]
    assert "background is not plain" in failed["error"]

    def discs(pipe, prompt, negative_prompt, seeds, steps, guidance_scale, size, callback):
        images = []
        for seed in seeds:
            image = Image.new("RGB", (size, size), (255, 255, 255))
            ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(seed * 40, 20, 20))
            images.append(np.asarray(image))
        return images

    monkeypatch.setattr(sd_triposr, "generate_candidates", discs)
    record = wait(client, submit(client, candidates=2, pick=1, seed=3).json()["id"], timeout=120)
    assert record["state"] == "succeeded" and record["has_result"] and record["candidates"] == 2
    meta = record["result_metadata"]
    assert meta["model"] == "sd-triposr" and meta["pick"] == 1 and meta["picked_seed"] == 4 and meta["cut_out"]
    assert client.get(f"/jobs/{record['id']}/result").status_code == 200


def test_requests_that_cannot_work_are_refused_when_submitted(client):
    assert submit(client, candidates=2, pick=2).status_code == 400
    assert "only 2 candidate(s)" in submit(client, candidates=2, pick=2).json()["detail"]
    assert "needs a prompt" in submit(client, prompt="  ").json()["detail"]
    assert submit(client, candidates=9).status_code == 400


def test_the_command_line_writes_a_gallery_then_makes_a_picked_image_3d(tmp_path, monkeypatch, capsys):
    from backend.__main__ import main

    sources = (f"stabilityai/stable-diffusion-2-1-base={tiny_sd.text_pipeline(tmp_path / 'sd')};"
               f"stabilityai/TripoSR={tiny_triposr.write_folder(tmp_path / 'tsr', sphere=True)}")
    monkeypatch.setenv(MODEL_SOURCES_ENV, sources)
    out = tmp_path / "lantern.glb"
    status = main(["generate", "--prompt", "a lantern", "--model", "sd-triposr", "--steps", "2", "--offline",
                   "--param", "candidates=2", "--param", "pick=-1", "--param", "image_size=64", "--out", str(out)])
    assert status == 0 and not out.exists()
    assert (tmp_path / "lantern-candidate-1.png").is_file() and "no mesh: pick a candidate" in capsys.readouterr().err
    clean = Image.new("RGB", (64, 64), (255, 255, 255))
    ImageDraw.Draw(clean).ellipse((16, 16, 48, 48), fill=(40, 90, 200))
    clean.save(tmp_path / "lantern-candidate-1.png")  # the artist's pick (tiny SD draws noise)
    status = main(["generate", "--image", str(tmp_path / "lantern-candidate-1.png"), "--offline", "--param",
                   "grid_size=48", "--param", "texture_size=256", "--out", str(out)])
    assert status == 0 and out.read_bytes()[:4] == b"glTF"
