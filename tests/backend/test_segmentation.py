"""Cutting an object out of a busy photo with Segment Anything: the mask's geometry, the choice
among SAM's proposals, the model's wiring at toy size, and a job that needs it."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from backend.errors import InputError
from backend.hub import MODEL_SOURCES_ENV
from backend.models import LoadOptions
from backend.segmentation import DEFAULT_MODEL, ObjectSegmenter, choose_mask, to_image_masks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sam  # noqa: E402
import tiny_triposr  # noqa: E402


def busy_photo(size=(96, 64)) -> np.ndarray:
    """An orange disc in the middle of noise."""
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(noise)
    ImageDraw.Draw(image).ellipse((size[0] // 2 - 20, size[1] // 2 - 20, size[0] // 2 + 20, size[1] // 2 + 20),
                                  fill=(230, 120, 20))
    return np.asarray(image)


def test_the_mask_comes_back_over_the_photo_not_the_padded_square():
    """A wide photo fills the top of SAM's square; a mask of the square's top-left quarter is the
    photo's left half, at the photo's size."""
    low = torch.full((1, 16, 16), -5.0)
    low[0, :8, :8] = 5.0
    mask = to_image_masks(low, size=64, inner=(32, 64), original=(48, 96))[0]
    assert mask.shape == (48, 96)
    assert (mask[:, :44] > 0).all() and (mask[:, 52:] < 0).all()


def test_the_best_plausible_proposal_is_chosen():
    speck, whole, object_ = torch.full((3, 50, 50), -4.0)
    speck[25, 25] = 4.0
    whole[:] = 4.0
    object_[10:40, 10:40] = 4.0
    logits = torch.stack([speck, whole, object_])
    mask = choose_mask(logits, torch.tensor([0.9, 0.95, 0.6]))
    assert mask[25, 25] > 0.9 and mask[0, 0] < 0.1  # the object, though SAM scored it lowest
    with pytest.raises(InputError, match="could not find one object at the middle"):
        choose_mask(logits[:2], torch.tensor([0.9, 0.95]))


def test_segment_anything_runs_from_a_folder_at_toy_size(tmp_path):
    segmenter = ObjectSegmenter.from_pretrained(str(tiny_sam.write_folder(tmp_path / "sam")), LoadOptions())
    seen = {}
    original = segmenter.model.forward

    def spy(**inputs):
        seen.update(inputs)
        return original(**inputs)

    segmenter.model.forward = spy
    try:
        mask = segmenter(busy_photo())
        assert mask.shape == (64, 96) and 0 <= mask.min() and mask.max() <= 1
    except InputError as random_weights:  # random SAM may propose nothing object-like: refused, not crashed
        assert "one object at the middle" in str(random_weights)
    assert tuple(seen["pixel_values"].shape) == (1, 3, 64, 64)
    assert seen["input_points"].tolist() == [[[[32.0, 21.5]]]]  # the photo's centre, scaled to 64 x 43


def test_a_busy_photo_is_cut_out_by_segment_anything_in_a_job(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from backend.server import Settings, create_app
    from tests.backend.test_server import wait

    png = io.BytesIO()
    Image.fromarray(busy_photo((128, 128))).save(png, format="PNG")
    spec = {"task": "image_to_3d", "model": "triposr", "params": {"grid_size": 48, "texture_size": 256}}
    tsr = tiny_triposr.write_folder(tmp_path / "tsr", sphere=True)

    def service(sources: str):
        monkeypatch.setenv(MODEL_SOURCES_ENV, sources)
        app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                                  allowed_hosts=("testserver",)))
        return TestClient(app, headers={"Authorization": "Bearer t"})

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with service(f"stabilityai/TripoSR={tsr};{DEFAULT_MODEL}={tmp_path / 'no-sam-here'}") as client:
        refused = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"image": ("desk.png", png.getvalue())})
        assert refused.status_code == 400 and f"download {DEFAULT_MODEL}" in refused.json()["detail"]

    def disc_mask(self, rgb):  # SAM's answer for this photo (the toy SAM's own is random)
        rows, cols = np.mgrid[:rgb.shape[0], :rgb.shape[1]]
        return (((rows - 64) ** 2 + (cols - 64) ** 2) < 20 ** 2).astype(np.float32)

    monkeypatch.setattr(ObjectSegmenter, "__call__", disc_mask)
    with service(f"stabilityai/TripoSR={tsr};{DEFAULT_MODEL}={tiny_sam.write_folder(tmp_path / 'sam')}") as client:
        job = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"image": ("desk.png", png.getvalue())})
        record = wait(client, job.json()["id"], timeout=120)
        assert record["state"] == "succeeded", record["error"]
        assert record["result_metadata"]["cut_out"] == "segmented"
        assert any("Segment Anything" in note for note in record["result_metadata"]["notes"])
