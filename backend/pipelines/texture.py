"""Texture painting: paint a mesh view after view with a depth-conditioned image model, bake to UV.

The method follows TEXTure (Richardson et al. 2023) and Text2Tex (Chen et al. 2023):

- views go round the object in order (8 azimuths, then top and bottom by default);
- each view's pixels are sorted into *generate* (the texture is still empty there),
  *refine* (painted before, but from a clearly worse angle) and *keep*; the view
  generator repaints only the first two, so every view continues what earlier views made;
- the painted view is baked back into the UV texture per texel, and a texel keeps the
  contribution of the view that saw it most squarely (cosine of the view angle, zero
  where occluded);
- finally the texture is padded in UV space so chart borders do not show at lower mips.

An optional reference image is projected first from its own camera; what it sees squarely
is never repainted, and the views fill the rest. After the planned views, up to `fill_views`
more are aimed at what they all missed (a mug's inside). The image model sits behind
`ViewGenerator`, so the same code runs Stable Diffusion 2 depth or a test oracle.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import GenerationFailed, InputError
from ..geometry.uv import ensure_part_uvs, shared_texel_fraction, uv_problem, wrap_into_unit_square
from ..images import read_image
from ..params import SEED_LIMITS, Limits, check_limits, draw_seed
from ..render.camera import Camera, default_views, frame_camera, look_at
from ..render.rasterize import interpolate, rasterize, render_normals
from ..results import MeshPart, MeshResult, StepCallback, no_progress
from ..texture.fill_views import best_fill_view
from ..texture.padding import pad_texture
from ..texture.project import (
    TextureProjector, ViewVisibility, depth_tolerance, finite_depth, min_around, pixel_blocks, sample_texture,
)
from ..texture.region import merge_region, plan_region, region_cameras
from ..texture.views import ViewGenerator, ViewRequest

# What the `texture` task accepts (and its defaults); `seed` is added by the registry.
TEXTURE_PARAMS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "num_inference_steps": 30,
    "guidance_scale": 7.5,
    "texture_size": 1024,  # 1024..4096 texels square
    "num_views": 8,  # views evenly spaced around the object ...
    "view_elevation": 15.0,  # ... this many degrees above the horizon,
    "top_and_bottom": True,  # then one from straight above and one from below
    "start_azimuth": 0.0,  # degrees; 0 = the front (+Z in glTF axes)
    "view_resolution": 512,  # pixels; Stable Diffusion 2 depth is trained at 512
    "fill_views": 2,  # then at most this many more, aimed at what the views above missed
    "view_prompts": True,  # append "front view", "back view", ... (DreamFusion's view-dependent prompts)
    # Camera of the uploaded `image`, in the mesh's glTF axes:
    # {"eye": [x, y, z], "target": [x, y, z], "up": [0, 1, 0], "fov_y": 40}; null = the front view.
    "reference_camera": None,
    # A repaint (with the `face_mask` upload: the faces to repaint; `texture`: the texture the
    # mesh's UVs read now, kept outside the selection byte for byte):
    "border_width": 0.02,  # blended band around the selection, fraction of the bounding-box diagonal
    "region_views": 5,  # views aimed at the selection (then `fill_views` at what they missed)
    "base_color": [0.8, 0.8, 0.8],  # sRGB of the flat texture a mesh without `texture` starts from
}
TEXTURE_LIMITS: Limits = {
    "num_inference_steps": (1, 500), "guidance_scale": (0.0, 100.0), "texture_size": (1024, 4096),
    "num_views": (1, 64), "view_elevation": (-90.0, 90.0), "start_azimuth": (-360.0, 360.0),
    "view_resolution": (64, 2048), "fill_views": (0, 16), "border_width": (0.0, 0.25), "region_views": (1, 16),
    **SEED_LIMITS,
}

BACKGROUND = 0.5  # grey where the object is absent or not painted yet
BAND_QUALITY = 1e-3  # stored view quality of a repaint's border band: any view that sees it may refine it
REPAINT_LIMITS: Limits = {name: TEXTURE_LIMITS[name] for name in ("border_width", "region_views")}
MAX_TEXTURE_SIDE = 8192  # texels: the largest current texture a repaint reads


@dataclass
class PaintConfig:
    """Constants of the painting schedule.

    Attributes:
        min_quality: A view paints no texel it sees at a cosine below this (~84 degrees):
            grazing views smear.
        refine_ratio: Refine texels whose stored quality is below this fraction of the
            current view's (TEXTure's "refine" region: seen before, from a worse angle).
        refine_strength: How free refine pixels are (0 keep .. 1 generate); the SD
            generator lets them change for the last this-fraction of its steps.
        fill_min_fraction: An extra view is painted only when it would paint still-empty
            texels amounting to at least this fraction of all the surface's texels.
        reference_lock: Texels the reference image sees at least this squarely (cosine) are
            never repainted; more grazing ones, stretched in the image, may be by a view that
            sees them clearly better.
        shared_texel_note: The result notes overlapping UVs when more than this fraction of
            the layout lies on texels other triangles use too (rasterizing leaves ~0.5%).
        unseen_note: The result notes the hidden surface when at least this fraction of it is.
        min_texture_size, max_texture_size: Allowed texture sizes.
    """

    min_quality: float = 0.1
    refine_ratio: float = 0.7
    refine_strength: float = 0.5
    fill_min_fraction: float = 0.0005
    reference_lock: float = 0.5
    shared_texel_note: float = 0.02
    unseen_note: float = 0.002
    min_texture_size: int = TEXTURE_LIMITS["texture_size"][0]
    max_texture_size: int = TEXTURE_LIMITS["texture_size"][1]


@dataclass
class TextureOutput:
    """What `TexturePaintingPipeline.__call__` returns.

    Attributes:
        result: The mesh parts with their UVs and the texture, ready for GLB.
        painted: (S, S) bool, texels painted by some view (before padding).
        surface: (S, S) bool, texels that lie on the surface.
        cameras: The views, in painting order (reference first when given).
    """

    result: MeshResult
    painted: np.ndarray
    surface: np.ndarray
    cameras: list[Camera] = field(default_factory=list)


def view_prompt(prompt: str, camera: Camera) -> str:
    """Append the view direction to a prompt (DreamFusion / TEXTure view-dependent prompting)."""
    direction = -camera.forward()  # object -> eye
    elevation = math.degrees(math.asin(max(-1.0, min(1.0, direction[1]))))
    azimuth = abs(math.degrees(math.atan2(direction[0], direction[2])))
    if elevation > 60:
        side = "overhead view"
    elif elevation < -60:
        side = "bottom view"
    else:
        side = "front view" if azimuth <= 45 else "back view" if azimuth >= 135 else "side view"
    return f"{prompt}, {side}" if prompt else side


class TexturePaintingPipeline:
    """Multi-view texture painting (TEXTure / Text2Tex style).

    Args:
        view_generator: Paints one view (see `backend.texture.views.ViewGenerator`).
        device: Where rasterization and baking run ("cuda", "mps" or "cpu"; nvdiffrast only on CUDA).
        config: Painting constants.
        rasterizer: "auto", "torch" or "nvdiffrast".
    """

    def __init__(self, view_generator: ViewGenerator, device: str | torch.device = "cpu",
                 config: Optional[PaintConfig] = None, rasterizer: str = "auto"):
        self.view_generator = view_generator
        self.device = torch.device(device)
        self.config = config or PaintConfig()
        self.rasterizer = rasterizer

    def check_inputs(self, parts, prompt, texture_size, num_views, view_resolution, num_inference_steps,
                     guidance_scale, reference_image, view_elevation=0.0, start_azimuth=0.0, fill_views=0):
        if not parts:
            raise InputError("the mesh has no parts to texture")
        for p in parts:
            v = np.asarray(p.vertices)
            if len(v) == 0 or len(p.faces) == 0:
                raise InputError(f"part {p.name!r} has no triangles to texture")
            if not np.isfinite(v).all():
                raise InputError(f"part {p.name!r} has vertices that are NaN or infinite")
        _check_prompt(prompt, reference_image is not None)
        lo, hi = self.config.min_texture_size, self.config.max_texture_size
        if not isinstance(texture_size, int) or not lo <= texture_size <= hi:
            raise InputError(f"texture_size must be a whole number from {lo} to {hi} texels, got {texture_size!r}")
        check_limits(dict(num_views=num_views, view_resolution=view_resolution, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, view_elevation=view_elevation, start_azimuth=start_azimuth,
                          fill_views=fill_views),
                     TEXTURE_LIMITS)
        if view_resolution % 8:
            raise InputError(f"view_resolution must be a multiple of 8 (Stable Diffusion's latent grid), got {view_resolution}")

    @torch.no_grad()
    def __call__(
        self,
        parts: Sequence[MeshPart],
        prompt: str = "",
        negative_prompt: str = "",
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        seed: int = 0,
        texture_size: int = 1024,
        cameras: Optional[Sequence[Camera]] = None,
        num_views: int = 8,
        view_elevation: float = 15.0,
        top_and_bottom: bool = True,
        start_azimuth: float = 0.0,
        view_resolution: int = 512,
        fill_views: int = 2,
        view_prompts: bool = True,
        reference_image: Optional[np.ndarray] = None,
        reference_camera: Optional[Camera | dict] = None,
        callback: StepCallback = no_progress,
    ) -> TextureOutput:
        """Paint a texture onto the parts.

        Args:
            parts: Mesh parts in glTF axes; their UVs are kept when they have them.
            prompt, negative_prompt: What to paint / avoid.
            num_inference_steps, guidance_scale: Passed to the view generator.
            seed: View i is generated with seed + i.
            texture_size: The texture is texture_size x texture_size.
            cameras: Explicit views (overrides the placement arguments below; fill views still follow).
            num_views, view_elevation, top_and_bottom, start_azimuth: The default view ring.
            view_resolution: Pixels per side of each generated view.
            fill_views: After those views, at most this many more, each from the direction that
                sees most of what is still unpainted (a mug's inside); 0 = none.
            view_prompts: Append the view direction ("back view") to the prompt per view.
            reference_image: (H, W, 3|4) uint8 or float image to project first (alpha < 0.5 ignored).
            reference_camera: Its camera (a Camera or {"eye", "target", "up", "fov_y"}); None = front.
            callback: Progress: phase "prepare" (UVs, surface texels), then "paint", one step
                per view (the total counts every fill view allowed, and drops to the views painted
                at the end). Previews: the view about to be painted, as the texture shows it so
                far, then the painted view. Called again after every denoising step (same step,
                `within` = how far the view is). It may raise JobCancelled, which propagates.

        Returns:
            The textured mesh and coverage masks.
        """
        # 1. Check inputs. Raise error if not correct
        self.check_inputs(parts, prompt, texture_size, num_views, view_resolution, num_inference_steps,
                          guidance_scale, reference_image, view_elevation, start_azimuth, fill_views)
        config, device = self.config, self.device
        callback("prepare", 0, 1)  # an unwrap of a dense mesh takes a while

        # 2. Texture coordinates: the mesh's own, else an xatlas unwrap. What the artist should
        # know goes to the result's notes (the add-on's job box and the CLI show them).
        notes = [f"{p.name!r} was unwrapped anew: {why}" for p in parts
                 if p.uv is not None and (why := uv_problem(p.uv, p.faces))]
        parts, uv_note = ensure_part_uvs(parts, texture_size, on_wait=lambda: callback("prepare", 0, 1))  # cancellable
        vertices, faces, uv, wrap_note = _merged_for_painting(parts, device)  # (V, 3), (F, 3), (V, 2)
        uv_note += wrap_note

        # 3. Surface texels: rasterize the UV layout once
        projector = TextureProjector(vertices, faces, uv, texture_size, min_quality=config.min_quality)
        if len(projector.samples.index) == 0:
            raise InputError("the mesh's UVs cover no texel of the texture (all triangles degenerate in UV space?)")
        shared = shared_texel_fraction(uv.cpu().numpy(), faces.cpu().numpy(), len(projector.samples.index), texture_size)
        if shared > config.shared_texel_note:
            notes.append(f"{shared:.0%} of the UV layout lies where other triangles' UVs lie too (mirrored halves, "
                         "or one layout per material), so those places share one colour: unwrap it for distinct colours")
            uv_note += f"; {notes[-1]}"
        callback("prepare", 1, 1)

        # 4. Views
        if cameras is None:
            cameras = default_views(vertices, num_azimuths=num_views, elevation=view_elevation,
                                    top_and_bottom=top_and_bottom, start_azimuth=start_azimuth, width=view_resolution)
        cameras = list(cameras)
        total = len(cameras) + (reference_image is not None) + fill_views
        step = 0

        # 5. Project the reference image first; the views then fill what it does not cover
        if reference_image is not None:
            image, alpha = _image_to_tensor(reference_image, device)
            camera = _reference_camera(reference_camera, vertices, image.shape[1], image.shape[0], view_resolution)
            fragments = rasterize(vertices, faces, camera, backend=self.rasterizer)
            view = projector.visibility(camera, fragments)
            opaque = F.grid_sample(alpha[None, None], view.grid[None, None], align_corners=False)[0, 0, 0] > 0.5
            locked = torch.where(view.quality >= config.reference_lock, torch.ones_like(view.quality), view.quality)
            if projector.bake(image, dataclasses.replace(view, quality=locked), opaque) == 0:
                raise InputError("the reference image covers no part of the mesh from its camera; check reference_camera")
            step += 1
            resized = F.interpolate(image.permute(2, 0, 1)[None], size=fragments.shape, mode="bilinear", antialias=True)
            shown = _preview(resized[0].permute(1, 2, 0), fragments.mask)
            callback("paint", step, total, shown)
            cameras.insert(0, camera)

        # 6. Paint view after view, then views aimed at what those missed
        settings = dict(prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
                        guidance_scale=guidance_scale, seed=seed, view_prompts=view_prompts)
        step, fills_left = self._paint_views(projector, vertices, faces, uv, cameras, int(reference_image is not None),
                                             fill_views, vertices, view_resolution, settings, callback, step, total)

        # 7. Pad in UV space and assemble the result
        color, painted = projector.texture()
        if not bool(painted.any()):
            raise GenerationFailed("no view saw the mesh: nothing was painted (is it degenerate or far off-centre?)")
        surface = projector.surface_mask()
        unseen = float((surface & ~painted).sum()) / float(surface.sum())
        padded, _ = pad_texture(color, painted)
        texture = (padded.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()  # (S, S, 3)
        metadata = {
            "texture": {"prompt": prompt, "negative_prompt": negative_prompt, "size": texture_size, "views": len(cameras),
                        "fill_views": fill_views - fills_left, "average_color": _average_linear(color[painted]),
                        "reference_image": reference_image is not None, "unseen_fraction": round(unseen, 4), "uv": uv_note},
        }
        if unseen > 0:
            metadata["texture"]["note"] = (f"{unseen:.1%} of the surface was hidden from every view; "
                                           "it took the colour of the nearest painted texel")
        if unseen >= config.unseen_note:
            more = fill_views < TEXTURE_LIMITS["fill_views"][1]
            notes.append(metadata["texture"]["note"] + (" (more fill views, 'Extra' in Blender, may reach it)" if more else ""))
        if notes:
            metadata["notes"] = notes
        # Without vertex colours: glTF multiplies them into the texture, tinting the paint.
        result = MeshResult(parts=[dataclasses.replace(p, vertex_colors=None) for p in parts], texture=texture,
                            metadata=metadata)
        return TextureOutput(result=result, painted=painted.cpu().numpy(), surface=surface.cpu().numpy(), cameras=cameras)

    @torch.no_grad()
    def repaint(
        self,
        parts: Sequence[MeshPart],
        selected: np.ndarray,
        base_texture: Optional[np.ndarray] = None,
        prompt: str = "",
        negative_prompt: str = "",
        num_inference_steps: int = 30,
        guidance_scale: float = 7.5,
        seed: int = 0,
        border_width: float = 0.02,
        region_views: int = 5,
        view_resolution: int = 512,
        fill_views: int = 2,
        view_prompts: bool = True,
        texture_size: int = 1024,
        base_color: Sequence[float] = (0.8, 0.8, 0.8),
        callback: StepCallback = no_progress,
    ) -> TextureOutput:
        """Repaint the texels of the selected triangles; the rest of the texture keeps its bytes.

        Views are aimed at the selection; it is painted anew (the model sees the texture around
        it), a band `border_width` wide around it is refined and blended into the original, and
        every other texel stays as it was (`backend.texture.region` says exactly which change).

        Args:
            parts: Mesh parts in glTF axes. With `base_texture` their UVs are used as they are.
            selected: (T,) bool per triangle, the parts' triangles in order.
            base_texture: (H, W, 3|4) uint8, the texture those UVs read now. None: a flat
                `base_color` texture of `texture_size` (parts without UVs are unwrapped).
            border_width: The blended band's width, as a fraction of the bounding-box diagonal.
            region_views: Views aimed at the selection (then up to `fill_views` at what they missed).
            base_color: sRGB in [0, 1] of the flat texture when there is no `base_texture`.
            prompt, negative_prompt, num_inference_steps, guidance_scale, seed, view_resolution,
            view_prompts, callback: As for `__call__`.

        Returns:
            The parts (their UVs as they were) with the repainted texture; `painted` and
            `surface` cover the region's texels only.
        """
        config, device = self.config, self.device
        size = texture_size if base_texture is None else config.min_texture_size  # a given texture keeps its size
        self.check_inputs(parts, prompt, size, region_views, view_resolution, num_inference_steps, guidance_scale, None,
                          fill_views=fill_views)
        selected = _check_selection(selected, sum(len(p.faces) for p in parts))
        check_limits(dict(border_width=border_width, region_views=region_views), REPAINT_LIMITS)
        callback("prepare", 0, 1)
        if base_texture is None:
            parts, uv_note = ensure_part_uvs(parts, texture_size, on_wait=lambda: callback("prepare", 0, 1))
            base_texture = np.empty((texture_size, texture_size, 3), np.uint8)
            base_texture[:] = np.round(np.clip(np.asarray(base_color, np.float64), 0, 1) * 255).astype(np.uint8)
        else:
            base_texture = _check_base_texture(base_texture)
            bare = [p.name for p in parts if p.uv is None]
            if bare:
                raise InputError(f"{', '.join(map(repr, bare))} has no UVs, so its texture cannot be repainted in place: "
                                 "send the mesh with the UV map its material reads")
            uv_note = "the mesh's own UVs"
        vertices, faces, uv, wrap_note = _merged_for_painting(parts, device)
        height, width = base_texture.shape[:2]
        box = vertices.max(0).values - vertices.min(0).values
        chosen = torch.from_numpy(selected).to(device)  # (F,) bool
        plan = plan_region(vertices, faces, uv, chosen, height, width,
                           border=border_width * float(box.norm()))
        if not bool(plan.selected.any()):
            raise InputError("the selected faces cover no texel of the texture of their own (no UV area, or every "
                             "texel is shared with unselected faces through overlapping UVs)")
        projector = TextureProjector(vertices, faces, uv, (height, width), min_quality=config.min_quality, samples=plan.samples)
        base = torch.from_numpy(base_texture[..., :3].astype(np.float32) / 255).to(device)  # (H, W, 3)
        band = ~plan.selected
        projector.color[band] = base.view(-1, 3)[plan.samples.index[band]]
        projector.quality[band] = BAND_QUALITY  # painted before, from the worst angle: every view may refine it
        region = torch.zeros(height * width, dtype=torch.bool, device=device)
        region[plan.samples.index] = True
        ring = F.max_pool2d(region.view(1, 1, height, width).float(), 3, 1, 1)[0, 0] > 0  # region and the texels next to it
        projector.keep_outside(base, plan.covered | ~ring)  # the gutter right by the region shows nothing yet
        callback("prepare", 1, 1)

        cameras = region_cameras(vertices, faces, chosen, region_views, view_resolution)
        settings = dict(prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
                        guidance_scale=guidance_scale, seed=seed, view_prompts=view_prompts)
        framed = vertices[faces[chosen].reshape(-1)]
        _, fills_left = self._paint_views(projector, vertices, faces, uv, cameras, 0, fill_views, framed,
                                          view_resolution, settings, callback, 0, len(cameras) + fill_views)

        # Selected texels no view saw take the nearest colour shown, as in a full texture.
        color, shown = projector.texture()
        unseen = plan.selected & (projector.quality <= 0)
        if bool(unseen.any()):
            color = pad_texture(color, shown)[0]
        new = color.view(-1, 3)[plan.samples.index]
        texture, changed = merge_region(base_texture, plan, new)
        unseen_fraction = float(unseen.sum()) / float(plan.selected.sum())
        metadata = {"texture": {
            "prompt": prompt, "negative_prompt": negative_prompt, "size": [width, height], "views": len(cameras),
            "fill_views": fill_views - fills_left, "average_color": _average_linear(new[plan.selected]),
            "unseen_fraction": round(unseen_fraction, 4), "uv": uv_note + wrap_note,
            "repaint": {"selected_triangles": int(selected.sum()), "border_width": border_width,
                        "changed_texels": int(changed.sum()), "shared_texels_kept": plan.shared},
        }}
        notes = []
        if plan.shared:
            notes.append(f"{plan.shared} texels of the selection are used by unselected faces too (overlapping UVs) "
                         "and were kept")
        if unseen_fraction >= config.unseen_note:
            notes.append(f"{unseen_fraction:.1%} of the selection was hidden from every view; it took the colour "
                         "of the nearest painted texel")
        if notes:
            metadata["notes"] = notes
        result = MeshResult(parts=[dataclasses.replace(p, vertex_colors=None) for p in parts], texture=texture,
                            metadata=metadata)
        return TextureOutput(result=result, painted=changed, surface=region.view(height, width).cpu().numpy(),
                             cameras=cameras)

    def _paint_views(self, projector: TextureProjector, vertices, faces, uv, cameras: list[Camera], first: int,
                     fill_views: int, framed, view_resolution: int, settings: dict[str, Any], callback: StepCallback,
                     step: int, total: int) -> tuple[int, int]:
        """Paint `cameras[first:]` in order, then up to `fill_views` views aimed at what they
        missed (appended to `cameras`), each framing `framed` (vertices).

        Returns:
            (progress step reached, fill views not used).
        """
        fills_left, fill_directions, shown = fill_views, set(), None
        min_fill = max(1, round(self.config.fill_min_fraction * len(projector.samples.index)))
        for i in itertools.count():
            if first + i == len(cameras):
                extra = best_fill_view(projector, vertices, faces, min_fill, view_resolution, fill_directions,
                                       self.rasterizer, framed=framed) if fills_left else None
                if extra is None:
                    break
                cameras.append(extra)
                fills_left -= 1
            camera = cameras[first + i]
            fragments = rasterize(vertices, faces, camera, backend=self.rasterizer)
            request = self.prepare_view(vertices, faces, uv, projector, camera, fragments)
            view, update = self.texels_to_bake(projector, camera, fragments, request)
            if bool(update.any()):
                prompt = settings["prompt"]
                request.prompt = view_prompt(prompt, camera) if settings["view_prompts"] else prompt
                request.negative_prompt = settings["negative_prompt"]
                request.view_index, request.guidance_scale = i, settings["guidance_scale"]
                request.num_inference_steps = steps = settings["num_inference_steps"]
                request.generator = torch.Generator(device="cpu").manual_seed(int(settings["seed"]) + i)
                request.on_step = _denoising_progress(callback, step, total, steps)  # a cancel stops within a step
                callback("paint", step, total, _preview(request.image, fragments.mask))  # the view being painted, so far
                image = self.view_generator(request).to(self.device, torch.float32)
                projector.bake(image, view, update)
            else:
                image = request.image  # nothing this view could add: earlier views saw all of it better
            step += 1
            shown = _preview(image, fragments.mask)
            callback("paint", step, total, shown)
        if 0 < step < total:  # fewer fill views were needed than allowed: the job ends at its real count
            callback("paint", step, step, shown)
        return step, fills_left

    def prepare_view(self, vertices, faces, uv, projector: TextureProjector, camera: Camera, fragments) -> ViewRequest:
        """Render what one view needs: depth, the current texture, and the keep/refine/generate mask.

        Args:
            vertices, faces, uv: The merged mesh.
            projector: The texture so far.
            camera: The view.
            fragments: `rasterize` output for that view.

        Returns:
            A request with prompt fields still empty.
        """
        config = self.config
        mask = fragments.mask  # (H, W)
        pixel_uv = interpolate(uv, fragments, faces).remainder(1.0)  # (H, W, 2); the texture repeats (straddling triangles)
        position = interpolate(vertices, fragments, faces)  # (H, W, 3)
        eye = torch.tensor(camera.eye, device=vertices.device, dtype=vertices.dtype)
        to_eye = F.normalize(eye - position, dim=-1)
        quality = (render_normals(vertices, faces, fragments) * to_eye).sum(-1).abs() * mask  # (H, W)
        # The texture as it looks from here: a pixel shows paint when a texel its lookup reads is painted.
        color, painted = projector.texture()
        current, weight = sample_texture(color, pixel_uv, painted.float())  # (H, W, 3)
        shows_paint = mask & (weight > 1e-8)
        current = torch.where(shows_paint[..., None], current, torch.full_like(current, BACKGROUND))
        # Best stored quality around each pixel's UV (a 3x3 max covers every texel that lookup reads).
        stored = F.max_pool2d(projector.quality_map()[None, None], 3, 1, 1)[0, 0]  # (S, S)
        known, _ = sample_texture(stored[..., None], pixel_uv, mode="nearest")
        known = known[..., 0] * mask  # (H, W)
        # TEXTure's trimap: generate where nothing shows yet, refine where seen before at a clearly
        # worse angle, keep the rest. Grazing pixels may be generated too: the model sees a whole
        # region, and the bake never writes texels seen that badly.
        usable = mask & _smooth_depth(fragments.depth, quality, camera)
        generate = usable & ~shows_paint
        refine = usable & shows_paint & (known < config.refine_ratio * quality)
        free = generate.float() + config.refine_strength * refine.float()  # (H, W)
        depth = fragments.depth
        disparity = torch.zeros_like(depth)
        if bool(mask.any()):
            # MiDaS-like: inverse depth, nearest point 1, farthest 0.1, background 0.
            inv = torch.where(mask, 1.0 / depth, torch.zeros_like(depth))
            lo, hi = inv[mask].min(), inv[mask].max()
            disparity = torch.where(mask, 0.1 + 0.9 * (inv - lo) / (hi - lo).clamp(min=1e-8), disparity)
        return ViewRequest(prompt="", negative_prompt="", camera=camera, depth=depth, disparity=disparity,
                           object_mask=mask, image=current, mask=free, shows_paint=shows_paint)

    def texels_to_bake(self, projector: TextureProjector, camera: Camera, fragments,
                       request: ViewRequest) -> tuple[ViewVisibility, torch.Tensor]:
        """Which texels the view's image will be baked into, known before it is painted.

        A texel painted before takes the view when the view sees it clearly better and every
        pixel its lookup reads is free; an empty texel when each of those pixels is free or
        shows earlier paint (never the grey background kept where nothing is painted yet).

        Args:
            projector: The texture.
            camera, fragments: The view.
            request: From `prepare_view` (its `mask` and `shows_paint`).

        Returns:
            (the view's visible texels, (n,) bool over them: written by this view).
        """
        view = projector.visibility(camera, fragments)
        stored = projector.quality[view.texels]
        free = request.mask > 0
        readable = free if request.shows_paint is None else free | request.shows_paint
        empty = (stored <= 0) & (min_around(readable, view.grid) > 0)
        better = (stored > 0) & (stored < self.config.refine_ratio * view.quality) & (min_around(free, view.grid) > 0)
        return view, empty | better


# --- registry adapters ------------------------------------------------------------------


def load_texture_pipeline(options: Any) -> TexturePaintingPipeline:
    """Load Stable Diffusion 2 depth and wrap it in the painting pipeline.

    Args:
        options: `backend.models.LoadOptions`; its `attention_slicing` and `cpu_offload` (CUDA
            only: 3.1 GB -> 2.0 GB peak in fp16, ~3x slower) trade speed for VRAM.

    Returns:
        The pipeline.

    Raises:
        ModelUnavailable: the weights are not here and downloads are off (the message says how to get them).
    """
    from ..texture.sd_depth import DEFAULT_MODEL, DepthViewGenerator

    generator = DepthViewGenerator.from_pretrained(DEFAULT_MODEL, **_loading(options))
    return TexturePaintingPipeline(generator, device=options.device)


def load_controlnet_texture_pipeline(options: Any) -> TexturePaintingPipeline:
    """Load SD 1.5 inpainting with the depth ControlNet and wrap it in the painting pipeline.

    Args:
        options: As for `load_texture_pipeline`.

    Returns:
        The pipeline.

    Raises:
        ModelUnavailable: either model is not here and downloads are off (the message names it).
    """
    from ..texture.controlnet_depth import DEFAULT_BASE, DEFAULT_CONTROLNET, ControlNetDepthViewGenerator

    generator = ControlNetDepthViewGenerator.from_pretrained(DEFAULT_BASE, DEFAULT_CONTROLNET, **_loading(options))
    return TexturePaintingPipeline(generator, device=options.device)


def _loading(options: Any) -> dict[str, Any]:
    """The `from_pretrained` keywords a view generator takes from the backend's LoadOptions."""
    return dict(device=options.device, dtype=options.dtype, allow_downloads=options.allow_downloads,
                cache_dir=options.cache_dir, attention_slicing=options.attention_slicing, cpu_offload=options.cpu_offload)


def check_texture_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """What is refused before a job is queued or its model loads: nothing to paint from, a
    reference camera that is not one, a repaint without a prompt or with a reference image."""
    repaint = bool(files.get("face_mask"))
    if repaint and files.get("image"):
        raise InputError("a repaint (face_mask) paints from the prompt alone: leave out the reference image")
    if files.get("texture") and not repaint:
        raise InputError("the `texture` upload is the current texture a repaint keeps: send face_mask with it, "
                         "naming the faces to repaint")
    if repaint:
        _base_color(params.get("base_color", TEXTURE_PARAMS["base_color"]))
    _check_prompt(params.get("prompt", ""), bool(files.get("image")))
    if params.get("reference_camera") is not None:
        camera_numbers(params["reference_camera"])


def _base_color(value: Any) -> tuple[float, float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 1 for c in value)):
        raise InputError(f"base_color must be three numbers from 0 to 1 (sRGB), got {value!r}")
    return tuple(float(c) for c in value)


def _check_prompt(prompt: Any, has_reference: bool) -> None:
    if not isinstance(prompt, str):
        raise InputError("prompt must be text")
    if not prompt.strip() and not has_reference:
        raise InputError("describe the texture in `prompt` (e.g. \"weathered bronze statue\") or upload a reference image")


def run_texture(pipe: TexturePaintingPipeline, params: dict[str, Any], files: dict[str, bytes],
                callback: StepCallback) -> MeshResult:
    """Registry entry: texture the uploaded mesh.

    Args:
        pipe: From `load_texture_pipeline`.
        params: TEXTURE_PARAMS plus `seed`.
        files: "mesh" (GLB, required), "image" (PNG/JPEG reference, optional).
        callback: Progress; may raise JobCancelled.

    Returns:
        The same geometry (split at new UV seams), its UVs and the texture.
    """
    from ..geometry.glb import read_glb_meshes

    if "mesh" not in files:
        raise InputError("the texture task needs the mesh to paint: upload it as the `mesh` file (GLB)")
    parts, _ = read_glb_meshes(files["mesh"], centre_far_off=True)  # a scan at survey coordinates keeps its detail
    p = {**TEXTURE_PARAMS, **params}
    # The projection samples it at about the view's resolution: a photo's full size would only cost memory.
    reference = _read_image(files["image"], max_side=2 * int(p["view_resolution"])) if files.get("image") else None
    camera = params.get("reference_camera")
    if camera is not None and reference is None:
        raise InputError("reference_camera was given without a reference image: upload it as the `image` file")
    camera = _centred_camera(camera, parts[0].origin)
    seed = draw_seed() if p.get("seed") is None else int(p["seed"])
    if files.get("face_mask"):
        return _run_repaint(pipe, parts, p, files, seed, callback)
    output = pipe(
        parts, prompt=p["prompt"], negative_prompt=p["negative_prompt"],
        num_inference_steps=int(p["num_inference_steps"]), guidance_scale=float(p["guidance_scale"]), seed=seed,
        texture_size=p["texture_size"], num_views=int(p["num_views"]), view_elevation=float(p["view_elevation"]),
        top_and_bottom=bool(p["top_and_bottom"]), start_azimuth=float(p["start_azimuth"]),
        view_resolution=int(p["view_resolution"]), fill_views=int(p["fill_views"]), view_prompts=bool(p["view_prompts"]),
        reference_image=reference, reference_camera=camera, callback=callback,
    )
    output.result.metadata["texture"]["seed"] = seed
    return output.result


def _run_repaint(pipe: TexturePaintingPipeline, parts: list[MeshPart], p: dict[str, Any], files: dict[str, bytes],
                 seed: int, callback: StepCallback) -> MeshResult:
    """The `texture` task with a face mask: repaint the selected faces of `files["texture"]`."""
    selected = np.frombuffer(files["face_mask"], dtype=np.uint8) != 0
    base = np.asarray(read_image(files["texture"], "the current texture")) if files.get("texture") else None
    output = pipe.repaint(
        parts, selected, base_texture=base, prompt=p["prompt"], negative_prompt=p["negative_prompt"],
        num_inference_steps=int(p["num_inference_steps"]), guidance_scale=float(p["guidance_scale"]), seed=seed,
        border_width=float(p["border_width"]), region_views=int(p["region_views"]),
        view_resolution=int(p["view_resolution"]), fill_views=int(p["fill_views"]), view_prompts=bool(p["view_prompts"]),
        texture_size=int(p["texture_size"]), base_color=_base_color(p["base_color"]), callback=callback,
    )
    output.result.metadata["texture"]["seed"] = seed
    return output.result


# --- helpers ----------------------------------------------------------------------------


def _read_image(data: bytes, max_side: int) -> np.ndarray:
    """The reference image as RGB(A) uint8, shrunk (aspect kept) to at most `max_side` pixels a side."""
    image = read_image(data, "the reference image")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(image)


def _image_to_tensor(image: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) float colour and (H, W) alpha in [0, 1] from a uint8 or float image."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"the reference image must be RGB or RGBA, got an array of shape {array.shape}")
    t = torch.from_numpy(array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)).to(device)
    alpha = t[..., 3] if t.shape[2] == 4 else torch.ones_like(t[..., 0])
    return t[..., :3].clamp(0, 1), alpha


