"""Back-projection: bake painted views into a UV texture, weighted by how well each view sees each texel.

The texture is baked texel by texel, not splatted pixel by pixel: every texel that lies
on the surface knows its 3D point and triangle (rasterizing the mesh in UV space), so a
view is sampled exactly where the texel lands in it. No holes appear however the texture
and view resolutions compare, and each texel's "quality" — the cosine between its
triangle's normal and the direction to the camera, zero where occluded — decides which
view it keeps (TEXTure's and Text2Tex's view-angle weighting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..render.camera import Camera
from ..render.rasterize import Fragments, face_normals, uv_space_texels


KEPT_QUALITY = 2.0  # stored quality of texels a repaint keeps: above any view's |cos|


@dataclass
class SurfaceSamples:
    """The texels that lie on the surface.

    Attributes:
        index: (N,) int64 flat texel index (row * width + column).
        position: (N, 3) surface point under the texel centre.
        triangle: (N,) int64 triangle under the texel centre.
        height, width: Texture size.
    """

    index: torch.Tensor
    position: torch.Tensor
    triangle: torch.Tensor
    height: int
    width: int

    @classmethod
    def from_mesh(cls, vertices: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, height: int, width: int,
                  among: torch.Tensor | None = None) -> "SurfaceSamples":
        """Rasterize the UV layout to find each texel's surface point.

        The texture repeats (Blender's default lookup): a triangle crossing an edge of the
        unit square is also rasterized shifted by a whole tile, so its part beyond the edge
        lands where the lookup reads it. Triangles are expected to lie within one tile of
        the square (`geometry.uv.wrap_into_unit_square` moves them there).

        Args:
            vertices: (V, 3); faces: (F, 3) int64; uv: (V, 2) per-vertex UVs (glTF, v down).
            height, width: Texture size.
            among: (F,) bool, only these triangles' texels (None = all).
        """
        chosen = None if among is None else torch.nonzero(among).squeeze(1)  # (F',) sorted
        tris = faces if chosen is None else faces[chosen]
        corners, source = _with_wrapped_copies(uv[tris])  # (F'', 3, 2), (F'',)
        index, tri, position = uv_space_texels(corners, None, height, width, values=vertices[tris][source])
        tri = source[tri]  # (N,), (N,), (N, 3), copies named by the triangle they copy
        if chosen is not None:
            tri = chosen[tri]  # ascending in the subset's order too: grouping survives
        # Group texels by triangle: a view then gathers just the texels of the triangles it may see.
        tri, order = torch.sort(tri.int(), stable=True)  # int32 sorts faster
        tri = tri.long()
        index, position = index[order], position.index_select(0, order)
        return cls(index=index, position=position, triangle=tri, height=height, width=width)

    def subset(self, keep: torch.Tensor) -> "SurfaceSamples":
        """The samples where `keep` ((N,) bool) holds, still grouped by triangle."""
        return SurfaceSamples(index=self.index[keep], position=self.position[keep], triangle=self.triangle[keep],
                              height=self.height, width=self.width)


def covered_texels(uv: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(height * width,) bool: texels whose centre some triangle covers (the texture repeating)."""
    covered = torch.zeros(height * width, dtype=torch.bool, device=uv.device)
    if len(faces):
        corners, _ = _with_wrapped_copies(uv[faces.long()])
        index, _, _ = uv_space_texels(corners, None, height, width, values=corners.new_zeros(len(corners), 3, 1))
        covered[index] = True
    return covered


def weld_corners(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Triangle corners numbered by position, so corners split at UV seams are one again.

    Welds by a hash of the exact coordinates; a rare collision only joins two far corners.

    Returns:
        ((F, 3) int64 welded vertex per corner, number of welded vertices).
    """
    bits = vertices.detach().float().contiguous().view(torch.int32).to(torch.int64)  # (V, 3)
    key = bits[:, 0] * 73856093 + bits[:, 1] * 19349663 + bits[:, 2] * 83492791
    _, weld = torch.unique(key, return_inverse=True)
    return weld[faces], int(weld.max()) + 1 if len(weld) else 0


def _with_wrapped_copies(corners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-corner UVs plus copies, shifted by -1, 0 or 1 tile per axis, of triangles whose
    UV box crosses an edge of the unit square; and which triangle each row copies."""
    low, high = corners.min(1).values, corners.max(1).values  # (F, 2)
    rows, sources = [corners], [torch.arange(len(corners), device=corners.device)]
    for du in (-1.0, 0.0, 1.0):
        for dv in (-1.0, 0.0, 1.0):
            if du == 0.0 and dv == 0.0:
                continue
            shift = torch.tensor([du, dv], dtype=corners.dtype, device=corners.device)
            overlaps = ((low + shift < 1) & (high + shift > 0)).all(1)  # (F,)
            chosen = torch.nonzero(overlaps).squeeze(1)
            rows.append(corners[chosen] + shift)
            sources.append(chosen)
    return torch.cat(rows), torch.cat(sources)


@dataclass
class ViewVisibility:
    """Where the surface texels land in one view.

    Attributes:
        texels: (n,) indices into SurfaceSamples of the texels this view sees usably.
        quality: (n,) |cos| of the view angle at those texels, in (min_quality, 1].
        grid: (n, 2) their image positions for `grid_sample` (x, y in [-1, 1]).
    """

    texels: torch.Tensor
    quality: torch.Tensor
    grid: torch.Tensor


def depth_tolerance(quality: torch.Tensor, fov_y: float, height: int) -> torch.Tensor:
    """How much depth may change across one pixel of one continuous surface, per unit of depth.

    A surface seen at cos(angle) = `quality` changes depth by pixel_size * tan(angle) across a
    pixel; the margin covers rasterisation. Shared by the bake's visibility test and the
    painter's "where can this view write" mask, so the two agree.
    """
    slope = (torch.sqrt((1 - quality**2).clamp(min=0)) / quality.clamp(min=1e-3)).clamp(max=4.0)
    return (2 * math.tan(math.radians(fov_y) / 2) / height) * (1.5 + 2.0 * slope)


class TextureProjector:
    """Keeps the texture being painted and bakes views into it.

    Per surface texel it stores a colour and the quality of the view that painted it
    (0 = never painted). `bake` writes a view's colours where the caller says (usually:
    empty texels, and texels this view sees at a clearly better angle than before).

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) int64 triangles.
        uv: (V, 2) UVs (glTF convention, v down), one per vertex (split at seams).
        texture_size: Texels per side, or (height, width).
        min_quality: Views seeing a texel at a cosine below this do not paint it
            (about 84 degrees for 0.1: grazing views smear).
        samples: The texels to paint (default: every texel on the surface); a repaint passes
            those of the selected region.
    """

    def __init__(self, vertices: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, texture_size: int | tuple[int, int],
                 min_quality: float = 0.1, samples: SurfaceSamples | None = None):
        self.vertices, self.faces, self.uv = vertices, faces.long(), uv
        self.height, self.width = (int(texture_size),) * 2 if isinstance(texture_size, int) else map(int, texture_size)
        self.min_quality = min_quality
        self.samples = samples or SurfaceSamples.from_mesh(vertices, self.faces, uv, self.height, self.width)
        self._base: tuple[torch.Tensor, torch.Tensor] | None = None
        # Per triangle, once: centre, normal, and corners welded by position (UV seams split
        # vertices; visibility needs neighbours across seams).
        corners = vertices[self.faces]  # (F, 3, 3)
        self._centroids = corners.mean(1)
        self._normals = face_normals(vertices, self.faces)
        self._welded_faces, self._weld_count = weld_corners(vertices, self.faces)  # (F, 3)
        self._texel_count = torch.bincount(self.samples.triangle, minlength=len(self.faces))  # (F,)
        self._texel_start = torch.cumsum(self._texel_count, 0) - self._texel_count
        n = len(self.samples.index)
        self.color = torch.zeros(n, 3, device=vertices.device, dtype=torch.float32)  # (N, 3)
        self.quality = torch.zeros(n, device=vertices.device, dtype=torch.float32)  # (N,)

    # --- one view --------------------------------------------------------------------

    def visibility(self, camera: Camera, fragments: Fragments, among: torch.Tensor | None = None,
                   texels: torch.Tensor | None = None) -> ViewVisibility:
        """Which surface texels a view sees, how squarely, and where.

        A texel counts as seen when all four pixels around its projection show a surface
        at its own depth (within a tolerance that grows with the view angle): texels at
        occlusion borders and silhouettes are left to views that see them cleanly.
        Only texels on triangles that touch a triangle the view shows are tested (a
        triangle smaller than a pixel may be missed by every pixel centre, never all
        of its neighbours), which skips the hidden half of the surface cheaply.

        Args:
            camera: The view's camera.
            fragments: `rasterize` output for that camera.
            among: (F,) bool, only texels on these triangles are tested (None = all).
            texels: (n,) indices of the only texels to test (None = all): scoring a view by a
                few texels costs far less than testing every texel of their triangles.

        Returns:
            The visible texels.
        """
        s = self.samples
        depth = fragments.depth
        height, width = depth.shape
        device = s.position.device
        # 1. Candidate triangles: shown in the view, or sharing a corner with one that is.
        shown = torch.zeros(len(self.faces), dtype=torch.bool, device=device)
        shown[fragments.triangle_id[fragments.mask]] = True
        corner_seen = torch.zeros(self._weld_count, dtype=torch.bool, device=device)
        corner_seen[self._welded_faces[shown].reshape(-1)] = True
        candidate = corner_seen[self._welded_faces].any(1)  # (F,)
        if among is not None:
            candidate &= among
        # 2. View quality per triangle: |cos| between its normal and the direction to the eye.
        eye = torch.tensor(camera.eye, device=device, dtype=s.position.dtype)
        to_eye = F.normalize(eye - self._centroids, dim=-1)  # (F, 3)
        face_quality = (self._normals * to_eye).sum(-1).abs() * candidate  # both sides paint: normals may be flipped
        face_quality = torch.where(face_quality >= self.min_quality, face_quality, torch.zeros_like(face_quality))
        if texels is None:
            faces = torch.nonzero(face_quality).squeeze(1)  # texels are grouped by triangle: take whole groups
            counts = self._texel_count[faces]
            group = torch.repeat_interleave(torch.arange(len(faces), device=device), counts)  # (n,) position in `faces`
            first = self._texel_start[faces] - (torch.cumsum(counts, 0) - counts)  # per triangle, so texel = first + k
            texels = first[group] + torch.arange(len(group), device=device)  # (n,)
            q = face_quality[faces]
            quality, tolerance = q[group], depth_tolerance(q, camera.fov_y, height)[group]
        else:
            texels = texels[face_quality[s.triangle[texels]] > 0]
            quality = face_quality[s.triangle[texels]]
            tolerance = depth_tolerance(quality, camera.fov_y, height)
        position = s.position.index_select(0, texels)  # (n, 3)
        # 3. Project and compare with the depth buffer.
        matrix = camera.full_matrix(device=device, dtype=position.dtype)  # (4, 4)
        rows = matrix[[0, 1, 3]]  # clip x, y, w
        projected = torch.addmm(rows[:, 3], position, rows[:, :3].T.contiguous())  # (n, 3)
        w = projected[:, 2]  # (n,) view depth
        inv_w = 1.0 / w
        px = projected[:, 0] * inv_w * (width / 2) + width / 2  # (n,) pixel coordinates, centres at k + 0.5
        py = projected[:, 1] * inv_w * (-height / 2) + height / 2
        # Nearest and farthest depth of the 2x2 pixel block each texel lands in; beyond the
        # image's edge "nothing" (far away), so texels projecting outside fail on their own.
        block_max, block_min = pixel_blocks(finite_depth(depth), outside=1e30)
        y, x = block_of(torch.stack([px, py], -1), height, width)
        tolerance = tolerance * w
        seen = (block_max[y, x] - w <= tolerance) & (w - block_min[y, x] <= tolerance) & (w > 0)
        keep = torch.nonzero(seen).squeeze(1)
        grid = torch.stack([px[keep] * (2 / width) - 1, py[keep] * (2 / height) - 1], -1)  # (m, 2)
        return ViewVisibility(texels=texels[keep], quality=quality[keep], grid=grid)

    def bake(self, image: torch.Tensor, view: ViewVisibility, update: torch.Tensor) -> int:
        """Write a view's colours into the texels selected by `update`.

        Args:
            image: (H, W, 3) float in [0, 1], the painted view.
            view: From `visibility` for the same camera.
            update: (n,) bool over `view.texels`, which of them take this view's colour
                (and its `quality`, which later views must clearly beat to repaint them).

        Returns:
            How many texels were written.
        """
        chosen = torch.nonzero(update).squeeze(1)
        if len(chosen) == 0:
            return 0
        texels, grid = view.texels[chosen], view.grid[chosen]
        img = image.permute(2, 0, 1)[None].to(self.color.device, torch.float32)  # (1, 3, H, W)
        sampled = F.grid_sample(img, grid[None, None].to(img.dtype), mode="bilinear", align_corners=False)  # (1, 3, 1, m)
        self.color.index_copy_(0, texels, sampled[0, :, 0].T.clamp(0, 1))
        self.quality.index_copy_(0, texels, view.quality[chosen])
        return int(len(texels))

    # --- the texture -----------------------------------------------------------------

    def keep_outside(self, color: torch.Tensor, known: torch.Tensor) -> None:
        """Texels that are not samples show `color` where `known`, and are never repainted.

        A repaint paints only the selected region: the rest of the texture is context the
        views show (and keep), so its stored quality is above any view's.

        Args:
            color: (H, W, 3) float in [0, 1], the texture as it is.
            known: (H, W) bool, texels whose colour counts (not the gutter around the region).
        """
        self._base = (color.to(self.color.device, torch.float32).reshape(-1, 3), known.to(self.color.device).reshape(-1))

    def _full(self, fill: torch.Tensor, outside: torch.Tensor | None) -> torch.Tensor:
        """A (H*W, C) tensor with `outside` (or zeros) off the samples and `fill` on them."""
        shape = (self.height * self.width, *fill.shape[1:])
        full = torch.zeros(shape, dtype=fill.dtype, device=fill.device) if outside is None else outside.to(fill.dtype).clone()
        full[self.samples.index] = fill
        return full

    def texture(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The texture as painted so far.

        Returns:
            (color (H, W, 3) float, 0 where unpainted; painted (H, W) bool).
        """
        base_color, known = self._base or (None, None)
        color = self._full(self.color, base_color)
        painted = self._full(self.quality > 0, known)
        return color.view(self.height, self.width, 3), painted.view(self.height, self.width)

    def quality_map(self) -> torch.Tensor:
        """(H, W) stored view quality per texel (0 = never painted or off the surface; above
        any view's where `keep_outside` keeps the texture)."""
        outside = None if self._base is None else self._base[1] * KEPT_QUALITY
        return self._full(self.quality, outside).view(self.height, self.width)

    def surface_mask(self) -> torch.Tensor:
        """(H, W) bool, the sampled texels (all on the surface)."""
        return self._full(torch.ones_like(self.quality, dtype=torch.bool), None).view(self.height, self.width)


def finite_depth(depth: torch.Tensor) -> torch.Tensor:
    """Depth with the background (+inf) as a large finite number, so pooling can compare it."""
    return torch.where(torch.isinf(depth), torch.full_like(depth, 1e30), depth)


def pixel_blocks(values: torch.Tensor, outside: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest and smallest value of every 2x2 pixel block, the image framed by `outside`.

    Block (y, x) holds pixels y-1..y, x-1..x: the four a bilinear lookup between pixel
    centres reads (`block_of` finds it).

    Args:
        values: (H, W).

    Returns:
        (block_max, block_min), each (H+1, W+1).
    """
    framed = F.pad(values.float(), (1, 1, 1, 1), value=outside)[None, None]  # (1, 1, H+2, W+2)
    return F.max_pool2d(framed, 2, 1)[0, 0], -F.max_pool2d(-framed, 2, 1)[0, 0]


def block_of(pixel: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the 2x2 block of `pixel_blocks` around pixel positions (n, 2) given
    as (x, y) with pixel centres at k + 0.5."""
    x = torch.floor(pixel[:, 0] + 0.5).clamp(0, width).long()
    y = torch.floor(pixel[:, 1] + 0.5).clamp(0, height).long()
    return y, x


def min_around(values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The smallest of the 2x2 pixels around each image position (the pixels a bilinear
    lookup there reads; 0 beyond the image's edge).

    Args:
        values: (H, W) per-pixel values.
        grid: (n, 2) positions as `grid_sample` takes them (x, y in [-1, 1]).

    Returns:
        (n,) values.
    """
    height, width = values.shape
    _, block_min = pixel_blocks(values, outside=0.0)
    pixel = (grid + 1) * torch.tensor([width / 2, height / 2], device=grid.device, dtype=grid.dtype)
    y, x = block_of(pixel, height, width)
    return block_min[y, x]


def sample_texture(texture: torch.Tensor, uv: torch.Tensor, weight: torch.Tensor | None = None,
                   mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Look a texture up at UV coordinates, ignoring texels of zero weight.

    Args:
        texture: (S, S, C) values.
        uv: (H, W, 2) glTF UVs (v down).
        weight: (S, S) per-texel weight (e.g. painted mask); None = all texels count.
        mode: "bilinear" or "nearest".

    Returns:
        (values (H, W, C), weight (H, W)): values are the weight-normalised average of the
        texels around each UV (0 where the weight is 0).
    """
    grid = (uv * 2 - 1)[None].to(texture.dtype)  # (1, H, W, 2): u -> x, v -> y (row)
    if weight is None:
        weight = torch.ones(texture.shape[:2], device=texture.device, dtype=texture.dtype)
    weight = weight.to(texture.dtype)
    stacked = torch.cat([texture * weight[..., None], weight[..., None]], -1).permute(2, 0, 1)[None]  # (1, C+1, S, S)
    out = F.grid_sample(stacked, grid, mode=mode, align_corners=False, padding_mode="border")[0].permute(1, 2, 0)
    total = out[..., -1]
    values = out[..., :-1] / total.clamp(min=1e-8)[..., None]
    return values * (total > 1e-8)[..., None], total
