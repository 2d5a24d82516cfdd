"""Triangle rasterization in pure torch, with nvdiffrast as a drop-in on CUDA.

Two passes, in the spirit of nvdiffrast's split between `rasterize` and `interpolate`:

1. Visibility (not differentiable): which triangle covers each pixel centre. Every
   triangle is cut into pixel rows and each row into the run of pixel centres it covers
   (vectorised scanline); those pixels write `depth bits << 32 | triangle id` into an
   int64 z-buffer with `scatter_reduce(amin)`, so the nearest triangle wins and ties go
   to the lowest id, deterministically on CPU and CUDA. Pixels are expanded in bounded
   chunks, so memory stays bounded however large a triangle is.
2. Barycentrics (differentiable w.r.t. vertex positions): recomputed per pixel from the
   winning triangle, perspective-corrected. Attributes are then interpolated with
   `interpolate`, differentiable w.r.t. the attributes too — what score distillation needs.

When nvdiffrast is importable and the tensors are on CUDA, pass 1 runs through it;
pass 2 is shared, so both give the same depth, barycentrics and UVs. An nvdiffrast that
refuses a call (releases before 0.3.2 take only multiples of 8 pixels, before 0.3.3 at most
2048) hands it to the torch pass under "auto".
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Optional

import torch

from .camera import Camera

BACKENDS = ("auto", "torch", "nvdiffrast")
log = logging.getLogger(__name__)


@dataclass
class Fragments:
    """What the rasterizer found at each pixel.

    Attributes:
        triangle_id: (H, W) int64 index of the visible triangle, -1 where empty.
        barycentric: (H, W, 3) perspective-correct weights of its three corners (0 where empty).
        depth: (H, W) distance along the camera's view axis, +inf where empty (0 in UV space).
        mask: (H, W) bool, True where a triangle covers the pixel centre.
    """

    triangle_id: torch.Tensor
    barycentric: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.triangle_id.shape)


def rasterize(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera, backend: str = "auto") -> Fragments:
    """Render a triangle mesh from a camera.

    Pixel (row i, column j) samples its centre (j + 0.5, i + 0.5); row 0 is the top.
    Both faces of a triangle are drawn (no back-face culling). Triangles are clipped at
    the camera's near plane, as GPUs do: a camera inside the object (a reference photo
    taken in a room, or standing on a large ground plane) still sees the triangles that
    reach behind it.

    Args:
        vertices: (V, 3) float positions in world space; gradients flow to barycentrics and depth.
        faces: (F, 3) int64 corner indices.
        camera: The camera; its width and height set the image size.
        backend: "auto" (nvdiffrast on CUDA when installed, else torch), "torch" or "nvdiffrast".

    Returns:
        The fragments.
    """
    faces = faces.long()
    matrix = camera.full_matrix(device=vertices.device, dtype=vertices.dtype)  # (4, 4)
    clip = torch.cat([vertices, torch.ones_like(vertices[:, :1])], 1) @ matrix.T  # (V, 4)
    return rasterize_clip(clip, faces, camera.height, camera.width, backend)


def rasterize_clip(clip: torch.Tensor, faces: torch.Tensor, height: int, width: int, backend: str = "auto") -> Fragments:
    """Rasterize clip-space vertices (OpenGL: w = view depth, x/w and y/w in [-1, 1], z >= -w
    in front of the near plane).

    Args:
        clip: (V, 4) clip-space positions.
        faces: (F, 3) int64 corner indices.
        height, width: Image size in pixels.
        backend: See `rasterize`.

    Returns:
        The fragments.
    """
    faces = faces.long()
    if not bool((clip[:, 2] + clip[:, 3] < 0)[faces].any()):
        return _rasterize_in_front(clip, faces, height, width, backend)
    # Some corner lies behind the near plane: rasterize the clipped pieces, then name each
    # pixel's original triangle and its barycentrics on it (a piece's corners are fixed
    # blends of the triangle's corners, and perspective-correct weights are linear in them).
    corners, weights, source = _clip_to_near_plane(clip[faces])  # (P, 3, 4), (P, 3, 3), (P,)
    pieces = torch.arange(3 * len(corners), device=clip.device).view(-1, 3)
    frags = _rasterize_in_front(corners.reshape(-1, 4), pieces, height, width, backend)
    piece = frags.triangle_id.clamp(min=0)  # (H, W)
    bary = (frags.barycentric.unsqueeze(-1) * weights[piece].to(frags.barycentric.dtype)).sum(-2)  # (H, W, 3)
    return Fragments(triangle_id=torch.where(frags.mask, source[piece], -1),
                     barycentric=bary * frags.mask.unsqueeze(-1), depth=frags.depth, mask=frags.mask)


def _rasterize_in_front(clip: torch.Tensor, faces: torch.Tensor, height: int, width: int, backend: str) -> Fragments:
    """`rasterize_clip` for triangles with no corner behind the near plane."""
    w = clip[:, 3]
    # Pixel coordinates: x right, y down (row 0 at the top).
    xy = torch.stack([(clip[:, 0] / w + 1) * (width / 2), (1 - clip[:, 1] / w) * (height / 2)], -1)  # (V, 2)
    inv_w = 1.0 / w  # (V,) perspective-correct interpolation runs on 1/w
    corners_xy, corners_inv_w = xy[faces], inv_w[faces]  # (F, 3, 2), (F, 3)
    triangle_id = None
    if select_backend(clip.device, backend) == "nvdiffrast":
        try:
            triangle_id = _triangle_ids_nvdiffrast(clip, faces, height, width)
        except RuntimeError as exc:
            if backend == "nvdiffrast":
                raise
            log.warning("nvdiffrast could not rasterize %dx%d (%s); using the torch rasterizer", width, height, exc)
    if triangle_id is None:
        valid = (w[faces] > 1e-8).all(1)  # guards a degenerate camera (near plane at the eye)
        triangle_id = _triangle_ids_torch(corners_xy.detach(), corners_inv_w.detach(), valid, height, width)
    return _fragments(corners_xy, corners_inv_w, triangle_id, perspective=True)


def _clip_to_near_plane(corners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut triangles at the near plane (clip z = -w), keeping what lies in front.

    A triangle with one corner in front becomes one smaller triangle, one with two corners in
    front a quad split into two; triangles wholly in front pass unchanged, wholly behind go.

    Args:
        corners: (F, 3, 4) clip-space corners.

    Returns:
        (pieces (P, 3, 4) clip-space corners; weights (P, 3, 3), row k = the barycentrics of a
        piece's corner k on its triangle; source (P,) the triangle each piece comes from).
    """
    device, dtype = corners.device, corners.dtype
    distance = corners[..., 2] + corners[..., 3]  # (F, 3) >= 0 in front of the near plane
    in_front = (distance >= 0).sum(1)  # (F,)
    identity = torch.eye(3, device=device, dtype=dtype)
    whole = torch.nonzero(in_front == 3).squeeze(1)
    pieces, weights, sources = [corners[whole]], [identity.expand(len(whole), 3, 3)], [whole]
    for count in (1, 2):
        chosen = torch.nonzero(in_front == count).squeeze(1)
        odd = (distance[chosen] >= 0) if count == 1 else (distance[chosen] < 0)  # one corner per row
        order = (odd.to(torch.int64).argmax(1, keepdim=True) + torch.arange(3, device=device)) % 3  # odd one first
        c = corners[chosen].gather(1, order[..., None].expand(-1, -1, 4))  # (n, 3, 4), winding kept
        d = distance[chosen].gather(1, order)  # (n, 3)
        b = identity[order]  # (n, 3, 3)
        t1 = (d[:, 0] / (d[:, 0] - d[:, 1]))[:, None]  # where edges 0-1 and 0-2 meet the plane
        t2 = (d[:, 0] / (d[:, 0] - d[:, 2]))[:, None]
        p1, q1 = c[:, 0] + t1 * (c[:, 1] - c[:, 0]), b[:, 0] + t1 * (b[:, 1] - b[:, 0])
        p2, q2 = c[:, 0] + t2 * (c[:, 2] - c[:, 0]), b[:, 0] + t2 * (b[:, 2] - b[:, 0])
        if count == 1:  # corner 0 in front: the tip (0, p1, p2)
            pieces.append(torch.stack([c[:, 0], p1, p2], 1))
            weights.append(torch.stack([b[:, 0], q1, q2], 1))
            sources.append(chosen)
        else:  # corner 0 behind: the quad (p1, 1, 2, p2) as two triangles
            pieces += [torch.stack([p1, c[:, 1], c[:, 2]], 1), torch.stack([p1, c[:, 2], p2], 1)]
            weights += [torch.stack([q1, b[:, 1], b[:, 2]], 1), torch.stack([q1, b[:, 2], q2], 1)]
            sources += [chosen, chosen]
    return torch.cat(pieces), torch.cat(weights), torch.cat(sources)


