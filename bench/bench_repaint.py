"""Repaint of a 2% region of a 100,000-triangle mesh in a 2048 x 2048 texture, beside a full
Texture Selected of the same mesh, both through the real pipeline.

Target: the repaint takes <= 40% of the full texture's time. The view generator is instant
(it returns the view as the request shows it, tinted), so the figures are the pipeline's own
work — UV rasterizing, views, visibility, baking, merging; with Stable Diffusion each view
adds its denoising time on top, and the view counts printed say how many each run paints.

    PYTHONPATH=. python bench/bench_repaint.py [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from backend.pipelines.texture import TexturePaintingPipeline
from backend.results import MeshPart
from bench_texture_bake import machine_speed, parametric_torus

SIZE = 2048
REGION = 0.02  # fraction of the triangles selected


class TintedViews:
    """An instant view generator: the request's image, tinted where it may paint."""

    def __call__(self, request):
        tint = torch.tensor([0.8, 0.3, 0.2])
        return torch.where(request.mask[..., None] > 0, tint.expand_as(request.image), request.image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vertices, faces, uv = parametric_torus()
    part = MeshPart("torus", vertices, faces, uv=uv)
    # The selection: the triangles nearest one point of the outer rim (a patch, as an artist selects).
    centres = vertices[faces].mean(1)
    distance = np.linalg.norm(centres - np.array([1.35, 0.0, 0.0], np.float32), axis=1)
    selected = np.zeros(len(faces), bool)
    selected[np.argsort(distance)[: int(REGION * len(faces))]] = True
    texture = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    pipe = TexturePaintingPipeline(TintedViews())
    print(f"{len(faces)} triangles, {int(selected.sum())} selected ({REGION:.0%}), {SIZE}^2 texture, "
          f"{args.threads} threads; machine yardstick {machine_speed():.3f} s")
    full, repaint, views = [], [], {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = pipe([part], prompt="x", texture_size=SIZE, view_resolution=512)
        full.append(time.perf_counter() - start)
        views["full"] = out.result.metadata["texture"]["views"]
        start = time.perf_counter()
        out = pipe.repaint([part], selected, base_texture=texture, prompt="x", view_resolution=512)
        repaint.append(time.perf_counter() - start)
        meta = out.result.metadata["texture"]
        views["repaint"] = meta["views"]  # fill views included
        changed = meta["repaint"]["changed_texels"]
    print(f"full texture : {min(full):6.2f} s  ({views['full']} views)")
    print(f"repaint      : {min(repaint):6.2f} s  ({views['repaint']} views, {changed} texels changed, "
          f"{changed / SIZE**2:.1%} of the texture)")
    print(f"ratio        : {min(repaint) / min(full):.0%} of the full texture's time (target <= 40%); "
          f"views {views['repaint']}/{views['full']}")


if __name__ == "__main__":
    main()
