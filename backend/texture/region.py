"""Repaint a selected region of a texture: which texels change, from where to look, how they merge.

The selected faces' texels are painted anew. Around them a band of the unselected surface,
`border` wide in 3D, is refined and blended into the original (the new colour's weight falls
from 1 at the selection to 0 at the band's edge), so the seam does not show. Every other texel
keeps the original's bytes, with one exception: the gutter texels no triangle uses take the
colour of the nearest repainted texel when that is the nearest texel in use (as a bake's
margin does), so mip levels do not bleed the old colour into the new.

Texels the selected faces share with faces outside the region (overlapping or mirrored UVs)
are kept: repainting them would change what the artist did not select.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from ..render.camera import Camera, frame_camera, orbit_views
from ..render.rasterize import face_normals
from .project import SurfaceSamples, covered_texels, weld_corners

GUTTER_REACH = 8  # texels: how far into the gutter repainted texels extend (a bake's margin)
TILT = 40.0  # degrees: the views after the head-on one look this far off the region's normal
SPREAD_NORMAL = 0.35  # a region whose mean normal is shorter than this faces every way (a belt)


@dataclass
class RegionPlan:
    """The texels a repaint may change, and how.

    Attributes:
        samples: The texels to paint: the selected faces' and the band's, grouped by triangle.
        selected: (N,) bool over the samples: on a selected face (else in the band).
        blend: (N,) float in (0, 1]: weight of the new colour (1 on the selection).
        covered: (H, W) bool, texels some triangle uses.
        shared: Texels of selected faces kept because faces outside the region use them too.
    """

    samples: SurfaceSamples
    selected: torch.Tensor
    blend: torch.Tensor
    covered: torch.Tensor
    shared: int


def plan_region(vertices: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, selected_faces: torch.Tensor,
                height: int, width: int, border: float) -> RegionPlan:
    """Find the texels of the selection and of the band around it.

    Args:
        vertices: (V, 3); faces: (F, 3) int64; uv: (V, 2) glTF UVs (in the unit square, or
            straddling its edge as the texture repeats).
        selected_faces: (F,) bool.
        height, width: Texture size.
        border: Band width in the mesh's units (0 = no band).

    Returns:
        The plan.
    """
    device = vertices.device
    boundary = _boundary_faces(vertices, faces, selected_faces) if border > 0 else None
    band_faces = _band_candidates(vertices, faces, selected_faces, boundary, border)
    region = selected_faces | band_faces
    samples = SurfaceSamples.from_mesh(vertices, faces, uv, height, width, among=region)
    on_selected = selected_faces[samples.triangle]
    # The band: texels of nearby faces closer than `border` to the selection.
    blend = torch.ones(len(samples.index), dtype=torch.float32, device=device)
    band = torch.nonzero(~on_selected).squeeze(1)
    if len(band):
        distance = _distance_to_selection(vertices, faces, boundary, samples, on_selected, band, border)
        t = (1 - distance / border).clamp(0, 1)
        blend[band] = t * t * (3 - 2 * t)  # smoothstep: no crease where the band starts or ends
    # Texels faces outside the region use too stay as they are.
    outside = covered_texels(uv, faces[~region], height, width)
    shared_texel = outside[samples.index]
    keep = (blend > 0) & ~shared_texel
    covered = outside  # now also the region's own texels: every texel some face uses
    covered[samples.index] = True
    return RegionPlan(samples=samples.subset(keep), selected=on_selected[keep], blend=blend[keep],
                      covered=covered.view(height, width), shared=int((shared_texel & on_selected).sum()))


def _band_candidates(vertices, faces, selected_faces, boundary, border: float) -> torch.Tensor:
    """(F,) bool: unselected faces that may hold a texel within `border` of the selection
    (their centre is no farther than `border` plus their own radius from its boundary)."""
    band = torch.zeros_like(selected_faces)
    if border <= 0 or bool(selected_faces.all()):
        return band
    points = vertices[faces[boundary].reshape(-1)].detach().cpu().numpy()
    if not len(points):
        return band
    corners = vertices[faces].detach()  # (F, 3, 3)
    centre = corners.mean(1)
    radius = (corners - centre[:, None]).norm(dim=-1).max(1).values
    unselected = torch.nonzero(~selected_faces).squeeze(1)
    # Distances to the boundary faces' corners; a face's edge may come closer than its corners
    # by up to half its longest edge, which the boundary faces' radius covers.
    slack = float(radius[boundary].max())
    distance, _ = cKDTree(points).query(centre[unselected].cpu().numpy(), k=1)
    near = torch.from_numpy(distance).to(radius) <= border + radius[unselected] + slack
    band[unselected[near]] = True
    return band


def _boundary_faces(vertices, faces, selected_faces) -> torch.Tensor:
    """(F,) bool: selected faces that share a corner position with an unselected face."""
    welded, count = weld_corners(vertices, faces)
    outside_corner = torch.zeros(count, dtype=torch.bool, device=faces.device)
    outside_corner[welded[~selected_faces].reshape(-1)] = True
    return selected_faces & outside_corner[welded].any(1)


def _distance_to_selection(vertices, faces, boundary, samples: SurfaceSamples, on_selected, band,
                           border: float) -> torch.Tensor:
    """(n,) distance from the band texels to the nearest texel or corner of the selection's
    boundary faces (inf beyond `border`)."""
    corners = vertices[faces[boundary].reshape(-1)]
    texels = samples.position[on_selected & boundary[samples.triangle]]
    points = torch.cat([corners, texels]).detach().cpu().numpy()
    if not len(points):
        return torch.full((len(band),), math.inf, device=vertices.device)
    query = samples.position[band].detach().cpu().numpy()
    distance, _ = cKDTree(points).query(query, k=1, distance_upper_bound=border)
    return torch.from_numpy(distance).to(vertices.device, torch.float32)


def region_cameras(vertices: torch.Tensor, faces: torch.Tensor, selected_faces: torch.Tensor, count: int,
                   resolution: int) -> list[Camera]:
    """Views aimed at the selection: one along its mean normal, the rest tilted around it.

    A region facing every way (a belt round a cylinder) is seen from a ring instead. Each
    view frames the selection itself, not the whole mesh, so its texels get the pixels.

    Args:
        vertices, faces: The mesh; selected_faces: (F,) bool.
        count: Number of views (at least 1).
        resolution: Pixels per side.

    Returns:
        The cameras, head-on first.
    """
    chosen = faces[selected_faces]
    points = vertices[chosen.reshape(-1)]
    area_normal = face_normals(vertices, chosen) * _areas(vertices, chosen)[:, None]  # (S, 3)
    total_area = float(_areas(vertices, chosen).sum())
    mean = area_normal.sum(0).detach().cpu().numpy().astype(np.float64) / max(total_area, 1e-12)
    length = float(np.linalg.norm(mean))
    if length < SPREAD_NORMAL:
        azimuths = [360.0 * i / count for i in range(count)]
        return orbit_views(points, azimuths, [15.0] * count, width=resolution)
    normal = mean / length
    directions = [normal]
    side = np.cross(normal, [0.0, 1.0, 0.0] if abs(normal[1]) < 0.9 else [1.0, 0.0, 0.0])
    side /= np.linalg.norm(side)
    other = np.cross(normal, side)
    tilt = math.radians(TILT)
    for i in range(count - 1):
        turn = 2 * math.pi * i / (count - 1)
        directions.append(math.cos(tilt) * normal + math.sin(tilt) * (math.cos(turn) * side + math.sin(turn) * other))
    return [frame_camera(points, *_azimuth_elevation(d), width=resolution) for d in directions]


def _areas(vertices, faces) -> torch.Tensor:
    corners = vertices[faces]
    return 0.5 * torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).norm(dim=-1)


def _azimuth_elevation(direction: np.ndarray) -> tuple[float, float]:
    """`frame_camera`'s angles for a camera looking back along `direction` (object -> eye)."""
    x, y, z = direction / np.linalg.norm(direction)
    return math.degrees(math.atan2(x, z)), math.degrees(math.asin(max(-1.0, min(1.0, y))))


