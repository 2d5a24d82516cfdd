"""TripoSR without its weights: the full-size network's shape, the published checkpoint's key names,
its loading as tensors only, and the decoding half checked against a field whose answer is known."""

from __future__ import annotations

import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from backend.errors import GenerationFailed, InputError, ModelUnavailable
from backend.geometry.isosurface import outer_surface
from backend.models import LoadOptions
from backend.pipelines import triposr
from backend.reconstruct import checkpoint
from backend.reconstruct.config import TripoSRConfig, parse_config, published_yaml, vit_json
from backend.reconstruct.network import TripoSR
from backend.reconstruct.to_mesh import surface, textured_part
from backend.reconstruct.triplane import TriplaneField
from backend.results import no_progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_triposr  # noqa: E402
from tiny_triposr import TINY, set_sphere_decoder, squared_coordinate_planes, write_folder  # noqa: E402

# stabilityai/TripoSR's model.ckpt is 1.68 GB of float32 tensors: 419.3 M parameters, of which
# DINO ViT-B/16 with its pooler (transformers' ViTModel) is the well-known 86.4 M.
PUBLISHED_PARAMETERS, VIT_B16_PARAMETERS = 419_275_628, 86_389_248


def full_size_on_meta() -> TripoSR:
    with torch.device("meta"):
        return TripoSR(TripoSRConfig())


def test_the_full_size_network_has_the_published_parameter_count_and_key_names():
    model = full_size_on_meta()
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS
    assert sum(p.numel() for p in model.image_tokenizer.parameters()) == VIT_B16_PARAMETERS
    published = checkpoint.to_published_keys(model.state_dict())
    assert len(published) == 549
    # Names as the published checkpoint has them (written out, not derived from our modules).
    for key, shape in {
        "image_tokenizer.model.embeddings.position_embeddings": (1, 197, 768),
        "image_tokenizer.model.encoder.layer.11.attention.attention.query.weight": (768, 768),
        "image_tokenizer.model.encoder.layer.0.attention.output.dense.bias": (768,),
        "image_tokenizer.model.encoder.layer.3.intermediate.dense.weight": (3072, 768),
        "image_tokenizer.model.encoder.layer.3.output.dense.weight": (768, 3072),
        "image_tokenizer.model.pooler.dense.weight": (768, 768),
        "tokenizer.embeddings": (3, 1024, 32, 32),
        "backbone.norm.weight": (1024,),
        "backbone.transformer_blocks.15.attn2.to_k.weight": (1024, 768),
        "backbone.transformer_blocks.0.ff.net.0.proj.weight": (8192, 1024),
        "backbone.transformer_blocks.0.ff.net.2.weight": (1024, 4096),
        "post_processor.upsample.weight": (1024, 40, 2, 2),
        "decoder.layers.0.weight": (64, 120),
        "decoder.layers.16.weight": (64, 64),
        "decoder.layers.18.weight": (4, 64),
    }.items():
        assert tuple(published[key].shape) == shape, key


def test_a_checkpoint_under_the_published_names_loads_exactly(tmp_path):
    folder = write_folder(tmp_path / "tsr")
    saved = torch.load(folder / "model.ckpt", weights_only=True)
    assert "image_tokenizer.model.encoder.layer.0.attention.attention.key.weight" in saved  # the published layout
    model = triposr.load(LoadOptions(cache_dir=str(tmp_path / "cache")), str(folder)).network
    loaded = checkpoint.to_published_keys(model.state_dict())
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)


def test_the_pickle_is_read_once_then_safetensors_only(tmp_path, monkeypatch):
    folder, cache = write_folder(tmp_path / "tsr"), tmp_path / "cache"
    first = triposr.load(LoadOptions(cache_dir=str(cache)), str(folder)).network
    assert checkpoint.converted_path(folder / "model.ckpt", cache).is_file()

    def no_pickles(*args, **kwargs):
        raise AssertionError("the pickle was read again")

    monkeypatch.setattr(torch, "load", no_pickles)
    again = triposr.load(LoadOptions(cache_dir=str(cache)), str(folder)).network
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    converted = write_folder(tmp_path / "converted", safetensors=True)  # a folder of safetensors: no pickle at all
    triposr.load(LoadOptions(cache_dir=str(cache)), str(converted))


