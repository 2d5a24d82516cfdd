"""Image to 3D with Zero-1-to-3: its relative camera, its conditioning (tiny random components in
the released diffusers layout), the input image's preparation, the reference view the field must
reproduce, and `zero123-sds` through the job system."""

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from backend.distill.cameras import CameraConfig, view_at
from backend.distill.field import FieldConfig, RadianceField
from backend.distill.guidance.base import GuidanceOutput
from backend.distill.guidance.zero123 import DEFAULT_MODEL, Zero123Prior
from backend.distill.metrics import psnr, silhouette_iou
from backend.distill.reference import WHITE, ReferenceView, prepare_reference
from backend.distill.trainer import DistillConfig, distill
from backend.distill.volume import RenderConfig, render
from backend.errors import InputError
from backend.geometry.glb import read_glb_meshes
from backend.hub import MODEL_SOURCES_ENV
from backend.models import LoadOptions
from backend.server import Settings, create_app
from tests.backend.test_server import wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_sd.zero123_pipeline(tmp_path_factory.mktemp("zero123"))


def disc(size: int = 96, alpha: bool = True) -> np.ndarray:
    """A red disc, off-centre, on transparency (or on a plain blue background)."""
    y, x = np.mgrid[:size, :size]
    inside = (x - 0.35 * size) ** 2 + (y - 0.55 * size) ** 2 < (0.2 * size) ** 2
    image = np.zeros((size, size, 4), np.uint8)
    image[..., :3] = (30, 60, 200)
    image[inside, :3] = (220, 40, 30)
    image[..., 3] = 255 if not alpha else np.where(inside, 255, 0)
    return image if alpha else image[..., :3]


def test_relative_camera_and_conditioning(folder):
    prior = Zero123Prior.from_pretrained(str(folder), LoadOptions(device="cpu"))
    with pytest.raises(RuntimeError, match="set_reference"):
        prior.relative_cameras([view_at(0.0, 0.0, 3.0, 40.0, 16)])
    prior.set_reference(torch.rand(3, 32, 32), view_at(10.0, 0.0, 3.0, 40.0, 16))
    cameras = prior.relative_cameras([view_at(40.0, 90.0, 3.5, 40.0, 16), view_at(10.0, 0.0, 3.0, 40.0, 16)])
    # Polar is 90 - elevation: 30 degrees higher is -30 degrees of polar; 90 degrees round; 0.5 further.
    expected = torch.tensor([[math.radians(-30.0), 1.0, 0.0, 0.5], [0.0, 0.0, 1.0, 0.0]])
    assert torch.allclose(cameras, expected, atol=1e-6)
    x_t, t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([200, 600])
    views = [view_at(40.0, 90.0, 3.5, 40.0, 16), view_at(0.0, -90.0, 3.0, 40.0, 16)]
    conditional = prior.predict_noise(x_t, t, prior.encode(["ignored"]), views)
    assert conditional.shape == x_t.shape
    assert not torch.allclose(conditional, prior.predict_noise(x_t, t, None, views))  # CFG drops the image
    assert not torch.allclose(conditional, prior.predict_noise(x_t, t, "reference", views[::-1]))  # the camera counts
    before = prior.predict_noise(x_t, t, "reference", views)
    prior.set_reference(torch.rand(3, 32, 32), view_at(10.0, 0.0, 3.0, 40.0, 16))
    assert not torch.allclose(before, prior.predict_noise(x_t, t, "reference", views))  # and so does the image


def test_the_object_is_cut_out_centred_and_scaled():
    for image in (disc(alpha=True), disc(alpha=False)):
        rgb, mask = prepare_reference(image, 64, fill=0.8)
        rows, cols = np.nonzero(mask.numpy() > 0.5)
        assert abs((rows.min() + rows.max()) / 2 - 31.5) <= 1.5 and abs((cols.min() + cols.max()) / 2 - 31.5) <= 1.5
        assert 0.75 * 64 <= rows.max() - rows.min() + 1 <= 0.85 * 64
        assert torch.allclose(rgb[:, 0, 0], torch.ones(3))  # white around the object
        assert rgb[0, 32, 32] > 0.7 and rgb[2, 32, 32] < 0.3  # the red disc in the middle
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    noise[:, :] = noise[0, 0]  # one flat colour: nothing to cut out
    with pytest.raises(InputError, match="could not find an object"):
        prepare_reference(noise, 32)


def test_the_reference_view_alone_makes_the_field_reproduce_the_image():
    """With a guidance that asks nothing, the reference losses must make the field show the input
    from the input's camera: its colours and its outline."""
    image, mask = prepare_reference(disc(), 32)
    view = view_at(0.0, 0.0, 3.1, 40.0, 32)
    reference = ReferenceView(view=view, image=image, mask=mask)

    def nothing(renders, views, prompt, step, negative_prompt=None):
        return GuidanceOutput(renders.sum() * 0.0, torch.zeros(len(renders), dtype=torch.long))

    torch.manual_seed(0)
    field = RadianceField(FieldConfig(resolutions=(16, 32), features=4, hidden=32))
    rendering = RenderConfig(samples=32)
    config = DistillConfig(steps=300, cameras=CameraConfig(resolution=16), rendering=rendering, albedo_steps=300,
                           reference=reference, preview_every_s=1e9)
    distill(field, nothing, "", config)
    with torch.no_grad():
        shown = render(field, [view], rendering, None, "albedo", background=torch.tensor(WHITE),
                       generator=torch.Generator().manual_seed(1))
    blank = psnr(torch.ones_like(image), image)
    reached = psnr(shown.rgb[0], image)
    print(f"reference view PSNR {reached:.1f} dB (a white image: {blank:.1f}); "
          f"IoU {silhouette_iou(shown.opacity[0, 0], mask > 0.5):.3f}")
    assert reached >= blank + 8 and silhouette_iou(shown.opacity[0, 0], mask > 0.5) >= 0.85


def test_zero123_sds_lands_a_mesh_through_the_service(folder, tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{DEFAULT_MODEL}={folder}")
    png = io.BytesIO()
    Image.fromarray(disc()).save(png, format="PNG")
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        spec = {"task": "image_to_3d", "model": "zero123-sds",
                "params": {"num_inference_steps": 3, "render_resolution": 16, "grid_size": 32, "texture_size": 256,
                           "reference_elevation": 15.0, "seed": 1}}
        job = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"image": ("disc.png", png.getvalue())}).json()
        record = wait(client, job["id"], timeout=120)
        assert record["state"] == "succeeded", record["error"]
        parts, extras = read_glb_meshes(client.get(f"/jobs/{job['id']}/result").content)
        assert len(parts[0].faces) > 0 and extras["diffusion3d"]["model"] == "zero123-sds"
        assert extras["diffusion3d"]["reference_elevation"] == 15.0
        flat = io.BytesIO()
        Image.new("RGB", (64, 64), (90, 90, 90)).save(flat, format="PNG")
        refused = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"image": ("flat.png", flat.getvalue())})
        assert refused.status_code == 400 and "could not find an object" in refused.json()["detail"]  # before queueing
