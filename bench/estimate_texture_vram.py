"""Estimated VRAM of texturing on CUDA, per route, memory setting and texture size, without a GPU.

`bench_texture_memory.py` measures this on CUDA. Where no GPU is at hand, this script counts
what one 512² view would hold, from two sources:

- **The models**: each component is built at its published size as fake tensors (shapes and
  dtypes, no values, no memory), and every tensor its forward pass allocates is tracked
  (`torch.distributed._tools.mem_tracker.MemTracker`). Attention is counted the way CUDA
  runs it: PyTorch's fused scaled-dot-product kernels never hold the score matrix, so only
  their output is counted; with attention slicing, diffusers' sliced processor does hold one
  slice of scores, and is tracked as it runs.
- **The texture**: the real painting pipeline runs here on the CPU with the weightless
  direction-colour generator, and every torch tensor it allocates is tracked: its peak, and
  what it holds while a view is being generated.

Estimate = the largest, over the forward passes and the bake, of the weights on the GPU
meanwhile + that pass's activations + what the texture holds meanwhile (its peak, for the
bake). With model CPU offload, diffusers moves each model to the GPU when it runs and the one
before it in its chain (text encoder -> UNet -> VAE) off; the ControlNet, outside the chain,
stays once used. Per view the VAE encodes first, then the text encoder runs, so only the VAE
and the ControlNet stay beside the running model, and beside the bake after the decode.

Not counted: CUDA's own context (about 0.5 GB, outside PyTorch's allocator) and the
allocator's rounding (reserved minus allocated: 0.1–0.4 GB on the H100). So compare the
figures with torch.cuda.max_memory_allocated: for SD2-depth at 1024², measured on an H100,
fp16 3.1 GB and fp16 + offload 2.0 GB; this estimate gives 3.03 and 2.08 GB.

    PYTHONPATH=. python bench/estimate_texture_vram.py [--route sd2-depth|controlnet|both]
        [--texture-sizes 1024,4096]
"""

import argparse
import contextlib
import sys
from pathlib import Path

import diffusers
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_texture_memory import SETTINGS, TARGET_GB, components  # noqa: E402

GB = 1e9
VIEW = 512  # pixels; latents are VIEW // 8
BATCH = 2  # classifier-free guidance runs the prompt and the negative prompt together


@contextlib.contextmanager
def fused_attention():
    """Count scaled-dot-product attention as CUDA's fused kernels run it: only the output."""
    real = F.scaled_dot_product_attention

    def output_only(query, key, value, *args, **kwargs):
        return query.new_empty(*query.shape[:-1], value.shape[-1])

    F.scaled_dot_product_attention = output_only
    try:
        yield
    finally:
        F.scaled_dot_product_attention = real


def fake_components(route: str, dtype: torch.dtype, fake_mode) -> dict:
    """The route's models at full size as fake tensors of `dtype`."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=True):  # shapes only
        shells = {name: model.to(dtype).eval() for name, model in components(route).items()}
    with fake_mode:
        return {name: model.to_empty(device="cpu") for name, model in shells.items()}


def forward_passes(route: str, models: dict, dtype: torch.dtype) -> dict:
    """Per component, a function running its forward pass for one denoising step of one view."""
    latent = VIEW // 8

    def tensor(*shape, kind=dtype):
        return torch.zeros(*shape, dtype=kind)

    width = models["text_encoder"].config.hidden_size
    prompt = lambda: tensor(BATCH, 77, width)  # noqa: E731  (the text encoder's output, carried)
    step = lambda: tensor(BATCH, kind=torch.long)  # noqa: E731
    passes = {
        "text_encoder": lambda: models["text_encoder"](tensor(BATCH, 77, kind=torch.long)),
        "vae encode": lambda: models["vae"].encode(tensor(1, 3, VIEW, VIEW)),
        "vae decode": lambda: models["vae"].decode(tensor(1, 4, latent, latent)),
    }
    if route == "sd2-depth":
        passes["unet"] = lambda: models["unet"](tensor(BATCH, 5, latent, latent), step(), encoder_hidden_states=prompt())
    else:
        def controlnet_and_unet():
            down, middle = models["controlnet"](
                tensor(BATCH, 4, latent, latent), step(), encoder_hidden_states=prompt(),
                controlnet_cond=tensor(BATCH, 3, VIEW, VIEW), return_dict=False)
            return models["unet"](tensor(BATCH, 9, latent, latent), step(), encoder_hidden_states=prompt(),
                                  down_block_additional_residuals=down, mid_block_additional_residual=middle)
        passes["unet"] = controlnet_and_unet
    return passes


def model_memory(route: str, dtype: torch.dtype, slicing: bool) -> tuple[dict, dict]:
    """Bytes of weights per component, and peak bytes of activations of each forward pass."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    models = fake_components(route, dtype, fake_mode)
    weights = {name: sum(p.numel() * p.element_size() for p in model.parameters()) for name, model in models.items()}
    if slicing:  # what DiffusionPipeline.enable_attention_slicing() does
        for model in models.values():
            if hasattr(model, "set_attention_slice"):
                model.set_attention_slice("auto")
    activations = {}
    with fake_mode, torch.no_grad(), fused_attention():
        for name, run in forward_passes(route, models, dtype).items():
            tracker = MemTracker()
            tracker.track_external(*models.values())
            with tracker:
                output = run()
            peak = tracker.get_tracker_snapshot("peak")
            activations[name] = sum(sum(kinds.values()) - kinds["Total"] - sum(
                count for kind, count in kinds.items() if str(kind).endswith(("PARAM", "BUFFER")))
                for kinds in peak.values())
            del output
    return weights, activations