def test_checkpoints_that_do_not_fit_are_refused_naming_the_keys(tmp_path):
    folder = write_folder(tmp_path / "tsr")
    state = torch.load(folder / "model.ckpt", weights_only=True)
    options = LoadOptions(cache_dir=None)

    def load_with(changed: dict) -> str:
        torch.save(changed, folder / "model.ckpt")
        with pytest.raises(ModelUnavailable) as error:
            triposr.load(options, str(folder))
        return str(error.value)

    assert "missing (decoder.layers.0.bias)" in load_with({k: v for k, v in state.items() if k != "decoder.layers.0.bias"})
    assert "unexpected keys (extra.weight)" in load_with({**state, "extra.weight": torch.zeros(1)})
    assert "wrong shapes" in load_with({**state, "decoder.layers.0.weight": torch.zeros(3, 3)})
    assert "flat dict of named tensors" in load_with({"state_dict": state})


class Payload:
    def __reduce__(self):
        return (print, ("a pickle ran code",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    folder = write_folder(tmp_path / "tsr")
    (folder / "model.ckpt").write_bytes(pickle.dumps({"tokenizer.embeddings": Payload()}))
    with pytest.raises(ModelUnavailable, match="never runs code"):
        triposr.load(LoadOptions(), str(folder))
    assert "a pickle ran code" not in capsys.readouterr().out


def test_configurations_of_other_models_are_refused():
    text, vit = published_yaml(TINY), vit_json(TINY)
    assert parse_config(text, vit) == TINY
    with pytest.raises(ModelUnavailable, match="not TripoSR's"):
        parse_config(text.replace("tsr.models.network_utils.NeRFMLP", "os.system"), vit)
    with pytest.raises(ModelUnavailable, match="inconsistent"):
        parse_config(text.replace("in_channels: 24", "in_channels: 25"), vit)
    with pytest.raises(ModelUnavailable, match="follows the published 'exp' only"):
        parse_config(text.replace("density_activation: exp", "density_activation: softplus"), vit)
    with pytest.raises(ModelUnavailable, match="not a number"):
        parse_config(text.replace("plane_size: 8", "plane_size: eight"), vit)


def test_a_missing_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match='hf download stabilityai/TripoSR --include "config.yaml" --include "model.ckpt"'):
        triposr.load(LoadOptions(cache_dir=str(tmp_path)), "stabilityai/TripoSR")
    assert not triposr.is_available_offline(str(tmp_path))  # an empty folder
    with pytest.raises(ModelUnavailable, match="lacks config.yaml, model.safetensors or model.ckpt"):
        triposr.load(LoadOptions(), str(tmp_path))


def sphere_field(radius: float, colour, plane_size: int = 128) -> TriplaneField:
    decoder = TripoSR(TINY).decoder
    set_sphere_decoder(decoder, TINY, radius, colour)
    return TriplaneField(squared_coordinate_planes(TINY, plane_size), decoder, TINY)


def test_a_hand_set_sphere_comes_out_within_a_voxel_with_its_colour():
    """The decoding half alone: triplanes holding squared coordinates and an MLP that turns them
    into |p|², so the surface is a sphere of known radius and the colour is known."""
    radius, colour = 0.45, (0.8, 0.3, 0.1)
    field = sphere_field(radius, colour)
    resolution = 64
    voxel = 2 * TINY.radius / (resolution - 1)
    vertices, faces = surface(field, resolution, TINY.threshold, no_progress)
    distance = np.linalg.norm(vertices, axis=1)
    assert np.abs(distance - radius).max() < voxel
    assert abs(distance.mean() - radius) < 0.1 * voxel
    part, texture, _ = textured_part(field, vertices, faces, 256)
    used = texture.reshape(-1, 3)[(texture.reshape(-1, 3) != 0).any(1)]
    assert np.abs(used.astype(float) - np.array(colour) * 255).max() <= 1.0
    # The fast grid gives the same densities as querying the same points one by one.
    line = torch.linspace(-TINY.radius, TINY.radius, 16)
    points = torch.stack(torch.meshgrid(line, line, line, indexing="ij"), -1).view(-1, 3)
    assert torch.allclose(field.density_grid(16).reshape(-1), field.density(points), rtol=1e-4)


def test_the_axes_follow_the_published_plane_layout():
    """An ellipsoid stretched along the model's own x (towards its input camera) must come out
    stretched along glTF's +Z, and its model y (the camera's right) along glTF X."""
    field = sphere_field(0.3, (0.5, 0.5, 0.5))
    with torch.no_grad():  # scale the xy plane's x² feature down: the model's x axis gets longer
        field.planes[0, 0] *= 0.25
    vertices, _ = surface(field, 48, TINY.threshold, no_progress)
    extent = vertices.max(0) - vertices.min(0)
    assert extent[2] > 1.5 * extent[0] and abs(extent[0] - extent[1]) < 0.1


def test_an_empty_reconstruction_fails_with_what_to_try():
    field = sphere_field(0.3, (0.5, 0.5, 0.5))
    with pytest.raises(GenerationFailed, match="lower threshold"):
        surface(field, 32, 1e6, no_progress)


def disc_png(size=128, fill=(200, 30, 30), background=(255, 255, 255)) -> bytes:
    image = Image.new("RGB", (size, size), background)
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=fill)
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def test_the_image_reaches_the_network():
    torch.manual_seed(0)
    model = TripoSR(TINY).eval()
    red = triposr.prepare_input(disc_png(), TINY.image_size, 0.85)[0]
    blue = triposr.prepare_input(disc_png(fill=(20, 40, 220)), TINY.image_size, 0.85)[0]
    with torch.no_grad():
        assert not torch.allclose(model(red[None]), model(blue[None]), atol=1e-4)