def _centred_camera(spec, origin: Optional[np.ndarray]):
    """A reference_camera dict given in the file's frame, moved into the frame of a mesh read
    centred (`read_glb_meshes(centre_far_off=True)`); anything else as it came."""
    if origin is None or not isinstance(spec, dict) or "eye" not in spec:
        return spec
    try:
        eye, target = (np.asarray(spec.get(key, (0.0, 0.0, 0.0)), np.float64) for key in ("eye", "target"))
    except (TypeError, ValueError):
        return spec  # _reference_camera says what is wrong with it
    if eye.shape != (3,) or target.shape != (3,):
        return spec
    return {**spec, "eye": (eye - origin).tolist(), "target": (target - origin).tolist()}


def camera_numbers(spec: Any) -> tuple[tuple, tuple, tuple, float]:
    """(eye, target, up, fov_y) of a reference_camera dict, checked.

    Raises:
        InputError: what is wrong with it, when it is submitted (and when it is used).
    """
    if not isinstance(spec, dict) or "eye" not in spec:
        raise InputError('reference_camera must be {"eye": [x, y, z], "target": [x, y, z], "up": [x, y, z], "fov_y": degrees}')
    try:
        eye = tuple(float(x) for x in spec["eye"])
        target = tuple(float(x) for x in spec.get("target", (0.0, 0.0, 0.0)))
        up = tuple(float(x) for x in spec.get("up", (0.0, 1.0, 0.0)))
        fov = float(spec.get("fov_y", 40.0))
    except (TypeError, ValueError, OverflowError):
        raise InputError("reference_camera eye/target/up must be three numbers each, fov_y a number") from None
    if not np.isfinite([*eye, *target, *up, fov]).all():
        raise InputError("reference_camera eye/target/up/fov_y must be finite numbers, not NaN or infinity")
    if len(eye) != 3 or len(target) != 3 or len(up) != 3 or not 1.0 <= fov <= 170.0:
        raise InputError("reference_camera needs 3-number eye/target/up and fov_y between 1 and 170 degrees")
    return eye, target, up, fov


