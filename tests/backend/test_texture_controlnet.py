"""SD 1.5 inpainting + depth ControlNet as a view generator: tiny components built from
configs, saved and loaded back through `from_pretrained`, exercise the diffusers wiring."""

import sys
from pathlib import Path

import pytest
import torch
import trimesh

from backend.hub import weights_variant
from backend.models import LoadOptions, get_entry
from backend.errors import ModelUnavailable
from backend.results import MeshPart
from backend.pipelines.texture import TexturePaintingPipeline, load_controlnet_texture_pipeline
from backend.render import frame_camera, rasterize
from backend.texture import ViewGenerator, ViewRequest
from backend.texture.controlnet_depth import ControlNetDepthViewGenerator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

torch.set_num_threads(1)
SIZE = 32


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sd15")
    return {"inpaint": tiny_sd.inpainting_pipeline(folder, 9), "plain": tiny_sd.inpainting_pipeline(folder, 4),
            "controlnet": tiny_sd.depth_controlnet(folder)}


@pytest.fixture(scope="module")
def generator(folders):
    return ControlNetDepthViewGenerator.from_pretrained(str(folders["inpaint"]), str(folders["controlnet"]))


def request(mask=1.0, seed=0, image_seed=1, disparity=None):
    """A view of a ball: `mask` is a number (everywhere) or an (H, W) tensor."""
    mesh = trimesh.creation.icosphere(subdivisions=2)
    cam = frame_camera(mesh.vertices, 0, 0, width=SIZE)
    frags = rasterize(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces), cam)
    image = torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(image_seed))
    free = mask if isinstance(mask, torch.Tensor) else torch.full((SIZE, SIZE), float(mask))
    return ViewRequest(prompt="a red ball, front view", negative_prompt="blurry", camera=cam, depth=frags.depth,
                       disparity=frags.mask.float() if disparity is None else disparity, object_mask=frags.mask,
                       image=image, mask=free, generator=torch.Generator().manual_seed(seed),
                       num_inference_steps=2, guidance_scale=5.0)


def vae_round_trip(pipe, image):
    with torch.no_grad():
        latents = pipe.vae.encode(image.permute(2, 0, 1)[None] * 2 - 1).latent_dist.mean
        return ((pipe.vae.decode(latents).sample[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1)


def test_fp16_only_weights_are_loaded_as_the_fp16_variant(folders):
    # lllyasviel's ControlNet 1.1 repos have fp32 weights only as pickles: fp16 safetensors it is.
    assert [p.name for p in folders["controlnet"].glob("*.safetensors")] == ["diffusion_pytorch_model.fp16.safetensors"]
    assert weights_variant(str(folders["controlnet"])) == "fp16"
    assert weights_variant(str(folders["inpaint"])) is None


def test_generates_from_the_seed_and_keeps_what_it_is_told_to_keep(generator):
    assert isinstance(generator, ViewGenerator) and generator.pipe.unet.config.in_channels == 9
    counted = request(mask=1.0)
    counted.on_step = lambda: steps.append(1)  # the job's cancel check, after every step
    steps = []
    out = generator(counted)
    assert out.shape == (SIZE, SIZE, 3) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert len(steps) == counted.num_inference_steps
    assert torch.equal(out, generator(request(mask=1.0)))  # reproducible
    assert not torch.allclose(out, generator(request(mask=1.0, seed=1)))  # the seed matters
    kept_request = request(mask=0.0)
    kept = generator(kept_request)  # nothing free: exactly the VAE round trip of the current render
    assert torch.allclose(kept, vae_round_trip(generator.pipe, kept_request.image), atol=1e-4)
    refined = generator(request(mask=0.5))  # free for the second half of the steps only
    assert not torch.allclose(refined, kept, atol=1e-3) and not torch.allclose(refined, out, atol=1e-3)


def test_half_precision_paints_what_full_precision_paints(folders, generator):
    """fp16, the default on CUDA, checked on the CPU: every input reaches the models in their dtype."""
    half = ControlNetDepthViewGenerator.from_pretrained(str(folders["inpaint"]), str(folders["controlnet"]),
                                                       dtype=torch.float16)
    assert half.pipe.unet.dtype == half.pipe.controlnet.dtype == torch.float16
    for mask in (1.0, 0.0):  # generated, kept
        assert (half(request(mask=mask)) - generator(request(mask=mask))).abs().max() < 0.01


def test_the_depth_map_steers_the_view(folders):
    generator = ControlNetDepthViewGenerator.from_pretrained(str(folders["inpaint"]), str(folders["controlnet"]))
    net = generator.pipe.controlnet
    # A fresh ControlNet is a no-op: its zero convolutions (after the depth embedding and on
    # every residual) start at zero. Give them weights so the depth can reach the UNet.
    with torch.no_grad():
        for conv in [net.controlnet_cond_embedding.conv_out, *net.controlnet_down_blocks, net.controlnet_mid_block]:
            conv.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    near = generator(request(disparity=torch.ones(SIZE, SIZE)))
    far = generator(request(disparity=torch.zeros(SIZE, SIZE)))
    assert (near - far).abs().max() > 1e-3


def test_a_plain_sd15_base_works_by_latent_blending_alone(folders, monkeypatch):
    plain = ControlNetDepthViewGenerator.from_pretrained(str(folders["plain"]), str(folders["controlnet"]))
    assert plain.pipe.unet.config.in_channels == 4
    decoded = []  # the final latents (the VAE decoder mixes them all, so compare before it)
    decode = plain.pipe.vae.decode
    monkeypatch.setattr(plain.pipe.vae, "decode", lambda latents, **kw: decoded.append(latents) or decode(latents, **kw))
    half = torch.zeros(SIZE, SIZE)
    half[:, SIZE // 2:] = 1.0  # the right half free, the left kept
    plain(request(mask=half))
    plain(request(mask=0.0))
    columns = SIZE // 2 // plain.pipe.vae_scale_factor - 1  # the free region grows by one latent
    assert torch.allclose(decoded[0][..., :columns], decoded[1][..., :columns], atol=1e-5)
    assert not torch.allclose(decoded[0][..., columns:], decoded[1][..., columns:], atol=1e-3)


def test_paints_a_mesh_end_to_end(generator):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    out = TexturePaintingPipeline(generator)([MeshPart("s", mesh.vertices, mesh.faces)], prompt="a red ball",
                                             num_inference_steps=1, view_resolution=64, num_views=2, top_and_bottom=False)
    assert out.result.texture.shape == (1024, 1024, 3) and out.painted.any()


def test_registry_lists_it_and_missing_weights_name_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = get_entry("texture", "sd15-controlnet-depth")
    assert entry.load is load_controlnet_texture_pipeline and "control_v11f1p_sd15_depth" in entry.source
    options = LoadOptions(device="cpu", dtype=None, allow_downloads=False, cache_dir=str(tmp_path))
    with pytest.raises(ModelUnavailable, match="control_v11f1p_sd15_depth.*hf download"):
        entry.load(options)
