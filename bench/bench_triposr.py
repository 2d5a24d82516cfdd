"""TripoSR at full size with random weights: image -> textured mesh, each stage timed, peak memory.

Targets (issue: image to 3D in seconds): image -> textured mesh <= 30 s at a 256³ grid on 2 CPU
cores, peak memory <= 6 GB; on CUDA the network <= 1 s and <= 6 GB of VRAM.

Random weights give a random density, so the surface stages run on a field of known shape: the
network's own triplanes with their first features replaced by squared coordinates and the
decoder set to read a sphere from them (tests/fixtures/tiny_triposr.py). The network pass and
the density grid cost the same whatever the weights; the marching cubes and the bake depend on
the surface's size, and a sphere filling most of the cube is a large object.

Beside our grid evaluation, the baselines: decoding every grid point (our plane-by-plane
evaluation, no surface search), and the published way (every point sampled from the three
planes and run through the whole MLP), on the same field.

    PYTHONPATH=. python bench/bench_triposr.py [--threads 2] [--grid 256] [--texture 1024] [--faces 50000]
                                               [--busy] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fixtures"))
from tiny_triposr import set_sphere_decoder, squared_coordinate_planes  # noqa: E402

from backend.errors import InputError  # noqa: E402
from backend.geometry.isosurface import outer_surface  # noqa: E402
from backend.pipelines.triposr import BACKGROUND, PARAMS, network_precision, prepare_input  # noqa: E402
from backend.reconstruct.config import TripoSRConfig  # noqa: E402
from backend.reconstruct.network import TripoSR  # noqa: E402
from backend.reconstruct.to_mesh import render_from_input, simplify, textured_part  # noqa: E402
from backend.reconstruct.triplane import TriplaneField  # noqa: E402


def photo_png(size: int = 1024) -> bytes:
    image = Image.new("RGB", (size, size), (245, 245, 245))
    ImageDraw.Draw(image).ellipse((size // 5, size // 4, 4 * size // 5, 4 * size // 5), fill=(180, 60, 40))
    data = io.BytesIO()
    image.save(data, format="PNG")
    return data.getvalue()


def timed(label: str, function, device: torch.device, times: dict):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times[label] = time.perf_counter() - start
    print(f"  {label:<34} {times[label]:7.2f} s", flush=True)
    return value


def per_point_density(field: TriplaneField, resolution: int, chunk: int = 262144) -> torch.Tensor:
    """The baseline: every grid point through grid_sample and the whole decoder."""
    line = torch.linspace(-field.radius, field.radius, resolution, device=field.planes.device)
    out = torch.empty(resolution ** 3, device=field.planes.device)
    for start in range(0, resolution ** 3, chunk):
        index = torch.arange(start, min(start + chunk, resolution ** 3), device=field.planes.device)
        points = torch.stack([line[index // resolution ** 2], line[(index // resolution) % resolution],
                              line[index % resolution]], -1)
        out[start:start + len(index)] = field.density(points)
    return out.view(resolution, resolution, resolution)


def run_autocast(model: TripoSR, image: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with torch.autocast("cpu", dtype=dtype):
        return model(image[None].to(device))[0].float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grid", type=int, default=256)
    parser.add_argument("--texture", type=int, default=1024)
    parser.add_argument("--faces", type=int, default=PARAMS["target_faces"], help="0 keeps every triangle")
    parser.add_argument("--baseline-grid", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--busy", action="store_true",
                        help="also time Segment Anything (ViT-B, random weights) cutting a 1024x768 busy photo")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = TripoSRConfig()
    print(f"TripoSR, published size, random weights; {args.threads} threads on {device}; grid {args.grid}³, "
          f"texture {args.texture}²")

    start = time.perf_counter()
    torch.manual_seed(0)
    model = TripoSR(config).to(device).eval()
    print(f"  (building the random network: {time.perf_counter() - start:.1f} s, not counted)")
    times: dict[str, float] = {}
    with torch.no_grad():
        image, _ = timed("prepare input (cut-out, 1024² photo)", lambda: prepare_input(photo_png(), config.image_size,
                                                                                    0.85), device, times)
        dtype = network_precision(device, "auto")
        with torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext():
            planes = timed(f"network ({str(dtype or torch.float32)[6:]}, precision auto)",
                           lambda: model(image[None].to(device))[0].float(), device, times)
        if device.type == "cuda":
            print(f"  peak VRAM after the network: {torch.cuda.max_memory_allocated() / 2**30:.2f} GB")
        planes = planes.clone()
        planes[:, :2] = squared_coordinate_planes(config, planes.shape[-1]).to(planes)[:, :2]
        set_sphere_decoder(model.decoder, config, 0.6, (0.7, 0.3, 0.2))
        field = TriplaneField(planes, model.decoder, config)
        volume = timed(f"density grid {args.grid}³ (surface search)", lambda: field.density_grid(
            args.grid, near=config.threshold), device, times)
        vertices, faces = timed("outer surface (marching cubes)", lambda: outer_surface(
            volume.cpu().numpy(), config.radius, config.threshold), device, times)
        full = len(faces)
        vertices, faces = timed(f"simplify to {args.faces:,} triangles", lambda: simplify(vertices, faces, args.faces),
                                device, times)
        timed(f"unwrap + bake {args.texture}²", lambda: textured_part(field, vertices, faces, args.texture), device, times)
        timed("look from the input's camera", lambda: render_from_input(field, vertices, faces, 256, BACKGROUND),
              device, times)
        if args.busy:
            from transformers import SamConfig, SamModel

            from backend.segmentation import ObjectSegmenter

            segmenter = ObjectSegmenter(SamModel(SamConfig()), device)
            photo = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8)

            def segment():
                try:
                    segmenter(photo)
                except InputError:  # random weights may propose nothing object-like: the time is the same
                    pass
            timed("segment a busy photo (SAM ViT-B)", segment, device, times)
        total = sum(times.values())
        print(f"  {'image -> textured mesh':<34} {total:7.2f} s   (target <= 30 s on 2 CPU cores); "
              f"{full:,} triangles simplified to {len(faces):,}")
        print(f"  peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB "
              "(target <= 6 GB)")

        if dtype is not None:
            print("  side by side, the network in float32 (precision full):")
            full_planes = timed("network (float32)", lambda: model(image[None].to(device))[0], device, side := {})
            again = timed("network (bfloat16) again", lambda: run_autocast(model, image, device, dtype), device, side)
            error = float((again - full_planes).norm() / full_planes.norm())
            print(f"  bfloat16 / float32 time = {side['network (bfloat16) again'] / side['network (float32)']:.2f}; "
                  f"triplanes' relative difference {error:.4f}")
        print("  side by side, the density grid alone:")
        n, side_by_side = args.baseline_grid, {}
        timed(f"{args.grid}³, every point (ours)", lambda: field.density_grid(args.grid), device, side_by_side)
        ours = timed(f"density grid {n}³ (ours)", lambda: field.density_grid(n), device, side_by_side)
        theirs = timed(f"density grid {n}³ (per point, as published)", lambda: per_point_density(field, n), device,
                       side_by_side)
        difference = float(((ours - theirs).abs() / theirs.abs().clamp_min(1e-3)).max())
        ratio = side_by_side[f"density grid {n}³ (ours)"] / side_by_side[f"density grid {n}³ (per point, as published)"]
        print(f"  grid evaluation: ours / per point = {ratio:.2f} (largest relative difference {difference:.1e})")

if __name__ == "__main__":
    main()
