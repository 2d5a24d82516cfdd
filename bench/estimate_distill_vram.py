"""Estimated GPU memory of one `dreamfusion-sd` or `magic3d-sd` step (fp16 prior), without a GPU.

The way bench/estimate_texture_vram.py estimates texturing: Stable Diffusion 2.1-base's
components are built at full size as fake tensors (shapes, no memory) and every tensor their
passes allocate is tracked (`MemTracker`), attention counted as CUDA's fused kernels run it.
The engine's own part, the field's render, backward and Adam state, runs for real on the CPU
(fp32, as on the GPU: only the prior is fp16), its memory the rise of the process's peak.

One step holds, at its peak: the prior's weights, the render's graph, the VAE encoder's graph
at 512² (SDS backpropagates through it), and the UNet's activations for the batch of two
(classifier-free guidance). They are summed: an upper bound, as the UNet's activations are
freed before the backward needs its buffers. Not counted: CUDA's context (about 0.5 GB).

For `magic3d-sd` the engine's part is its costlier stage, the mesh stage: a 81,920-triangle
mesh (about what marching cubes gives at 128³) rasterized at 512², its texture field and shape
parameters with their gradients and Adam state.

    PYTHONPATH=. python bench/estimate_distill_vram.py [--model dreamfusion-sd|magic3d-sd] [--resolution N]
"""

import argparse
import sys
from pathlib import Path

import diffusers
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from bench_texture_memory import clip_text, unet, vae  # noqa: E402
from estimate_texture_vram import fused_attention  # noqa: E402

GB = 1e9
TARGET_GB = 8.0
IMAGE = 512  # SD 2.1-base's size: renders are resized to it before the VAE


def tracked_peak(run) -> int:
    """Peak bytes of everything but parameters and buffers that `run()` allocates."""
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    with tracker:
        run()
    peak = tracker.get_tracker_snapshot("peak")
    return sum(sum(kinds.values()) - kinds["Total"] - sum(
        count for kind, count in kinds.items() if str(kind).endswith(("PARAM", "BUFFER"))) for kinds in peak.values())


def prior_memory(dtype: torch.dtype) -> tuple[int, int, int]:
    """(weights, VAE encode forward + backward, UNet forward at batch 2) in bytes."""
    from accelerate import init_empty_weights
    from torch._subclasses.fake_tensor import FakeTensorMode

    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    with init_empty_weights(include_buffers=True):  # shapes only
        shells = {"unet": unet(4, 1024, (5, 10, 20, 20), True), "vae": vae(),
                  "text_encoder": clip_text(1024, 23, 16, "gelu", 512)}
        shells = {name: model.to(dtype).eval() for name, model in shells.items()}
    with fake_mode:
        models = {name: model.to_empty(device="cpu") for name, model in shells.items()}
    weights = sum(p.numel() * p.element_size() for m in models.values() for p in m.parameters())
    with fake_mode, fused_attention():
        def encode_and_backward():
            renders = torch.zeros(1, 3, IMAGE, IMAGE, dtype=dtype, requires_grad=True)
            # The tracker's hooks need a plain backward, which also makes the VAE's weight gradients
            # (frozen in the product): counted, they overstate by the encoder's size, 68 MB.
            models["vae"].encode(renders).latent_dist.mean.sum().backward()

        def unet_forward():
            with torch.no_grad():
                models["unet"](torch.zeros(2, 4, IMAGE // 8, IMAGE // 8, dtype=dtype), torch.zeros(2, dtype=torch.long),
                               encoder_hidden_states=torch.zeros(2, 77, 1024, dtype=dtype))

        return weights, tracked_peak(encode_and_backward), tracked_peak(unet_forward)


def engine_memory(resolution: int) -> int:
    """Rise of this process's peak resident memory over a few real engine steps (render, backward,
    Adam) on the CPU: an upper bound of the engine's own tensors (the allocator's slack included).
    Measured before anything else runs, so the rise is the engine's."""
    import resource

    from backend.distill.cameras import CameraConfig
    from backend.distill.field import RadianceField
    from backend.distill.guidance.base import GuidanceOutput
    from backend.distill.trainer import DistillConfig, distill
    from backend.distill.volume import RenderConfig

    def free_guidance(renders, views, prompt, step, negative_prompt=None):  # allocates nothing of its own
        return GuidanceOutput(renders.mean(), torch.zeros(1, dtype=torch.long))

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    config = DistillConfig(steps=3, cameras=CameraConfig(resolution=resolution), preview_every_s=1e9,
                           rendering=RenderConfig(occupancy_threshold=-1.0))  # every sample evaluated: the worst case
    distill(RadianceField(), free_guidance, "x", config)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def mesh_stage_memory(resolution: int) -> int:
    """As `engine_memory`, for a few real steps of Magic3D's mesh stage."""
    import resource

    import trimesh

    from backend.distill.cameras import CameraConfig
    from backend.distill.field import RadianceField
    from backend.distill.guidance.base import GuidanceOutput
    from backend.distill.mesh_stage import MeshStageConfig, TexturedMesh, refine_mesh

    def free_guidance(renders, views, prompt, step, negative_prompt=None):
        return GuidanceOutput(renders.mean(), torch.zeros(1, dtype=torch.long))

    ball = trimesh.creation.icosphere(subdivisions=6, radius=0.7)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    mesh = TexturedMesh(ball.vertices.astype("float32"), ball.faces, RadianceField())
    config = MeshStageConfig(steps=3, cameras=CameraConfig(resolution=resolution), preview_every_s=1e9, lit_fraction=1.0)
    refine_mesh(mesh, free_guidance, "x", config)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("dreamfusion-sd", "magic3d-sd"), default="dreamfusion-sd")
    parser.add_argument("--resolution", type=int, help="render size (default 64, the mesh stage's 512)")
    args = parser.parse_args()
    diffusers.logging.set_verbosity_error()
    fine = args.model == "magic3d-sd"
    args.resolution = args.resolution or (512 if fine else 64)
    engine = mesh_stage_memory(args.resolution) if fine else engine_memory(args.resolution)
    weights, vae_pass, unet_pass = prior_memory(torch.float16)
    total = weights + vae_pass + unet_pass + engine
    print(f"prior weights (fp16): {weights / GB:.2f} GB")
    print(f"VAE encode + backward at {IMAGE}²: {vae_pass / GB:.2f} GB")
    print(f"UNet forward, batch 2: {unet_pass / GB:.2f} GB")
    what = "mesh, texture field" if fine else "field"
    print(f"engine at {args.resolution}² renders ({what}, render graph, grads, Adam): {engine / GB:.2f} GB")
    print(f"{args.model} step: about {total / GB:.2f} GB allocated; target <= {TARGET_GB:g} GB: "
          f"{'met' if total <= TARGET_GB * GB else 'NOT met'}")


if __name__ == "__main__":
    main()