def rasterize_uv_space(uv: torch.Tensor, faces: Optional[torch.Tensor], height: int, width: int) -> Fragments:
    """Rasterize a mesh's UV layout: which triangle, and where on it, each texel centre lies.

    Used to bake: texel -> surface point. UVs follow glTF (v down), so texel row = v * height.
    Overlapping UV islands resolve to the lowest triangle id.

    Args:
        uv: (V, 2) per-vertex UVs with `faces`, or (F, 3, 2) per-corner UVs with faces=None.
        faces: (F, 3) int64, or None for per-corner UVs.
        height, width: Texture size.

    Returns:
        Fragments in texture space (depth 0 on the surface, barycentrics linear in UV).
    """
    texel, triangle, bary = uv_space_texels(uv, faces, height, width)
    triangle_id = torch.full((height * width,), -1, dtype=torch.int64, device=uv.device).index_copy(0, texel, triangle)
    bary_dense = torch.zeros(height * width, 3, dtype=bary.dtype, device=bary.device).index_copy(0, texel, bary)
    mask = triangle_id >= 0
    depth = torch.where(mask, 0.0, torch.inf).to(bary.dtype)
    return Fragments(triangle_id=triangle_id.view(height, width), barycentric=bary_dense.view(height, width, 3),
                     depth=depth.view(height, width), mask=mask.view(height, width))