def _reference_camera(spec, vertices, width: int, height: int, resolution: int) -> Camera:
    """The reference image's camera at the image's aspect (longest side = resolution)."""
    scale = resolution / max(width, height)
    w, h = max(8, round(width * scale)), max(8, round(height * scale))
    if spec is None:
        return frame_camera(vertices, 0.0, 0.0, width=w, height=h)
    if isinstance(spec, Camera):
        return spec.with_size(w, h)
    eye, target, up, fov = camera_numbers(spec)
    distance = float(np.linalg.norm(np.subtract(eye, target)))
    if distance <= 0:
        raise InputError("reference_camera eye and target are the same point")
    far = distance + 10 * float((vertices - torch.tensor(target, device=vertices.device)).norm(dim=1).max())
    try:
        look_at(eye, target, up)
    except ValueError as e:
        raise InputError(f"reference_camera: {e}") from None
    return Camera(eye=eye, target=target, up=up, fov_y=fov, width=w, height=h, near=distance * 1e-3, far=far)


def _smooth_depth(depth: torch.Tensor, quality: torch.Tensor, camera: Camera) -> torch.Tensor:
    """(H, W) bool: the pixel lies in a 2x2 block that shows one continuous surface.

    The pixel-space twin of `TextureProjector.visibility`, which bakes a texel when the 2x2
    block it lands in shows its surface: every pixel of such a block is then free to paint.
    The pixel's own angle stands in for the texel's triangle's, with some slack so the twin
    errs on the side of letting the view paint (the bake decides what it keeps).
    """
    block_max, block_min = pixel_blocks(finite_depth(depth), outside=1e30)
    spread = (block_max - block_min)[None, None]  # (1, 1, H+1, W+1)
    flattest = -F.max_pool2d(-spread, 2, 1)[0, 0]  # (H, W) the flattest of the four blocks around each pixel
    return flattest <= 2.5 * depth * depth_tolerance(quality, camera.fov_y, depth.shape[0])