def texture_memory(size: int) -> tuple[int, int]:
    """Peak bytes of the painting pipeline's own tensors, and the most it holds during a view's generation."""
    import trimesh
    from torch.distributed._tools.mem_tracker import MemTracker

    from backend.results import MeshPart
    from backend.pipelines.texture import TexturePaintingPipeline
    from backend.texture.direction_views import DirectionColourGenerator

    tracker = MemTracker()
    held = []
    painter = DirectionColourGenerator()

    def generator(request):
        held.append(tracker.get_tracker_snapshot("current"))
        return painter(request)

    sphere = trimesh.creation.icosphere(subdivisions=4)
    part = MeshPart("ball", sphere.vertices.astype("float32"), sphere.faces.astype("int64"))
    with tracker:
        TexturePaintingPipeline(generator, device="cpu")(
            [part], prompt="a bronze ball", view_resolution=VIEW, texture_size=size)
    total = lambda snapshot: sum(kinds["Total"] for kinds in snapshot.values())  # noqa: E731
    return total(tracker.get_tracker_snapshot("peak")), max(map(total, held))


def on_gpu(component: str, offload: bool, weights: dict) -> int:
    """Bytes of weights on the GPU while `component` runs ("bake": the bake after the decode)."""
    if not offload:
        return sum(weights.values())
    running = {"vae encode": "vae", "vae decode": "vae", "bake": "vae"}.get(component, component)
    return sum(size for name, size in weights.items() if name in (running, "vae", "controlnet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", choices=("sd2-depth", "controlnet", "both"), default="both")
    parser.add_argument("--texture-sizes", default="1024,4096", help="comma-separated texture sizes")
    args = parser.parse_args()
    diffusers.logging.set_verbosity_error()  # casting the fake models warns about fp32 modules it has none of
    sizes = [int(size) for size in args.texture_sizes.split(",")]
    textures = {size: texture_memory(size) for size in sizes}
    for size, (peak, held) in textures.items():
        print(f"texture {size}²: peak {peak / GB:.2f} GB, held while a view is generated {held / GB:.2f} GB")
    routes = ("sd2-depth", "controlnet") if args.route == "both" else (args.route,)
    for route in routes:
        print(f"{route}:")
        traced = {}  # fp16 with and without offload run the same passes: traced once
        for name, (dtype, options) in SETTINGS.items():
            offload, slicing = options.get("cpu_offload", False), options.get("attention_slicing", False)
            if (dtype, slicing) not in traced:
                traced[dtype, slicing] = model_memory(route, dtype, slicing)
            weights, activations = traced[dtype, slicing]
            passes = ", ".join(f"{component} {size / GB:.2f}" for component, size in activations.items())
            print(f"  {name}: weights {sum(weights.values()) / GB:.2f} GB; activations {passes} GB")
            for size, (peak, held) in textures.items():
                needs = {component: on_gpu(component, offload, weights) + activation + held
                         for component, activation in activations.items()}
                needs["bake"] = on_gpu("bake", offload, weights) + peak
                largest = max(needs, key=needs.get)
                print(f"    {size}² texture: about {needs[largest] / GB:.2f} GB allocated, during {largest}; "
                      f"target ≤ {TARGET_GB:g} GB: {'met' if needs[largest] <= TARGET_GB * GB else 'NOT met'}")


if __name__ == "__main__":
    main()