def uv_space_texels(uv: torch.Tensor, faces: Optional[torch.Tensor], height: int, width: int,
                    values: Optional[torch.Tensor] = None):
    """The sparse form of `rasterize_uv_space`: only the texels that lie on a triangle.

    Args:
        uv, faces, height, width: As for `rasterize_uv_space`.
        values: Optional (F, 3, C) per-corner values to interpolate at each texel (e.g. the
            corners' 3D positions); None returns the barycentrics themselves.

    Returns:
        (texel (N,) int64 flat index row * width + column, triangle (N,) int64,
        interpolated (N, C) — barycentrics (N, 3) when values is None), in texel order.
    """
    corners = uv if faces is None else uv[faces.long()]  # (F, 3, 2)
    corners_xy = corners * torch.tensor([width, height], dtype=corners.dtype, device=corners.device)
    ones = torch.ones(corners.shape[:2], dtype=corners.dtype, device=corners.device)  # (F, 3)
    valid = torch.ones(len(corners), dtype=torch.bool, device=corners.device)
    triangle_id = _triangle_ids_torch(corners_xy.detach(), ones, valid, height, width, flat=True).view(-1)
    texel = torch.nonzero(triangle_id >= 0).squeeze(1)  # (N,)
    triangle = triangle_id[texel]
    coeffs, origin = _edge_coefficients(corners_xy)  # (F, 3, 3), (F, 2)
    if values is None:
        values = torch.eye(3, dtype=coeffs.dtype, device=coeffs.device).expand(len(coeffs), 3, 3)
    # Values are affine in the texel position: one (C, 3) map per triangle, then one gather per texel.
    affine = (values.to(coeffs.dtype)[:, :, :, None] * coeffs[:, :, None, :]).sum(1)  # (F, C, 3)
    channels = affine.shape[1]
    packed = torch.cat([affine.reshape(len(affine), -1), origin], 1).index_select(0, triangle)  # (N, 3C + 2)
    x = ((texel % width).to(packed.dtype) + 0.5 - packed[:, -2])[:, None]
    y = ((texel // width).to(packed.dtype) + 0.5 - packed[:, -1])[:, None]
    a = packed[:, :-2].view(-1, channels, 3)
    return texel, triangle, a[:, :, 0] * x + a[:, :, 1] * y + a[:, :, 2]


def interpolate(attributes: torch.Tensor, fragments: Fragments, faces: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Interpolate vertex or corner attributes at every pixel (differentiable).

    Args:
        attributes: (V, C) per-vertex values with `faces`, or (F, 3, C) per-corner values
            (e.g. UVs with seams) with faces=None.
        fragments: From `rasterize` / `rasterize_uv_space`.
        faces: (F, 3) int64, needed for per-vertex attributes.

    Returns:
        (H, W, C) values; 0 where no triangle covers the pixel.
    """
    tri = fragments.triangle_id.clamp(min=0)  # (H, W)
    corners = attributes[tri] if faces is None else attributes[faces.long()[tri]]  # (H, W, 3, C)
    values = (fragments.barycentric.unsqueeze(-1).to(corners.dtype) * corners).sum(-2)  # (H, W, C)
    return values * fragments.mask.unsqueeze(-1)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) unit normals of counter-clockwise triangles (zero for degenerate ones)."""
    v = vertices[faces.long()]  # (F, 3, 3)
    return torch.nn.functional.normalize(torch.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1), dim=-1)


def render_normals(vertices: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """(H, W, 3) world-space face normals at each pixel (0 where empty)."""
    normals = face_normals(vertices, faces)
    return normals[fragments.triangle_id.clamp(min=0)] * fragments.mask.unsqueeze(-1)


# --- backend choice ---------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _import_nvdiffrast():
    """nvdiffrast.torch, or None when it is not installed."""
    try:
        import nvdiffrast.torch as dr
    except ImportError:
        return None
    return dr


def select_backend(device: torch.device, backend: str = "auto") -> str:
    """Which rasterizer serves a request: "nvdiffrast" or "torch".

    Args:
        device: Where the vertices live.
        backend: "auto", "torch" or "nvdiffrast".

    Returns:
        "nvdiffrast" for auto on CUDA with nvdiffrast installed, else "torch".

    Raises:
        ValueError: an unknown backend, or nvdiffrast asked for where it cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    usable = torch.device(device).type == "cuda" and _import_nvdiffrast() is not None
    if backend == "nvdiffrast" and not usable:
        raise ValueError("the nvdiffrast rasterizer needs CUDA tensors and the nvdiffrast package; use backend='torch'")
    if backend == "auto":
        return "nvdiffrast" if usable else "torch"
    return backend


_CONTEXTS: dict = {}


def _triangle_ids_nvdiffrast(clip: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> torch.Tensor:
    dr = _import_nvdiffrast()
    key = clip.device
    if key not in _CONTEXTS:
        _CONTEXTS[key] = dr.RasterizeCudaContext(device=clip.device)
    rast, _ = dr.rasterize(_CONTEXTS[key], clip.detach().float()[None].contiguous(), faces.int().contiguous(),
                           resolution=[height, width])
    # nvdiffrast stores triangle id + 1 (0 = empty) and puts clip y = -1 in row 0: flip to row 0 = top.
    return rast[0, :, :, 3].round().long().flip(0) - 1  # (H, W)


# --- the torch rasterizer ---------------------------------------------------------------


def _edge_coefficients(corners_xy: torch.Tensor) -> torch.Tensor:
    """(F, 3, 3) plane coefficients and (F, 2) origins of each triangle's barycentrics:
    barycentric_i(x, y) = c[:, i, 0] * (x - ox) + c[:, i, 1] * (y - oy) + c[:, i, 2].

    Coordinates are taken relative to the first corner: in absolute pixel coordinates the
    constant terms cancel catastrophically in float32 for thin (edge-on) triangles.
    Degenerate (zero-area) triangles get all-zero coefficients and cover nothing.
    """
    origin = corners_xy[:, 0]  # (F, 2)
    local = corners_xy - origin[:, None]  # (F, 3, 2)
    a, b, c = local.unbind(1)  # (F, 2) each
    area = b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]  # (F,) twice the signed area
    degenerate = area.abs() <= 1e-10
    safe = torch.where(degenerate, torch.ones_like(area), area)
    coefficients = []
    for p, q in ((b, c), (c, a), (a, b)):  # the weight of a corner is the area opposite it
        coefficients.append(torch.stack([p[:, 1] - q[:, 1], q[:, 0] - p[:, 0], p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]], -1))
    coeffs = torch.stack(coefficients, 1) / safe[:, None, None]  # (F, 3, 3)
    return coeffs * ~degenerate[:, None, None], origin


def _triangle_ids_torch(corners_xy: torch.Tensor, corners_inv_w: torch.Tensor, valid: torch.Tensor,
                        height: int, width: int, flat: bool = False) -> torch.Tensor:
    """Z-buffered triangle id per pixel centre (-1 where empty).

    Scanline-style but vectorised: each triangle is cut into the pixel rows its bounding
    box crosses, each row into the exact run of pixel centres inside the triangle (the
    three edge functions are linear in x), and only those pixels are scattered into the
    z-buffer. `flat` skips depth (UV space: the lowest triangle id wins).
    """
    device = corners_xy.device
    coeffs, origin = _edge_coefficients(corners_xy)  # (F, 3, 3), (F, 2)
    lo = torch.ceil(corners_xy.amin(1) - 0.5).clamp(min=0).long()  # (F, 2) first pixel column / row
    hi = torch.floor(corners_xy.amax(1) - 0.5).long()
    hi = torch.minimum(hi, torch.tensor([width - 1, height - 1], device=device))
    rows = (hi[:, 1] - lo[:, 1] + 1).clamp(min=0) * (hi[:, 0] >= lo[:, 0])
    rows = rows * (valid & (coeffs.abs().sum((1, 2)) > 0))  # (F,)
    keep = torch.nonzero(rows).squeeze(1)  # (K,) triangles that may cover a pixel centre
    empty_id = torch.iinfo(torch.int64).max
    zbuffer = torch.full((height * width,), empty_id, dtype=torch.int64, device=device)
    if len(keep) == 0:
        return torch.full((height, width), -1, dtype=torch.int64, device=device)
    coeffs, origin, lo, hi, rows = coeffs[keep], origin[keep], lo[keep], hi[keep], rows[keep]
    # 1/depth is linear in screen space: a plane per triangle, in the same local frame.
    inv_depth_plane = (coeffs * corners_inv_w[keep][:, :, None]).sum(1)  # (K, 3)

    # 1. One item per (triangle, pixel row).
    row_tri = torch.repeat_interleave(torch.arange(len(keep), device=device), rows)  # (R,)
    row_start = torch.cumsum(rows, 0) - rows
    row = lo[row_tri, 1] + torch.arange(len(row_tri), device=device) - row_start[row_tri]  # (R,) pixel row
    c = coeffs[row_tri]  # (R, 3, 3)
    y = row.to(c.dtype) + 0.5 - origin[row_tri, 1]
    slope, offset = c[:, :, 0], c[:, :, 1] * y[:, None] + c[:, :, 2]  # barycentric_i = slope_i * x + offset_i
    eps = 1e-6  # pixel centres on a shared edge go to both triangles; the z-test picks one
    bound = (-eps - offset) / torch.where(slope == 0, torch.ones_like(slope), slope)  # (R, 3)
    x_lo = torch.where(slope > 0, bound, torch.full_like(bound, -torch.inf)).amax(1)
    x_hi = torch.where(slope < 0, bound, torch.full_like(bound, torch.inf)).amin(1)
    never = ((slope == 0) & (offset < -eps)).any(1)  # parallel to an edge and outside it
    first = torch.maximum(torch.ceil(x_lo + origin[row_tri, 0] - 0.5).clamp(-1, width).long(), lo[row_tri, 0])
    last = torch.minimum(torch.floor(x_hi + origin[row_tri, 0] - 0.5).clamp(-1, width).long(), hi[row_tri, 0])
    runs = (last - first + 1).clamp(min=0) * ~never  # (R,) covered pixels per row item

    # 2. Expand runs into pixels, a bounded number of row items at a time, and z-test them.
    ends = torch.cumsum(runs, 0)
    chunk = (1 << 24) if device.type == "cuda" else (1 << 21)
    cuts = torch.searchsorted(ends, torch.arange(chunk, int(ends[-1]) + chunk, chunk, device=device), right=True)
    bounds = [0] + sorted(set(int(c) for c in cuts.clamp(max=len(runs)).tolist()) | {len(runs)})
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        if r1 <= r0:
            continue
        part = runs[r0:r1]
        r = torch.repeat_interleave(torch.arange(r0, r1, device=device), part)  # (N,) row item of each pixel
        if len(r) == 0:
            continue
        offsets = torch.cumsum(part, 0) - part  # first pixel of each row item within this chunk
        px = first[r] + torch.arange(len(r), device=device) - offsets[r - r0]
        pixel = row[r] * width + px
        k = row_tri[r]
        if flat:
            key = keep[k]
        else:
            plane = inv_depth_plane[k]  # (N, 3)
            inv_depth = plane[:, 0] * (px.to(plane.dtype) + 0.5 - origin[k, 0]) + plane[:, 1] * y[r] + plane[:, 2]
            depth = 1.0 / inv_depth.clamp(min=1e-12)  # (N,) view depth at the pixel centre
            # Positive float32 bit patterns order like the floats: depth in the high word, id in the low word.
            key = (depth.float().view(torch.int32).to(torch.int64) << 32) | keep[k]
        zbuffer.scatter_reduce_(0, pixel, key, reduce="amin")
    triangle_id = torch.where(zbuffer == empty_id, -1, zbuffer & 0xFFFFFFFF)
    return triangle_id.view(height, width)


def _fragments(corners_xy: torch.Tensor, corners_inv_w: torch.Tensor, triangle_id: torch.Tensor,
               perspective: bool) -> Fragments:
    """Barycentrics and depth of the winning triangle at each covered pixel centre (differentiable)."""
    height, width = triangle_id.shape
    mask = triangle_id >= 0
    pixel = torch.nonzero(mask.view(-1)).squeeze(1)  # (n,) covered pixels only
    tri = triangle_id.view(-1)[pixel]  # (n,)
    coeffs, origin = _edge_coefficients(corners_xy)
    coeffs, origin = coeffs[tri], origin[tri]  # (n, 3, 3), (n, 2)
    x = ((pixel % width).to(coeffs.dtype) + 0.5 - origin[:, 0])[:, None]
    y = ((pixel // width).to(coeffs.dtype) + 0.5 - origin[:, 1])[:, None]
    screen = coeffs[..., 0] * x + coeffs[..., 1] * y + coeffs[..., 2]  # (n, 3), linear in screen space
    if perspective:
        weighted = screen * corners_inv_w[tri]  # (n, 3)
        inv_depth = weighted.sum(-1, keepdim=True)
        bary, depth = weighted / inv_depth, 1.0 / inv_depth[:, 0]
        depth_dense = torch.full((height * width,), torch.inf, dtype=depth.dtype, device=depth.device)
    else:
        bary, depth = screen, torch.zeros_like(screen[:, 0])
        depth_dense = torch.zeros(height * width, dtype=depth.dtype, device=depth.device)
    bary_dense = torch.zeros(height * width, 3, dtype=bary.dtype, device=bary.device).index_copy(0, pixel, bary)
    depth_dense = depth_dense.index_copy(0, pixel, depth)
    return Fragments(triangle_id=triangle_id, barycentric=bary_dense.view(height, width, 3),
                     depth=depth_dense.view(height, width), mask=mask)
