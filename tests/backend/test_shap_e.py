"""Shap-E text/image-to-3D: tiny components through the real loader, progress, cancel, errors."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from backend.hub import is_available_offline, resolve_model_source
from backend.pipelines import shap_e
from backend.errors import GenerationFailed, InputError, JobCancelled, ModelUnavailable
from backend.results import no_progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_shap_e  # noqa: E402

FAST = {"num_inference_steps": 2, "grid_size": 32, "seed": 0}


def options(cache_dir, allow_downloads=False, device="cpu"):
    return SimpleNamespace(device=device, dtype=None, allow_downloads=allow_downloads, cache_dir=str(cache_dir))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-shap-e")
    return SimpleNamespace(
        text=tiny_shap_e.build_text_pipeline(root / "text"),
        image=tiny_shap_e.build_image_pipeline(root / "image"),
        empty_cache=tmp_path_factory.mktemp("empty-hf-cache"),
    )


@pytest.fixture(scope="module")
def text_pipe(folders):
    return shap_e.load_text_pipeline(options(folders.empty_cache), source=str(folders.text))


@pytest.fixture(scope="module")
def image_pipe(folders):
    return shap_e.load_image_pipeline(options(folders.empty_cache), source=str(folders.image))


@pytest.fixture
def no_offline_env(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)


def png_bytes(mode="RGBA", size=24):
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


class Recorder:
    def __init__(self, cancel_at=None):
        self.calls, self.cancel_at = [], cancel_at

    def __call__(self, phase, step, total, preview=None):
        self.calls.append((phase, step, total))
        if (phase, step) == self.cancel_at:
            raise JobCancelled()


def signed_volume(part):
    corners = part.vertices[part.faces].astype(np.float64)
    return np.einsum("ij,ij->", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])) / 6.0


def check_coloured_mesh(result):
    (part,) = result.parts
    assert part.name == "mesh"
    assert part.vertices.dtype == np.float32 and part.vertices.shape[1] == 3
    assert part.faces.dtype == np.int64 and len(part.faces) > 100
    assert part.faces.min() >= 0 and part.faces.max() < len(part.vertices)
    assert np.isfinite(part.vertices).all() and np.abs(part.vertices).max() <= 1.0
    assert part.vertex_colors.shape == (len(part.vertices), 4) and part.vertex_colors.dtype == np.uint8
    assert (part.vertex_colors[:, 3] == 255).all() and len(np.unique(part.vertex_colors[:, :3], axis=0)) > 1
    assert signed_volume(part) > 0, "faces must wind counter-clockwise seen from outside (glTF)"
    return part


def diffusers_reference(pipe, latents):
    """diffusers' own decode of diffusers' own latents, moved to glTF axes the way we document."""
    raw = pipe.shap_e_renderer.decode_to_mesh(latents, "cpu", grid_size=FAST["grid_size"]).verts.numpy()
    return np.stack([raw[:, 0], raw[:, 2], -raw[:, 1]], axis=1)


def test_text_to_mesh_matches_diffusers_pipeline(text_pipe):
    progress = Recorder()
    result = shap_e.run_text(text_pipe, {"prompt": "a chair", **FAST}, {}, progress)

    part = check_coloured_mesh(result)
    assert progress.calls == [("denoise", 1, 2), ("denoise", 2, 2), ("decode", 1, 1)]
    assert result.metadata["seed"] == 0 and result.metadata["model"] == "shap-e"
    # Our loop (with progress and cancel) must sample what diffusers' __call__ samples.
    latents = text_pipe(
        "a chair", num_inference_steps=2, guidance_scale=15.0, output_type="latent",
        generator=torch.Generator("cpu").manual_seed(0),
    ).images
    np.testing.assert_allclose(part.vertices, diffusers_reference(text_pipe, latents), atol=1e-5)


def test_image_to_mesh_matches_diffusers_pipeline(image_pipe):
    progress = Recorder()
    result = shap_e.run_image(image_pipe, dict(FAST), {"image": png_bytes("RGBA")}, progress)

    part = check_coloured_mesh(result)
    assert progress.calls[-1] == ("decode", 1, 1)
    white = Image.alpha_composite(Image.new("RGBA", (24, 24), "white"), Image.open(io.BytesIO(png_bytes("RGBA"))))
    latents = image_pipe(
        white.convert("RGB"), num_inference_steps=2, guidance_scale=3.0, output_type="latent",
        generator=torch.Generator("cpu").manual_seed(0),
    ).images
    np.testing.assert_allclose(part.vertices, diffusers_reference(image_pipe, latents), atol=1e-5)


def test_seed_changes_the_result(text_pipe):
    a = shap_e.run_text(text_pipe, {"prompt": "a chair", **FAST}, {}, no_progress).parts[0]
    b = shap_e.run_text(text_pipe, {"prompt": "a chair", **FAST, "seed": 1}, {}, no_progress).parts[0]
    again = shap_e.run_text(text_pipe, {"prompt": "a chair", **FAST}, {}, no_progress).parts[0]
    np.testing.assert_array_equal(a.vertices, again.vertices)
    assert a.vertices.shape != b.vertices.shape or not np.allclose(a.vertices, b.vertices)


def test_random_seed_is_recorded(text_pipe):
    result = shap_e.run_text(text_pipe, {"prompt": "a table", **FAST, "seed": None}, {}, no_progress)
    assert isinstance(result.metadata["seed"], int)


def test_cancel_stops_after_the_first_step(text_pipe):
    evaluations = []
    hook = text_pipe.prior.register_forward_hook(lambda *args: evaluations.append(1))
    progress = Recorder(cancel_at=("denoise", 1))
    try:
        with pytest.raises(JobCancelled):
            shap_e.run_text(text_pipe, {"prompt": "a chair", **FAST, "num_inference_steps": 4}, {}, progress)
    finally:
        hook.remove()
    assert progress.calls == [("denoise", 1, 4)]
    assert len(evaluations) == 2  # Heun's first step is two prior evaluations; 4 steps would be 7


def test_empty_surface_is_generation_failed(folders):
    pipe = shap_e.load_text_pipeline(options(folders.empty_cache), source=str(folders.text))
    with torch.no_grad():
        pipe.shap_e_renderer.mlp.mlp[-1].bias[0] = -100.0  # the SDF is "outside" everywhere
    with pytest.raises(GenerationFailed, match="no surface"):
        shap_e.run_text(pipe, {"prompt": "a chair", **FAST}, {}, no_progress)


@pytest.mark.parametrize(
    "verts, message",
    [
        (np.full((3, 3), np.nan), "NaN"),
        (np.zeros((3, 3)), "zero area"),
    ],
)
def test_degenerate_mesh_is_generation_failed(verts, message):
    mesh = SimpleNamespace(verts=torch.tensor(verts), faces=torch.tensor([[0, 1, 2]]), vertex_channels=None)
    with pytest.raises(GenerationFailed, match=message):
        shap_e.mesh_part(mesh)
    empty = SimpleNamespace(verts=torch.zeros(0, 3), faces=torch.zeros(0, 3, dtype=torch.long), vertex_channels=None)
    with pytest.raises(GenerationFailed, match="no triangles"):
        shap_e.mesh_part(empty)


def test_mesh_part_axes_winding_and_colours():
    # A tetrahedron wound inward, Z-up, with one red vertex.
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    inward = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    red = torch.tensor([1.0, 0.0, 0.0, 0.0])
    channels = {"R": red, "G": torch.zeros(4), "B": torch.zeros(4)}
    mesh = SimpleNamespace(verts=verts, faces=inward, vertex_channels=channels)
    part = shap_e.mesh_part(mesh)

    np.testing.assert_array_equal(part.vertices[3], [0.0, 1.0, 0.0])  # Shap-E's +z is glTF's +y
    np.testing.assert_array_equal(part.vertices[2], [0.0, 0.0, -1.0])  # Shap-E's +y is glTF's -z
    assert signed_volume(part) > 0
    assert part.vertex_colors[0].tolist() == [255, 0, 0, 255] and part.vertex_colors[1].tolist() == [0, 0, 0, 255]


@pytest.mark.parametrize("data", [b"", b"not an image", png_bytes("RGB")[:40]])
def test_bad_image_is_input_error(image_pipe, data):
    with pytest.raises(InputError, match="image"):
        shap_e.run_image(image_pipe, dict(FAST), {"image": data}, no_progress)
    with pytest.raises(InputError, match="needs an image"):
        shap_e.run_image(image_pipe, dict(FAST), {}, no_progress)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"prompt": "  "}, "needs a prompt"),
        ({"prompt": "a chair", "negative_prompt": "x"}, "does not take negative_prompt"),
        ({"prompt": "a chair", "num_inference_steps": 0}, "num_inference_steps"),
        ({"prompt": "a chair", "grid_size": 4096}, "grid_size"),
        ({"prompt": "a chair", "guidance_scale": "high"}, "guidance_scale"),
        ({"prompt": "a chair", "seed": -1}, "seed"),
    ],
)
def test_bad_params_are_input_errors(text_pipe, params, message):
    with pytest.raises(InputError, match=message):
        shap_e.run_text(text_pipe, params, {}, no_progress)


def test_missing_model_with_downloads_off_names_model_and_fix(folders, no_offline_env):
    with pytest.raises(ModelUnavailable) as error:
        shap_e.load_text_pipeline(options(folders.empty_cache), source="openai/shap-e")
    text = str(error.value)
    assert "openai/shap-e is not downloaded" in text and "'Allow Model Downloads' preference or Blender's online access is off" in text
    assert "Allow Model Downloads" in text and "hf download openai/shap-e" in text and "local folder" in text
    assert not shap_e.is_available_offline("openai/shap-e", cache_dir=str(folders.empty_cache))


def test_hf_hub_offline_wins_over_allow_downloads(folders, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="HF_HUB_OFFLINE is set"):
        resolve_model_source("openai/shap-e-img2img", allow_downloads=True, cache_dir=str(folders.empty_cache))


def test_failed_download_is_model_unavailable(folders, no_offline_env, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(ModelUnavailable, match="Could not download model openai/shap-e"):
        resolve_model_source("openai/shap-e", allow_downloads=True, cache_dir=str(folders.empty_cache))


def test_model_found_in_hf_cache_loads_offline(folders, tmp_path, monkeypatch):
    # The cache layout huggingface_hub writes: refs/main names the snapshot folder.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "models--openai--shap-e"
    shutil.copytree(folders.text, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)

    assert is_available_offline("openai/shap-e", cache_dir=str(tmp_path))
    pipe = shap_e.load_text_pipeline(options(tmp_path), source="openai/shap-e")
    assert len(shap_e.run_text(pipe, {"prompt": "a chair", **FAST}, {}, no_progress).parts[0].faces) > 100


def test_local_folders_missing_or_without_safetensors(folders, tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model_source(str(tmp_path / "nowhere" / "shap-e"))
    broken = tmp_path / "broken"
    shutil.copytree(folders.text, broken)
    for weights in (broken / "prior").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelUnavailable, match="no safetensors weights in prior"):
        resolve_model_source(str(broken))
    assert not is_available_offline(str(broken))
    assert is_available_offline(str(folders.text)) and resolve_model_source(str(folders.text)) == str(folders.text)


def test_wrong_pipeline_folder_is_model_unavailable(folders):
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        shap_e.load_image_pipeline(options(folders.empty_cache), source=str(folders.text))


@pytest.mark.real_weights
@pytest.mark.parametrize("kind", ["text", "image"])
def test_real_shap_e_from_local_cache(kind):
    model_id = shap_e.TEXT_MODEL_ID if kind == "text" else shap_e.IMAGE_MODEL_ID
    if not is_available_offline(model_id):
        pytest.skip(f"{model_id} is not in the local Hugging Face cache")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    opts = SimpleNamespace(device=device, dtype=None, allow_downloads=False, cache_dir=None)
    params = {"seed": 0, "num_inference_steps": 32 if device == "cuda" else 8, "grid_size": 128}
    if kind == "text":
        pipe = shap_e.load_text_pipeline(opts)
        result = shap_e.run_text(pipe, {"prompt": "a red chair", **params}, {}, no_progress)
    else:
        image = Image.new("RGB", (256, 256), "white")
        image.paste((200, 30, 30), (64, 64, 192, 192))  # a red square: a box-like object
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pipe = shap_e.load_image_pipeline(opts)
        result = shap_e.run_image(pipe, params, {"image": buffer.getvalue()}, no_progress)
    part = check_coloured_mesh(result)
    assert len(part.faces) > 1000
