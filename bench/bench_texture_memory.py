"""VRAM of texturing: one 512² view through the real painting pipeline, per route, memory setting
and texture size.

Target: ≤ 8 GB. The view generators' models at their published architecture sizes with random
weights (no model hub here): SD2-depth (5-channel UNet, OpenCLIP ViT-H text encoder, VAE) and
SD 1.5 inpainting (9-channel UNet, CLIP ViT-L) with the depth ControlNet. Memory depends on the
architecture, not on the weights' values.

On CUDA, each route is saved in fp16 and loaded through its generator's own `from_pretrained`
once per setting (fp16; fp16 + attention slicing; fp16 + model CPU offload; fp32, the Full
Precision preference); for each texture size one view is painted onto a sphere (rasterizer and
bake included) and torch.cuda.max_memory_allocated / reserved and the time are printed. Without
CUDA it prints each component's parameters and fp16 size; `--device cpu` then also runs the same
loop on the CPU (peak resident memory instead of VRAM; slow: try --route sd2-depth --steps 1
--settings fp32), to check the script before a GPU is at hand.

    PYTHONPATH=. python bench/bench_texture_memory.py [--route sd2-depth|controlnet|both] [--steps 3]
        [--texture-sizes 1024,4096] [--settings all|NAME,...] [--device cuda|cpu]
"""

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_GB = 8.0
SETTINGS = {  # name: (dtype, generator options)
    "fp16": (torch.float16, {}),
    "fp16 + attention slicing": (torch.float16, {"attention_slicing": True}),
    "fp16 + model CPU offload": (torch.float16, {"cpu_offload": True}),
    "fp32": (torch.float32, {}),
}


def clip_text(hidden: int, layers: int, heads: int, activation: str, projection: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden,
                                        num_hidden_layers=layers, num_attention_heads=heads,
                                        max_position_embeddings=77, hidden_act=activation, projection_dim=projection))


def vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(sample_size=512, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                         block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4)


UNET_LAYOUT = dict(layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
                   down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",))


def unet(in_channels: int, cross_attention: int, heads, linear: bool):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=64, in_channels=in_channels, out_channels=4, cross_attention_dim=cross_attention,
                                attention_head_dim=heads, use_linear_projection=linear,
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, **UNET_LAYOUT)


def components(route: str) -> dict:
    """The route's models, full size, random weights (fp32 on the CPU)."""
    if route == "sd2-depth":
        return {"unet": unet(5, 1024, (5, 10, 20, 20), True), "text_encoder": clip_text(1024, 23, 16, "gelu", 512),
                "vae": vae()}
    from diffusers import ControlNetModel

    return {"unet": unet(9, 768, 8, False), "controlnet": ControlNetModel(
                in_channels=4, cross_attention_dim=768, attention_head_dim=8,
                conditioning_embedding_out_channels=(16, 32, 96, 256), **UNET_LAYOUT),
            "text_encoder": clip_text(768, 12, 12, "quick_gelu", 768), "vae": vae()}


def print_sizes(route: str) -> None:
    from accelerate import init_empty_weights

    with init_empty_weights():  # shapes only: nothing is allocated
        models = components(route)
    total = 0
    for name, model in models.items():
        count = sum(p.numel() for p in model.parameters())
        total += count
        print(f"  {name:13} {count / 1e6:7.1f} M parameters  {2 * count / 1e9:5.2f} GB in fp16")
    print(f"  {'all':13} {total / 1e6:7.1f} M parameters  {2 * total / 1e9:5.2f} GB of fp16 weights")


