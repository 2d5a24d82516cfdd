"""Time choosing a fill view (texture/fill_views.py) by a sample of the empty texels against
testing every texel of their triangles (as before), side by side, at several texture sizes.

    PYTHONPATH=. .venv/bin/python bench/bench_fill_views.py

Two cases: a ring of four painted views leaves a torus's inner rim empty (small triangles, most
of their texels empty), and six views of a box leave slivers along its edges (12 large
triangles, each with a few empty texels: every texel of them was tested). Both ways rank the 40
candidate directions. Printed per case and size: seconds for each way, the ratio, and how many
empty texels the sampled pick sees against the best direction counted in full (1.00: as good a
pick).
"""

from __future__ import annotations

import time

import torch
import trimesh

from backend.geometry.uv import unwrap
from backend.render import frame_camera, rasterize
from backend.texture import TextureProjector, fill_views


CASES = {
    "torus": (trimesh.creation.torus(1.0, 0.4, major_sections=64, minor_sections=32),
              [(azimuth, 10.0) for azimuth in range(0, 360, 90)]),
    "box": (trimesh.creation.box(), [(azimuth, 0.0) for azimuth in range(0, 360, 90)] + [(0.0, 89.0), (0.0, -89.0)]),
}


def painted(case: str, size: int) -> tuple[TextureProjector, torch.Tensor, torch.Tensor]:
    mesh, views = CASES[case]
    layout = unwrap([(mesh.vertices, mesh.faces)], texture_size=size)[0]
    v, f = torch.from_numpy(layout.vertices).float(), torch.from_numpy(layout.faces).long()
    projector = TextureProjector(v, f, torch.from_numpy(layout.uv).float(), size)
    for azimuth, elevation in views:
        camera = frame_camera(v, azimuth, elevation, width=512)
        projector.quality[projector.visibility(camera, rasterize(v, f, camera)).texels] = 1.0
    return projector, v, f


def sampled_pick(projector, v, f) -> tuple[float, tuple]:
    used = set()
    start = time.perf_counter()
    fill_views.best_fill_view(projector, v, f, min_texels=1, width=512, used=used)
    return time.perf_counter() - start, used.pop()


def every_texel_pick(projector, v, f) -> tuple[float, tuple]:
    """The baseline: each candidate tests every texel of the triangles that have empty ones."""
    start = time.perf_counter()
    empty = projector.quality <= 0
    unfinished = torch.zeros(len(f), dtype=torch.bool)
    unfinished[projector.samples.triangle[empty]] = True
    counts = {}
    for direction in fill_views.candidate_directions():
        camera = frame_camera(v, *direction, width=fill_views.SCORING_RESOLUTION)
        view = projector.visibility(camera, rasterize(v, f, camera), among=unfinished)
        counts[direction] = int(empty[view.texels].sum())
    return time.perf_counter() - start, max(counts, key=counts.get)


def seen_in_full(projector, v, f, direction) -> int:
    camera = frame_camera(v, *direction, width=fill_views.SCORING_RESOLUTION)
    empty = projector.quality <= 0
    return int(empty[projector.visibility(camera, rasterize(v, f, camera)).texels].sum())


def main() -> None:
    torch.set_num_threads(2)
    print(f"{'case':>6} {'texture':>8} {'empty texels':>13} {'every texel s':>14} {'sampled s':>10} {'ratio':>6} "
          f"{'pick / best':>12}")
    for case, size in [(c, s) for c in CASES for s in (1024, 2048, 4096)]:
        projector, v, f = painted(case, size)
        empty = int((projector.quality <= 0).sum())
        full_s, _ = every_texel_pick(projector, v, f)
        sampled_s, direction = sampled_pick(projector, v, f)
        best = max(seen_in_full(projector, v, f, d) for d in fill_views.candidate_directions())
        print(f"{case:>6} {size:>8} {empty:>13,} {full_s:>14.2f} {sampled_s:>10.2f} {full_s / sampled_s:>5.1f}x "
              f"{seen_in_full(projector, v, f, direction) / best:>12.2f}")


if __name__ == "__main__":
    main()