def _check_selection(selected: Any, triangles: int) -> np.ndarray:
    """(T,) bool from a per-triangle mask, checked against the mesh."""
    mask = np.asarray(selected).reshape(-1)
    if len(mask) != triangles:
        raise InputError(f"the face mask has {len(mask)} entries but the mesh has {triangles} triangles (one per triangle)")
    mask = mask.astype(bool)
    if not mask.any():
        raise InputError("no face is selected: select the faces to repaint (Edit Mode, face select)")
    return mask


def _check_base_texture(texture: Any) -> np.ndarray:
    """The current texture as (H, W, 3|4) uint8, checked."""
    array = np.asarray(texture)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise InputError(f"the current texture must be an RGB or RGBA 8-bit image, got {array.dtype} {array.shape}")
    if not (8 <= min(array.shape[:2]) and max(array.shape[:2]) <= MAX_TEXTURE_SIDE):
        raise InputError(f"the current texture must be 8 to {MAX_TEXTURE_SIDE} texels a side, got "
                         f"{array.shape[1]} x {array.shape[0]}")
    return array


def _merged_for_painting(parts: Sequence[MeshPart], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """All parts as one mesh (vertices, faces, uv on `device`), triangles in the parts' order,
    and a note when some were moved.

    Painted as the texture repeats: triangles on other UV tiles are moved onto the first (for
    painting only: the result keeps the mesh's UVs as they were).
    """
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    vertex_map, faces, uv, wrapped = wrap_into_unit_square(
        np.concatenate([p.faces + o for p, o in zip(parts, offsets)]).astype(np.int64),
        np.concatenate([p.uv for p in parts]).astype(np.float32))
    vertices = np.concatenate([p.vertices for p in parts]).astype(np.float32)[vertex_map]
    note = f"; {wrapped} triangles lie outside the unit UV square and were painted where the texture repeats" if wrapped else ""
    return (*(torch.from_numpy(a).to(device) for a in (vertices, faces, uv)), note)


def _denoising_progress(callback: StepCallback, step: int, total: int, steps: int):
    """A view's `on_step`: each denoising step moves the job's progress within the view."""
    done = itertools.count(1)
    return lambda: callback("paint", step, total, within=next(done) / max(steps, 1))


def _average_linear(srgb: torch.Tensor) -> list[float]:
    """(n, 3) sRGB colours -> their mean in linear RGB, 4 decimals (what a viewport shows flat)."""
    linear = torch.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return [round(float(c), 4) for c in linear.mean(0)]


def _preview(image: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(H, W, 3) uint8 of the view, grey off the object."""
    shown = torch.where(mask[..., None], image.clamp(0, 1), torch.full_like(image, BACKGROUND))
    return (shown * 255 + 0.5).to(torch.uint8).cpu().numpy()