def test_a_run_gives_a_textured_mesh_and_a_side_by_side_preview(tmp_path):
    model = triposr.load(LoadOptions(), str(write_folder(tmp_path / "tsr", sphere=True)))
    seen = []

    def callback(phase, step, total, preview=None, **_):
        seen.append((phase, step, total, None if preview is None else preview.shape))

    result = triposr.run(model, {"grid_size": 48, "texture_size": 256, "target_faces": 500},
                         {"image": disc_png()}, callback)
    part = result.parts[0]
    assert part.uv is not None and result.texture.shape == (256, 256, 3)
    assert len(part.faces) <= 550 and result.metadata["cut_out"] == "plain background"
    import trimesh

    welded = trimesh.Trimesh(part.vertices, part.faces)  # merges the copies the unwrap split at seams
    assert welded.is_watertight and welded.volume > 0  # closed, facing out
    assert ("network", 1, 1, None) in seen and ("surface", 100, 100, None) in seen
    assert seen[-1] == ("texture", 2, 2, (256, 512, 3))  # the input beside the result from its camera
    assert np.linalg.norm(part.vertices, axis=1).max() < tiny_triposr.TINY.radius * 1.8


def test_auto_precision_runs_the_network_in_bfloat16_on_a_capable_cpu_and_full_keeps_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(triposr, "native_bfloat16", lambda: True)
    cpu = torch.device("cpu")
    assert triposr.network_precision(cpu, "auto") == torch.bfloat16
    assert triposr.network_precision(cpu, "full") is None and triposr.network_precision(torch.device("cuda"), "auto") is None
    model = triposr.load(LoadOptions(), str(write_folder(tmp_path / "tsr", sphere=True)))
    network, planes = model.network.forward, []
    model.network.forward = lambda *a, **k: planes.append(out := network(*a, **k)) or out
    args = {"grid_size": 48, "texture_size": 256, "target_faces": 0}
    runs = {p: triposr.run(model, {**args, "precision": p}, {"image": disc_png()}, no_progress) for p in ("auto", "full")}
    assert [x.dtype for x in planes] == [torch.bfloat16, torch.float32]
    assert [r.metadata["network_precision"] for r in runs.values()] == ["bfloat16", "float32"]
    radius = [np.linalg.norm(r.parts[0].vertices, axis=1).mean() for r in runs.values()]
    assert abs(radius[0] - radius[1]) < 0.25 * (2 * TINY.radius / 48)  # the same sphere, within a quarter voxel
    monkeypatch.setattr(triposr, "native_bfloat16", lambda: False)  # emulated bfloat16 is slower than float32
    assert triposr.network_precision(cpu, "auto") is None
    with pytest.raises(InputError, match="precision must be one of auto, full"):
        triposr.check_request({"precision": "half"}, {"image": disc_png()})