def merge_region(original: np.ndarray, plan: RegionPlan, painted: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The original texture with the region's texels replaced.

    Args:
        original: (H, W, C) uint8, C = 3 or 4 (alpha is kept).
        plan: From `plan_region`.
        painted: (N,) x 3 float in [0, 1], the new colour of each planned texel.

    Returns:
        (the texture (H, W, C) uint8, changed (H, W) bool: texels that may differ from the original).
    """
    height, width = original.shape[:2]
    flat = original.reshape(-1, original.shape[2]).copy()
    index = plan.samples.index.cpu().numpy()
    before = flat[index, :3].astype(np.float32) / 255.0
    blend = plan.blend.cpu().numpy()[:, None]
    new = painted.detach().cpu().numpy().astype(np.float32)
    # A band texel the views left as it was comes back to the same byte: (b / 255) * 255 rounds to b.
    flat[index, :3] = np.clip(np.floor((blend * new + (1 - blend) * before) * 255 + 0.5), 0, 255).astype(np.uint8)
    changed = np.zeros(height * width, bool)
    changed[index] = True
    # Gutter texels nearest a repainted texel take its colour, up to GUTTER_REACH out. Only a
    # box around the region needs looking at: a gutter texel within reach of a repainted one
    # has its nearest texel in use within reach too, inside the box.
    changed = changed.reshape(height, width)
    covered = plan.covered.cpu().numpy()
    rows, cols = np.nonzero(changed)
    if len(rows):
        margin = 2 * GUTTER_REACH + 1
        top, left = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
        bottom, right = min(rows.max() + margin + 1, height), min(cols.max() + margin + 1, width)
        box = (slice(top, bottom), slice(left, right))
        used = covered[box]
        if not used.all():
            distance, (near_r, near_c) = ndimage.distance_transform_cdt(~used, metric="chessboard", return_indices=True)
            gutter = (distance > 0) & (distance <= GUTTER_REACH) & changed[box][near_r, near_c]
            image = flat.reshape(original.shape)
            window = image[box]
            window[gutter, :3] = window[near_r[gutter], near_c[gutter], :3]
            changed[box] |= gutter
    return flat.reshape(original.shape), changed