def save_route(route: str, folder: Path) -> dict:
    """Save the route in fp16 as a diffusers pipeline folder; returns from_pretrained's sources."""
    from diffusers import (DDIMScheduler, StableDiffusionControlNetInpaintPipeline,
                           StableDiffusionDepth2ImgPipeline)
    from tests.fixtures.tiny_sd import tiny_tokenizer

    torch.manual_seed(0)
    models = {name: model.half() for name, model in components(route).items()}
    shared = dict(tokenizer=tiny_tokenizer(folder), scheduler=DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1))
    if route == "sd2-depth":
        StableDiffusionDepth2ImgPipeline(depth_estimator=None, feature_extractor=None, **models, **shared) \
            .save_pretrained(folder / "base")
        return {"source": str(folder / "base")}
    controlnet = models.pop("controlnet")
    controlnet.save_pretrained(folder / "controlnet")
    StableDiffusionControlNetInpaintPipeline(controlnet=controlnet, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False, **models, **shared) \
        .save_pretrained(folder / "base")
    return {"base": str(folder / "base"), "controlnet": str(folder / "controlnet")}


def paint_views(route: str, sources: dict, dtype: torch.dtype, options: dict, steps: int, sizes: list[int],
                device: str) -> list[tuple[int, float, float, float]]:
    """Load the route once; per texture size, paint one 512² view onto a sphere.

    Returns:
        (texture size, peak allocated GB, peak reserved GB, seconds) per size; on the CPU both
        peaks are the process's peak resident memory so far.
    """
    import trimesh

    from backend.results import MeshPart
    from backend.pipelines.texture import TexturePaintingPipeline
    from backend.texture.controlnet_depth import ControlNetDepthViewGenerator
    from backend.texture.sd_depth import DepthViewGenerator

    kind = DepthViewGenerator if route == "sd2-depth" else ControlNetDepthViewGenerator
    generator = kind.from_pretrained(**sources, device=device, dtype=dtype, **options)
    sphere = trimesh.creation.icosphere(subdivisions=4)
    part = MeshPart("ball", sphere.vertices.astype("float32"), sphere.faces.astype("int64"))
    rows = []
    for size in sizes:
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        TexturePaintingPipeline(generator, device=device)(
            [part], prompt="a bronze ball", num_inference_steps=steps, num_views=1, top_and_bottom=False,
            fill_views=0, view_resolution=512, texture_size=size)
        if device == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 1e9, torch.cuda.max_memory_reserved() / 1e9
        else:
            peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,) * 2  # kB on Linux
        rows.append((size, *peak, time.perf_counter() - start))
    del generator
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=("sd2-depth", "controlnet", "both"), default="both")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--texture-sizes", default="1024,4096", help="comma-separated texture sizes")
    parser.add_argument("--settings", default="all", help=f"'all' or comma-separated names of: {', '.join(SETTINGS)}")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    args = parser.parse_args()
    routes = ("sd2-depth", "controlnet") if args.route == "both" else (args.route,)
    sizes = [int(size) for size in args.texture_sizes.split(",")]
    names = list(SETTINGS) if args.settings == "all" else [name.strip() for name in args.settings.split(",")]
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {list(SETTINGS)}")
    for route in routes:
        print(f"{route}:")
        print_sizes(route)
        if args.device == "cuda" and not torch.cuda.is_available():
            print("  (no CUDA here: VRAM not measured; --device cpu runs the same loop on the CPU)")
            continue
        with tempfile.TemporaryDirectory() as folder:
            sources = save_route(route, Path(folder))
            for name in names:
                dtype, options = SETTINGS[name]
                for size, allocated, reserved, seconds in paint_views(route, sources, dtype, options, args.steps,
                                                                      sizes, args.device):
                    memory = (f"peak {allocated:5.2f} GB allocated, {reserved:5.2f} GB reserved; target ≤ {TARGET_GB:g} "
                              f"GB: {'met' if reserved <= TARGET_GB else 'NOT met'}" if args.device == "cuda" else
                              f"process peak resident memory so far {reserved:5.2f} GB (a dry run: not VRAM)")
                    print(f"  {name:26} {size}² texture: {memory}; {args.steps} steps in {seconds:6.2f} s")


if __name__ == "__main__":
    main()