def test_triposr_is_the_default_image_model_and_lands_a_textured_mesh_through_the_service(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from backend.geometry.glb import read_glb_meshes
    from backend.hub import MODEL_SOURCES_ENV
    from backend.server import Settings, create_app
    from tests.backend.test_server import wait

    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{triposr.DEFAULT_MODEL}={write_folder(tmp_path / 'tsr', sphere=True)}")
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    spec = {"task": "image_to_3d", "params": {"grid_size": 48, "texture_size": 256}}
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        listed = {m["name"]: m for m in client.get("/models").json() if m["task"] == "image_to_3d"}
        assert listed["triposr"]["default"] and listed["triposr"]["available_offline"]
        job = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"image": ("disc.png", disc_png())}).json()
        record = wait(client, job["id"], timeout=120)
        assert record["state"] == "succeeded", record["error"]
        result = client.get(f"/jobs/{job['id']}/result").content
        parts, extras = read_glb_meshes(result)
        assert extras["diffusion3d"]["model"] == "triposr" and parts[0].uv is not None
        assert b"image/png" in result  # the baked texture travels in the GLB
        preview = Image.open(io.BytesIO(client.get(f"/jobs/{job['id']}/preview").content))
        assert preview.size == (512, 256)
        noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))
        busy = io.BytesIO()
        noise.save(busy, format="PNG")
        refused = client.post("/jobs", data={"spec": json.dumps(spec)}, files={"image": ("busy.png", busy.getvalue())})
        assert refused.status_code == 400 and "background is not plain" in refused.json()["detail"]  # before queueing


def test_the_coarse_to_fine_grid_gives_the_same_surface_as_decoding_every_point():
    field = sphere_field(0.5, (0.5, 0.5, 0.5))
    with torch.no_grad():  # a lumpier shape than a sphere: squash it along one axis
        field.planes[1, 1] *= 2.0
    exact = field.density_grid(96)
    searched = field.density_grid(96, near=TINY.threshold)
    assert torch.equal(exact > TINY.threshold, searched > TINY.threshold)  # same inside everywhere
    a = outer_surface(exact.numpy(), TINY.radius, TINY.threshold)
    b = outer_surface(searched.numpy(), TINY.radius, TINY.threshold)
    assert np.array_equal(a[1], b[1]) and np.allclose(a[0], b[0], atol=1e-6)  # the same triangles


def test_the_outer_surface_faces_outward():
    line = np.linspace(-1, 1, 24)
    x, y, z = np.meshgrid(line, line, line, indexing="ij")
    ball = 10.0 * (0.6 - np.sqrt(x ** 2 + y ** 2 + z ** 2))
    import trimesh

    vertices, faces = outer_surface(ball, 1.0, 0.0)
    assert trimesh.Trimesh(vertices, faces).volume > 0
