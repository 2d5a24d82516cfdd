"""Extra views aimed at what the planned views missed (a mug's inside, a ring's inner rim).

A fixed ring of views leaves concave surfaces unpainted; padding then smears the nearest
chart's colour over them. After the planned views, candidate cameras all round the object
are scored by how many still-empty texels each sees usably, at a low resolution and only
on the triangles that still have empty texels, and the best direction not used yet is
painted next, until none would add enough.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..render.camera import Camera, frame_camera
from ..render.rasterize import rasterize
from .project import TextureProjector

CANDIDATE_ELEVATIONS = (-65.0, -35.0, 0.0, 35.0, 65.0)  # degrees
CANDIDATE_AZIMUTHS = 8  # per elevation, offset half a step from the default ring
SCORING_RESOLUTION = 128  # pixels; ranking candidates needs no more
SCORING_TEXELS = 20000  # an even sample of the empty texels ranks candidates as well as all of them


def candidate_directions() -> list[tuple[float, float]]:
    """(azimuth, elevation) pairs in degrees, spread over the whole sphere of directions."""
    step = 360.0 / CANDIDATE_AZIMUTHS
    return [(step * (i + 0.5), elevation) for elevation in CANDIDATE_ELEVATIONS for i in range(CANDIDATE_AZIMUTHS)]


def best_fill_view(projector: TextureProjector, vertices: torch.Tensor, faces: torch.Tensor, min_texels: int,
                   width: int, used: set, rasterizer: str = "auto", framed: Optional[torch.Tensor] = None) -> Optional[Camera]:
    """The candidate camera that sees the most unpainted texels usably.

    Args:
        projector: The texture so far.
        vertices, faces: The mesh it is painted on.
        min_texels: A camera that would paint fewer unpainted texels than this is not worth a view.
        width: Pixels per side of the returned camera.
        used: (azimuth, elevation) pairs already painted from; the one chosen is added.
        rasterizer: As for `rasterize`.
        framed: The points each candidate camera frames (default: all of `vertices`; a repaint
            frames its region).

    Returns:
        The camera framed at `width`, or None when no candidate reaches `min_texels`.
    """
    empty = projector.quality <= 0  # (N,) per surface texel
    if int(empty.sum()) < max(int(min_texels), 1):
        return None  # no camera could paint enough: spare scoring them all
    unfinished = torch.zeros(len(faces), dtype=torch.bool, device=empty.device)
    unfinished[projector.samples.triangle[empty]] = True
    empty_texels = torch.nonzero(empty).squeeze(1)
    stride = -(-len(empty_texels) // SCORING_TEXELS)  # each texel scored stands for `stride` of them
    sample = empty_texels[::stride]
    framed = vertices if framed is None else framed
    best, best_count = None, max(int(min_texels), 1) - 1
    for direction in candidate_directions():
        if direction in used:
            continue
        camera = frame_camera(framed, *direction, width=SCORING_RESOLUTION)
        fragments = rasterize(vertices, faces, camera, backend=rasterizer)
        count = len(projector.visibility(camera, fragments, among=unfinished, texels=sample).texels) * stride
        if count > best_count:
            best, best_count = direction, count
    if best is None:
        return None
    used.add(best)
    return frame_camera(framed, *best, width=width)
