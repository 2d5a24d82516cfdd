"""Texture painting: an oracle view generator must let the pipeline reproduce a known texture;
tiny Stable Diffusion depth components exercise the diffusers wiring (no GPU, no downloads)."""

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from backend.geometry.uv import ensure_part_uvs, ensure_uv, pack_in_grid, unwrap
from backend.models import LoadOptions
from backend.errors import InputError, JobCancelled, ModelUnavailable
from backend.results import MeshPart, MeshResult
from backend.pipelines.texture import (
    TEXTURE_PARAMS, TexturePaintingPipeline, load_texture_pipeline, run_texture, view_prompt,
)
from backend.render import frame_camera, interpolate, rasterize
from backend.texture import SurfaceSamples, TextureProjector, ViewGenerator, ViewRequest, pad_texture, sample_texture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
VIEW = 192  # view resolution in tests (512 in production)


def colour_field(p: torch.Tensor) -> torch.Tensor:
    """A known 3D texture: broad colour waves plus a fine checker-like detail whose period
    (0.16 units) spans a few pixels of a test view, so blur costs PSNR: painted from 64-pixel
    views instead of 192-pixel ones, the torus test falls from 39 dB to 25 dB."""
    r = 0.5 + 0.3 * torch.sin(7 * p[..., 0] + 1) * torch.cos(5 * p[..., 1])
    g = 0.5 + 0.3 * torch.sin(6 * p[..., 1] + 2 * p[..., 2])
    b = 0.5 + 0.3 * torch.cos(8 * p[..., 2] - 3 * p[..., 0])
    detail = 0.2 * torch.sin(40 * p[..., 0]) * torch.sin(40 * p[..., 1] + 1)
    return (torch.stack([r, g, b], -1) + detail[..., None]).clamp(0, 1)


def suzanne_like() -> trimesh.Trimesh:
    """A stand-in for Suzanne (bpy is not allowed in backend tests): a bumpy head with two
    ears and a snout — separate, interpenetrating shells, so parts hide each other."""
    head = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    v = head.vertices
    head.vertices = v * (1 + 0.08 * np.sin(4 * v[:, :1]) * np.sin(3 * v[:, 1:2]))[:, :1]
    ears = [trimesh.creation.icosphere(subdivisions=2, radius=0.45).apply_translation([s * 1.05, 0.35, -0.1]) for s in (-1, 1)]
    snout = trimesh.creation.icosphere(subdivisions=2, radius=0.5).apply_scale([1.0, 0.6, 0.7]).apply_translation([0, -0.3, 0.75])
    return trimesh.util.concatenate([head, *ears, snout])


JUNK = float("nan")  # what the oracles return for the grey background: a bake that reads any of it stores NaN


def obeying_the_mask(request: ViewRequest, colour: torch.Tensor) -> torch.Tensor:
    """The oracle's colour where the request lets it paint; where it says keep, the current
    paint, and junk for the grey background kept where nothing is painted yet."""
    kept = torch.where(request.shows_paint[..., None], request.image, torch.full_like(colour, JUNK))
    return torch.where(request.mask[..., None] > 0, colour, kept)


class FieldOracle:
    """View generator returning the true colours of `colour_field` on the mesh from the requested
    camera where the mask lets it paint (see `obeying_the_mask`)."""

    def __init__(self, vertices, faces):
        self.v, self.f = torch.as_tensor(vertices, dtype=torch.float32), torch.as_tensor(faces).long()
        self.calls = []

    def __call__(self, request: ViewRequest) -> torch.Tensor:
        self.calls.append(request)
        frags = rasterize(self.v, self.f, request.camera)
        colour = colour_field(interpolate(self.v, frags, self.f))
        return obeying_the_mask(request, torch.where(frags.mask[..., None], colour, torch.full_like(colour, 0.5)))


class TextureOracle:
    """View generator rendering a known UV texture image (bilinear lookup, like a GPU) where the
    mask lets it paint (see `obeying_the_mask`)."""

    def __init__(self, vertices, faces, uv, texture):
        self.v, self.f = torch.as_tensor(vertices, dtype=torch.float32), torch.as_tensor(faces).long()
        self.uv, self.texture = torch.as_tensor(uv, dtype=torch.float32), texture

    def __call__(self, request: ViewRequest) -> torch.Tensor:
        frags = rasterize(self.v, self.f, request.camera)
        colour, _ = sample_texture(self.texture, interpolate(self.uv, frags, self.f))
        return obeying_the_mask(request, torch.where(frags.mask[..., None], colour, torch.full_like(colour, 0.5)))


def psnr_against(part: MeshPart, texture: np.ndarray, truth, cameras) -> float:
    """Re-render the result from `cameras` and compare with `truth(frags, vertices, faces)` on the object."""
    tex = torch.from_numpy(texture).float() / 255
    v, f, uv = (torch.from_numpy(np.asarray(a)) for a in (part.vertices, part.faces, part.uv))
    errors = []
    for cam in cameras:
        frags = rasterize(v.float(), f.long(), cam)
        colour, _ = sample_texture(tex, interpolate(uv.float(), frags, f.long()))
        errors.append(((colour - truth(frags, v.float(), f.long())) ** 2)[frags.mask])
    mse = torch.cat(errors).mean()
    return float(-10 * torch.log10(mse))


HELD_OUT = [(22.5, -25.0), (110.0, 40.0), (200.0, 5.0), (290.0, -55.0), (60.0, 70.0)]


def held_out_cameras(vertices):
    return [frame_camera(vertices, az, el, width=VIEW) for az, el in HELD_OUT]


def test_oracle_reproduces_a_uv_texture_on_an_unwrapped_suzanne_like_mesh(finite_bakes):
    mesh = suzanne_like()
    layout = ensure_uv(mesh.vertices, mesh.faces, texture_size=1024)  # "UV-unwrapped" before we start
    v, f, uv = (torch.from_numpy(a) for a in (layout.vertices, layout.faces, layout.uv))
    # Ground truth: the colour field baked into this UV layout, padded like any texture.
    samples = SurfaceSamples.from_mesh(v, f, uv, 1024, 1024)
    truth = torch.zeros(1024 * 1024, 3)
    truth[samples.index] = colour_field(samples.position)
    filled = torch.zeros(1024 * 1024, dtype=torch.bool)
    filled[samples.index] = True
    truth, _ = pad_texture(truth.view(1024, 1024, 3), filled.view(1024, 1024))

    pipe = TexturePaintingPipeline(TextureOracle(v, f, uv, truth))
    part = MeshPart("suzanne", layout.vertices, layout.faces, uv=layout.uv)
    out = pipe([part], prompt="a monkey head", texture_size=1024, view_resolution=VIEW)
    result = out.result.parts[0]
    assert np.array_equal(result.uv, layout.uv) and np.array_equal(result.faces, layout.faces)  # UVs kept
    assert out.result.texture.shape == (1024, 1024, 3) and out.result.texture.dtype == np.uint8

    def rendered_truth(frags, vv, ff):
        colour, _ = sample_texture(truth, interpolate(uv, frags, ff))
        return colour

    assert psnr_against(result, out.result.texture, rendered_truth, held_out_cameras(v)) >= 30.0
    assert_visible_texels_painted(pipe, out, v, f, uv)


@pytest.fixture
def finite_bakes(monkeypatch):
    """Fails a test whose bake reads a pixel the oracle filled with junk (NaN)."""
    bake = TextureProjector.bake

    def checked(self, image, view, update):
        written = bake(self, image, view, update)
        assert torch.isfinite(self.color).all(), "a texel was baked from a pixel the view was told to keep"
        return written

    monkeypatch.setattr(TextureProjector, "bake", checked)


def assert_visible_texels_painted(pipe, out, v, f, uv):
    """Every surface texel that a painting view sees usably was painted."""
    projector = TextureProjector(v, f, uv, out.painted.shape[0], min_quality=pipe.config.min_quality)
    seen = torch.zeros(len(projector.samples.index), dtype=torch.bool)
    for cam in out.cameras:
        seen[projector.visibility(cam, rasterize(v, f, cam)).texels] = True
    painted = torch.from_numpy(out.painted).view(-1)[projector.samples.index]
    assert seen.sum() > 0.75 * len(seen)  # the rest lies inside other shells (ears, snout) or in deep folds
    assert not (seen & ~painted).any(), f"{int((seen & ~painted).sum())} visible texels left unpainted"


def test_oracle_reproduces_a_3d_texture_on_a_mesh_without_uvs(finite_bakes):
    mesh = trimesh.creation.torus(1.0, 0.4, major_sections=48, minor_sections=24)
    oracle = FieldOracle(mesh.vertices, mesh.faces)
    pipe = TexturePaintingPipeline(oracle)
    out = pipe([MeshPart("ring", mesh.vertices, mesh.faces)], prompt="a ring", texture_size=1024, view_resolution=VIEW)
    result = out.result.parts[0]
    assert result.uv is not None and result.uv.shape == (len(result.vertices), 2)
    assert np.array_equal(result.vertices[result.faces], mesh.vertices[mesh.faces].astype(np.float32))  # same geometry
    assert "xatlas" in out.result.metadata["texture"]["uv"]
    truth = lambda frags, vv, ff: colour_field(interpolate(vv, frags, ff))  # noqa: E731
    assert psnr_against(result, out.result.texture, truth, held_out_cameras(oracle.v)) >= 30.0
    v, f, uv = (torch.from_numpy(np.asarray(a)) for a in (result.vertices, result.faces, result.uv))
    assert_visible_texels_painted(pipe, out, v.float(), f.long(), uv.float())
    # Padding: no black texel left anywhere in the image, and seams stay hidden at lower mips
    # (an 8x box-filtered mip renders about as well as full size; unpadded, chart borders go dark).
    assert (out.result.texture.reshape(-1, 3).max(1) > 0).all()
    cams = held_out_cameras(oracle.v)[:2]
    mip = lambda tex: torch.nn.functional.avg_pool2d(torch.from_numpy(tex).permute(2, 0, 1)[None].float(), 8)  # noqa: E731
    upsampled = lambda m: (torch.nn.functional.interpolate(m, scale_factor=8.0, mode="nearest")[0].permute(1, 2, 0)).to(torch.uint8).numpy()  # noqa: E731
    padded_mip = psnr_against(result, upsampled(mip(out.result.texture)), truth, cams)
    unpadded_mip = psnr_against(result, upsampled(mip(out.result.texture * out.painted[..., None])), truth, cams)
    assert padded_mip > 20.0 and padded_mip > unpadded_mip + 3.0, (padded_mip, unpadded_mip)


def test_fill_views_paint_what_the_planned_views_missed(finite_bakes):
    """A ring's inner rim hides from the ring of views and from straight above and below;
    extra views aimed at it leave nothing visible unpainted from any direction."""
    mesh = trimesh.creation.torus(1.0, 0.4, major_sections=48, minor_sections=24)
    missed, fills, notes = [], [], []
    for fill_views in (0, 2):
        out = TexturePaintingPipeline(FieldOracle(mesh.vertices, mesh.faces))(
            [MeshPart("ring", mesh.vertices, mesh.faces)], prompt="a ring", view_resolution=VIEW, fill_views=fill_views)
        part = out.result.parts[0]
        v, f, uv = (torch.from_numpy(np.asarray(a)) for a in (part.vertices, part.faces, part.uv))
        projector = TextureProjector(v.float(), f.long(), uv.float(), 1024)
        painted = torch.from_numpy(out.painted).view(-1)[projector.samples.index]
        sweep = [frame_camera(v, az + 7, el, width=VIEW) for az in range(0, 360, 30) for el in (-75, -50, -25, 0, 25, 50, 75)]
        missed.append(sum(int((~painted[projector.visibility(c, rasterize(v.float(), f.long(), c)).texels]).sum()) for c in sweep))
        fills.append(out.result.metadata["texture"]["fill_views"])
        notes.append(" ".join(out.result.metadata.get("notes", [])))
    assert missed[0] > 1000 and fills[0] == 0  # without fill views the rim stays empty
    assert missed[1] == 0 and fills[1] == 1  # one aimed view was enough; the second was not worth painting
    # The artist is told (the job box, the command line) only where it matters.
    assert "hidden from every view" in notes[0] and "more fill views" in notes[0] and not notes[1], notes


def test_fill_views_are_ranked_by_a_sample_of_the_empty_texels_as_by_all_of_them(monkeypatch):
    """Scoring candidates on an even sample of the empty texels (fast at 4096 texels a side)
    picks a direction that sees as many empty texels as the best one counted in full."""
    from backend.texture import fill_views

    mesh = trimesh.creation.torus(1.0, 0.4, major_sections=48, minor_sections=24)
    layout = unwrap([(mesh.vertices, mesh.faces)])[0]
    v, f = torch.from_numpy(layout.vertices).float(), torch.from_numpy(layout.faces).long()
    projector = TextureProjector(v, f, torch.from_numpy(layout.uv).float(), 1024)
    for azimuth in range(0, 360, 90):  # a ring of painted views leaves the inner rim empty
        camera = frame_camera(v, azimuth, 10.0, width=VIEW)
        projector.quality[projector.visibility(camera, rasterize(v, f, camera)).texels] = 1.0
    empty = projector.quality <= 0

    def seen_in_full(direction) -> int:
        camera = frame_camera(v, *direction, width=fill_views.SCORING_RESOLUTION)
        return int(empty[projector.visibility(camera, rasterize(v, f, camera)).texels].sum())

    full = {d: seen_in_full(d) for d in fill_views.candidate_directions()}
    monkeypatch.setattr(fill_views, "SCORING_TEXELS", int(empty.sum()) // 50)  # 2% of them
    used = set()
    fill_views.best_fill_view(projector, v, f, min_texels=1, width=VIEW, used=used)
    picked = full[used.pop()]
    assert picked >= 0.97 * max(full.values()) and max(full.values()) > 2 * min(full.values()), (picked, full)


def test_uv_maps_nothing_can_be_painted_in_are_unwrapped_instead():
    """A UV map added but never unwrapped (all corners at one point) or holding NaN: the
    mesh is unwrapped as if it had none, and the metadata says why."""
    mesh = trimesh.creation.icosphere(subdivisions=2)
    nan_uv = np.full((len(mesh.vertices), 2), 0.5, np.float32)
    nan_uv[3] = np.nan
    for uv, why in ((np.zeros((len(mesh.vertices), 2), np.float32), "no area"), (nan_uv, "NaN")):
        out = TexturePaintingPipeline(FieldOracle(mesh.vertices, mesh.faces))(
            [MeshPart("ball", mesh.vertices, mesh.faces, uv=uv)], prompt="a ball", view_resolution=64)
        note, part = out.result.metadata["texture"]["uv"], out.result.parts[0]
        assert "xatlas" in note and why in note and np.isfinite(part.uv).all() and np.ptp(part.uv) > 0.5, note
        assert any("'ball' was unwrapped anew" in n and why in n for n in out.result.metadata["notes"])
        assert out.painted.sum() > 0.5 * out.surface.sum()


def test_uvs_beyond_the_unit_square_are_painted_where_the_texture_repeats(finite_bakes):
    """A layout with a piece on another UV tile (as artists' tiled or offset UVs are): Blender
    repeats the image there, so that piece must be painted at its wrapped place."""
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.6).apply_translation([-0.8, 0, 0])
    box = trimesh.creation.box((0.9, 0.9, 0.9)).apply_translation([0.8, 0, 0])
    near, far = unwrap([(ball.vertices, ball.faces), (box.vertices, box.faces)], 1024)
    far_uv = far.uv + np.array([1.0, -2.0], np.float32)  # the box's charts, two tiles away
    vertices = np.concatenate([near.vertices, far.vertices])
    faces = np.concatenate([near.faces, far.faces + len(near.vertices)])
    uv = np.concatenate([near.uv, far_uv])
    part = MeshPart("two", vertices, faces, uv=uv)
    oracle = FieldOracle(vertices, faces)
    out = TexturePaintingPipeline(oracle)([part], prompt="things", texture_size=1024, view_resolution=VIEW)
    assert np.array_equal(out.result.parts[0].uv, uv)  # the result keeps the UVs as given
    assert "12 triangles lie outside the unit UV square" in out.result.metadata["texture"]["uv"]
    repeated = MeshPart("two", vertices, faces, uv=uv % 1.0)  # how a repeating lookup reads them
    truth = lambda frags, vv, ff: colour_field(interpolate(vv, frags, ff))  # noqa: E731
    assert psnr_against(repeated, out.result.texture, truth, held_out_cameras(oracle.v)) >= 30.0


def tube(sections=32, rows=8, u_start=0.56, u_span=0.8):
    """An open tube whose UVs run from u_start to u_start + u_span around it (a seam column
    doubled), so some columns of triangles straddle u = 1 as shifted artist UVs do."""
    angle = np.linspace(0, 2 * np.pi, sections + 1)
    height = np.linspace(-0.6, 0.6, rows + 1)
    a, h = np.meshgrid(angle, height)  # (rows+1, sections+1)
    vertices = np.stack([np.cos(a), np.sin(a), h], -1).reshape(-1, 3).astype(np.float32)
    u = u_start + u_span * np.meshgrid(np.arange(sections + 1) / sections, height)[0]
    v = 0.1 + 0.8 * (h + 0.6) / 1.2
    uv = np.stack([u, v], -1).reshape(-1, 2).astype(np.float32)
    k = np.arange(rows)[:, None] * (sections + 1) + np.arange(sections)[None, :]  # lower-left corner of each quad
    faces = np.stack([k, k + 1, k + sections + 2, k, k + sections + 2, k + sections + 1], -1).reshape(-1, 3)
    return vertices, faces.astype(np.int64), uv


def test_triangles_straddling_a_uv_tile_border_are_painted_on_both_sides(finite_bakes):
    vertices, faces, uv = tube()  # u from 0.56 to 1.36: the column from 0.985 to 1.01 straddles u = 1
    oracle = FieldOracle(vertices, faces)
    pipe = TexturePaintingPipeline(oracle)
    out = pipe([MeshPart("tube", vertices, faces, uv=uv)], prompt="a tube", texture_size=1024, view_resolution=VIEW)
    # The straddling column's part beyond u = 1 reads u - 1 in [0, 0.01): surface texels, painted.
    rows = slice(int(0.15 * 1024), int(0.85 * 1024))
    assert out.surface[rows, :10].all() and out.painted[rows, :10].all()

    def wrapped_render_psnr(cameras):
        tex = torch.from_numpy(out.result.texture).float() / 255
        v, f, t = torch.from_numpy(vertices), torch.from_numpy(faces), torch.from_numpy(uv)
        errors = []
        for cam in cameras:
            frags = rasterize(v, f, cam)
            colour, _ = sample_texture(tex, interpolate(t, frags, f) % 1.0)  # a repeating lookup, per pixel
            errors.append(((colour - colour_field(interpolate(v, frags, f))) ** 2)[frags.mask])
        return float(-10 * torch.log10(torch.cat(errors).mean()))

    assert wrapped_render_psnr(held_out_cameras(oracle.v)) >= 30.0


def test_views_only_repaint_what_earlier_views_left_empty_or_saw_badly():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    oracle = FieldOracle(mesh.vertices, mesh.faces)
    front = frame_camera(mesh.vertices, 0, 0, width=96)
    cams = [front, front, frame_camera(mesh.vertices, 180, 0, width=96), frame_camera(mesh.vertices, 45, 0, width=96)]
    TexturePaintingPipeline(oracle)([MeshPart("s", mesh.vertices, mesh.faces)], prompt="ball", cameras=cams, fill_views=0)
    masks = [r.mask for r in oracle.calls]
    assert len(oracle.calls) == 3  # the repeated front view had nothing to paint and was skipped
    first = masks[0][oracle.calls[0].object_mask]
    assert (first == 1).float().mean() > 0.9 and ((first == 0) | (first == 1)).all()  # generate all but silhouettes
    back = masks[1][oracle.calls[1].object_mask]
    assert (back == 1).float().mean() > 0.9  # the back was empty
    side = masks[2][oracle.calls[2].object_mask]
    keep, refine, generate = (side == 0).float().mean(), (side == 0.5).float().mean(), (side == 1).float().mean()
    # Front and back left the band round the silhouette empty or grazed; the rest is kept.
    assert keep > 0.3 and refine > 0.02 and generate < 0.4, (keep, refine, generate)
    assert oracle.calls[0].prompt == "ball, front view" and oracle.calls[1].prompt == "ball, back view"
    assert oracle.calls[0].disparity.max() == pytest.approx(1.0) and (oracle.calls[0].disparity[~oracle.calls[0].object_mask] == 0).all()


def test_reference_image_is_projected_first_and_views_fill_the_rest():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    blue = np.zeros((80, 120, 4), np.uint8)
    blue[..., 2] = 255
    blue[..., 3] = 255
    red = lambda request: torch.tensor([1.0, 0.0, 0.0]).expand(*request.image.shape[:2], 3)  # noqa: E731
    out = TexturePaintingPipeline(red)(
        [MeshPart("s", mesh.vertices, mesh.faces)], prompt="", num_views=4, view_resolution=96, reference_image=blue,
        reference_camera={"eye": [0, 0, 4], "target": [0, 0, 0], "fov_y": 45})
    part, tex = out.result.parts[0], out.result.texture
    assert out.result.metadata["texture"]["reference_image"] and len(out.cameras) == 7
    uv_front = part.uv[np.argmax(part.vertices[:, 2])]  # the vertex facing the reference camera
    uv_back = part.uv[np.argmin(part.vertices[:, 2])]
    texel = lambda uv: tex[min(int(uv[1] * 1024), 1023), min(int(uv[0] * 1024), 1023)]  # noqa: E731
    assert tuple(texel(uv_front)) == (0, 0, 255) and tuple(texel(uv_back)) == (255, 0, 0)
    # Every texel the reference saw squarely keeps it (later views only fill around it); the
    # grazing rim it stretched may be repainted by views that see it better.
    v, f, uv = (torch.from_numpy(np.asarray(a)) for a in (part.vertices, part.faces, part.uv))
    projector = TextureProjector(v.float(), f.long(), uv.float(), 1024)
    seen = projector.visibility(out.cameras[0], rasterize(v.float(), f.long(), out.cameras[0]))
    blue = (tex.reshape(-1, 3)[projector.samples.index[seen.texels].numpy()] == (0, 0, 255)).all(1)
    square = (seen.quality >= 0.5).numpy()
    assert square.sum() > 10000 and blue[square].all() and not blue[~square].all()
    mean_red, mean_green, mean_blue = out.result.metadata["texture"]["average_color"]  # linear, painted texels
    assert mean_green == 0 and 0.3 < mean_red < 0.9 and 0.1 < mean_blue < 0.7
    assert mean_red + mean_blue == pytest.approx(1.0, abs=1e-3)


def without_unwrap_heartbeats(calls: list) -> list:
    """The progress calls without the repeats of "prepare 0" made while xatlas works (each may cancel)."""
    return [c for i, c in enumerate(calls) if not (i and c[0] == "prepare" and c == calls[i - 1])]


def test_progress_previews_and_cancel():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    pipe = TexturePaintingPipeline(FieldOracle(mesh.vertices, mesh.faces))
    calls, previews = [], []

    def callback(phase, step, total, preview=None, within=0.0):
        calls.append((phase, step, total, None if preview is None else (preview.shape, preview.dtype)))
        if preview is not None:
            previews.append(preview)
        if phase == "paint" and step == 2:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        pipe([MeshPart("s", mesh.vertices, mesh.faces)], prompt="x", view_resolution=64, callback=callback)
    view = ((64, 64, 3), np.uint8)
    assert without_unwrap_heartbeats(calls) == [("prepare", 0, 1, None), ("prepare", 1, 1, None),  # unwrap, texels
                     ("paint", 0, 12, view), ("paint", 1, 12, view),  # view 1 about to be painted, then painted
                     ("paint", 1, 12, view), ("paint", 2, 12, view)]  # 10 views + 2 fill views in all
    grey = (previews[0] == 128).all(-1)
    assert grey.mean() > 0.99 and (previews[1] != 128).any(-1).mean() > 0.2  # nothing painted yet, then the view
    assert (previews[2] != 128).any(-1).mean() > 0.1  # view 2 starts from what view 1 left


@pytest.mark.parametrize("kwargs, message", [
    ({"texture_size": 512}, "texture_size"),
    ({"texture_size": 8192}, "texture_size"),
    ({"prompt": "  "}, "prompt"),
    ({"view_resolution": 100}, "view_resolution"),
    ({"num_views": 0}, "num_views"),
])
def test_bad_inputs_are_refused(kwargs, message):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    pipe = TexturePaintingPipeline(FieldOracle(mesh.vertices, mesh.faces))
    args = {"prompt": "x", **kwargs}
    with pytest.raises(InputError, match=message):
        pipe([MeshPart("s", mesh.vertices, mesh.faces)], **args)
    with pytest.raises(InputError, match="reference_camera"):
        pipe([MeshPart("s", mesh.vertices, mesh.faces)], prompt="x", reference_image=np.zeros((8, 8, 3), np.uint8),
             reference_camera={"eye": [0, 4, 0], "target": [0, 0, 0], "up": [0, 1, 0]})


def test_uv_helpers_keep_unwrap_and_tile():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    own = np.random.default_rng(0).random((len(mesh.vertices), 2)).astype(np.float32)
    kept = ensure_uv(mesh.vertices, mesh.faces, own)
    assert not kept.unwrapped and np.array_equal(kept.uv, own)
    made = ensure_uv(mesh.vertices, mesh.faces)
    assert made.unwrapped and len(made.faces) == len(mesh.faces)
    assert np.allclose(made.vertices, mesh.vertices[made.vertex_map]) and len(made.vertices) >= len(mesh.vertices)
    assert made.uv.min() >= 0 and made.uv.max() <= 1
    parts, note = ensure_part_uvs([MeshPart("a", mesh.vertices, mesh.faces, uv=own), MeshPart("b", mesh.vertices, mesh.faces)])
    assert "grid" in note
    a, b = pack_in_grid([own, own])
    assert a[:, 0].max() <= 0.5 and b[:, 0].min() >= 0.5
    # Own UVs on other tiles and straddling an edge: wrapped, then shrunk into the part's tile.
    vertices, faces, uv = tube()  # u from 0.56 to 1.36
    shifted = uv + np.array([2.0, 0.0], np.float32)  # and two tiles to the right
    parts, _ = ensure_part_uvs([MeshPart("tube", vertices, faces, uv=shifted), MeshPart("ball", mesh.vertices, mesh.faces)])
    tube_uv, ball_uv = parts[0].uv, parts[1].uv
    assert tube_uv[:, 0].min() >= 0 and tube_uv[:, 0].max() <= 0.5 and ball_uv[:, 0].min() >= 0.5
    assert np.array_equal(parts[0].vertices[parts[0].faces], vertices[faces])  # same triangles, in order
    # One uniform scale for every triangle (the layout keeps its shape), near half a tile: the
    # layout was wrapped to about one unit wide before packing (unwrapped it spans 3.36 units).
    edges = lambda t, f: t[f[:, 1]] - t[f[:, 0]]  # noqa: E731
    scale = np.linalg.norm(edges(tube_uv, parts[0].faces), axis=1) / np.linalg.norm(edges(shifted, faces), axis=1)
    assert np.allclose(scale, scale[0], rtol=1e-4) and 0.45 < scale[0] <= 0.49, scale[0]
    with pytest.raises(InputError):
        ensure_uv(mesh.vertices, mesh.faces, own[:-1])


def test_parts_sharing_one_atlas_keep_their_uvs_and_overlapping_ones_are_tiled():
    ball = trimesh.creation.icosphere(subdivisions=2)
    mesh = ensure_uv(ball.vertices, ball.faces)  # an unwrap: fills the unit square
    left = (mesh.uv * [0.5, 1.0]).astype(np.float32)
    right = left + np.float32([0.5, 0.0])
    parts = [MeshPart("body", mesh.vertices, mesh.faces, uv=left), MeshPart("eyes", mesh.vertices, mesh.faces, uv=right)]
    kept, note = ensure_part_uvs(parts)
    assert "share one atlas" in note
    assert np.array_equal(kept[0].uv, left) and np.array_equal(kept[1].uv, right)
    # Both in the same half (one tile over: the same texels): each gets its own tile.
    tiled, note = ensure_part_uvs([parts[0], MeshPart("eyes", mesh.vertices, mesh.faces, uv=left + [1.0, 0.0])])
    assert "grid" in note and tiled[0].uv[:, 0].max() <= 0.5 and tiled[1].uv[:, 0].min() >= 0.5


def test_overlapping_uvs_are_kept_and_the_result_says_those_places_share_colours():
    ball = trimesh.creation.icosphere(subdivisions=2)
    layout = ensure_uv(ball.vertices, ball.faces)
    n = len(layout.vertices)
    # Two balls on one layout, as two materials with a unit square each come in as one part.
    twins = MeshPart("twins", np.concatenate([layout.vertices, layout.vertices + [3.0, 0.0, 0.0]]).astype(np.float32),
                     np.concatenate([layout.faces, layout.faces + n]), uv=np.concatenate([layout.uv, layout.uv]))
    notes = []
    for part in (twins, MeshPart("ball", layout.vertices, layout.faces, uv=layout.uv)):
        out = TexturePaintingPipeline(FieldOracle(part.vertices, part.faces))([part], prompt="a ball", view_resolution=64)
        assert np.array_equal(out.result.parts[0].uv, part.uv)  # the artist's UVs are kept all the same
        notes.append(" ".join(out.result.metadata.get("notes", [])))
    assert "50% of the UV layout lies where other triangles' UVs lie too" in notes[0]
    assert "lie too" not in notes[1]


def test_padding_fills_with_the_nearest_painted_texel():
    colour = torch.zeros(8, 8, 3)
    filled = torch.zeros(8, 8, dtype=torch.bool)
    colour[1, 1], colour[6, 6] = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    filled[1, 1] = filled[6, 6] = True
    padded, now = pad_texture(colour, filled)
    assert now.all() and torch.equal(padded[0, 0], colour[1, 1]) and torch.equal(padded[7, 7], colour[6, 6])
    limited, reach = pad_texture(colour, filled, max_distance=1.5)
    assert reach[2, 2] and not reach[4, 4] and torch.equal(limited[4, 4], torch.zeros(3))


def test_run_texture_reads_a_glb_and_returns_a_textured_result():
    glb = pytest.importorskip("backend.geometry.glb")
    mesh = trimesh.creation.icosphere(subdivisions=2)
    data = glb.mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", mesh.vertices.astype(np.float32), mesh.faces)]))
    parts, _ = glb.read_glb_meshes(data)
    pipe = TexturePaintingPipeline(FieldOracle(parts[0].vertices, parts[0].faces))
    params = {**TEXTURE_PARAMS, "seed": 3, "prompt": "a ball", "view_resolution": 64, "num_views": 4}
    seen = []
    result = run_texture(pipe, params, {"mesh": data}, lambda *a, **k: seen.append(a[:3]))
    assert result.texture.shape == (1024, 1024, 3) and result.parts[0].uv is not None
    assert result.metadata["texture"]["seed"] == 3 and json.dumps(result.metadata)
    assert seen[-2:] == [("paint", 6, 8), ("paint", 6, 6)]  # 4 + top and bottom saw all of a ball: no fill view needed
    assert glb.read_glb_meshes(glb.mesh_result_to_glb(result))[0][0].uv is not None
    # A PNG reference image from an explicit camera: projected first, so one more step.
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 0, 255)).save(png, format="PNG")
    camera = {"eye": [0, 0, 4], "target": [0, 0, 0], "up": [0, 1, 0], "fov_y": 40}
    steps = []
    result = run_texture(pipe, {**params, "reference_camera": camera}, {"mesh": data, "image": png.getvalue()},
                         lambda *a, **k: steps.append(a[:2]))
    assert sorted({step for phase, step in steps if phase == "paint"}) == [1, 2, 3, 4, 5, 6, 7]
    assert steps[-1] == ("paint", 7) and result.metadata["texture"]["reference_image"]
    with pytest.raises(InputError, match="PNG"):
        run_texture(pipe, params, {"mesh": data, "image": b"not an image"}, lambda *a, **k: None)
    # A photo's full size is not kept: at most twice the view's resolution a side, aspect kept.
    from backend.pipelines.texture import _read_image

    big = io.BytesIO()
    Image.new("RGBA", (1000, 600), (0, 0, 255, 255)).save(big, format="PNG")
    assert _read_image(big.getvalue(), max_side=128).shape == (77, 128, 4)
    with pytest.raises(InputError, match="mesh"):
        run_texture(pipe, params, {}, lambda *a, **k: None)
    with pytest.raises(InputError, match="image"):
        run_texture(pipe, {**params, "reference_camera": {"eye": [0, 0, 3]}}, {"mesh": data}, lambda *a, **k: None)


def test_a_textured_result_keeps_the_smooth_normals_and_drops_the_old_vertex_colours():
    from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes

    mesh = trimesh.creation.icosphere(subdivisions=2)
    normals = mesh.vertex_normals.astype(np.float32)
    grey = np.full((len(mesh.vertices), 4), 128, np.uint8)
    data = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", mesh.vertices.astype(np.float32), mesh.faces,
                                                         grey, normals=normals)]))
    pipe = TexturePaintingPipeline(FieldOracle(mesh.vertices, mesh.faces))
    params = {**TEXTURE_PARAMS, "seed": 1, "prompt": "a ball", "view_resolution": 64, "num_views": 4}
    (part,), _ = read_glb_meshes(mesh_result_to_glb(run_texture(pipe, params, {"mesh": data}, lambda *a, **k: None)))
    assert len(part.vertices) > len(mesh.vertices)  # split at the unwrap's seams...
    # ...each copy with its vertex's normal, so the ball stays smooth; no grey multiplied into the paint.
    copied = np.argmin(np.linalg.norm(part.vertices[:, None] - mesh.vertices[None], axis=2), axis=1)
    np.testing.assert_allclose(part.normals, normals[copied], atol=1e-6)
    assert part.vertex_colors is None


def test_reference_images_are_read_as_a_viewer_shows_them():
    from PIL import Image

    from backend.images import read_image

    def encoded(image, fmt="PNG", **options):
        out = io.BytesIO()
        image.save(out, format=fmt, **options)
        return out.getvalue()

    # A phone's portrait photo: stored 40 wide and 20 high, to be turned a quarter.
    exif = Image.Exif()
    exif[0x0112] = 6
    assert read_image(encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif)).size == (20, 40)
    # A palette PNG whose background colour is transparent (pngquant's kind): the background stays off the mesh.
    cutout = Image.new("P", (4, 4), 0)
    cutout.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    cutout.putpixel((1, 1), 1)
    alpha = np.asarray(read_image(encoded(cutout, transparency=0)))[..., 3]
    assert alpha[1, 1] == 255 and alpha[0, 0] == 0
    # 16-bit grey: mid-grey stays mid-grey (a plain conversion clips it to white).
    grey = read_image(encoded(Image.fromarray(np.full((4, 4), 32768, np.uint16))))
    assert grey.mode == "RGB" and np.asarray(grey)[0, 0].tolist() == [128, 128, 128]


def test_a_scan_at_survey_coordinates_is_painted_whole_and_put_back_where_it_was():
    from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes

    ball = trimesh.creation.icosphere(subdivisions=2)
    place = np.array([5e5, 100.0, 5e6])
    data = mesh_result_to_glb(MeshResult(parts=[MeshPart("scan", ball.vertices.astype(np.float32), ball.faces,
                                                         origin=place)]))
    pipe = TexturePaintingPipeline(FieldOracle(ball.vertices, ball.faces))
    params = {**TEXTURE_PARAMS, "seed": 1, "prompt": "a ball", "view_resolution": 64, "num_views": 4}
    result = run_texture(pipe, params, {"mesh": data}, lambda *a, **k: None)
    assert result.metadata["texture"]["unseen_fraction"] < 0.01  # 35% unseen when painted 5,000 km out
    (part,), _ = read_glb_meshes(mesh_result_to_glb(result), centre_far_off=True)
    assert np.abs(part.origin + part.vertices[:, None] - (place + ball.vertices)[None]).sum(2).min(1).max() < 1e-5
    # A reference camera in the file's frame, 4 m in front of the scan, still sees it.
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 0, 255)).save(png, format="PNG")
    camera = {"eye": (place + [0.0, 0.0, 4.0]).tolist(), "target": place.tolist(), "fov_y": 40}
    result = run_texture(pipe, {**params, "reference_camera": camera}, {"mesh": data, "image": png.getvalue()},
                         lambda *a, **k: None)
    assert result.metadata["texture"]["reference_image"]


def test_view_prompt_names_the_side():
    mesh = trimesh.creation.icosphere(subdivisions=1)
    names = [view_prompt("cat", frame_camera(mesh.vertices, az, el)) for az, el in [(0, 15), (90, 15), (180, 15), (0, 90), (0, -90)]]
    assert names == ["cat, front view", "cat, side view", "cat, back view", "cat, overhead view", "cat, bottom view"]


# --- tiny Stable Diffusion 2 depth ----------------------------------------------------------


def depth_request(size=32, mask_value=1.0, seed=0):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    cam = frame_camera(mesh.vertices, 0, 0, width=size)
    frags = rasterize(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces), cam)
    image = torch.rand(size, size, 3, generator=torch.Generator().manual_seed(1))
    return ViewRequest(prompt="a red ball, front view", negative_prompt="blurry", camera=cam, depth=frags.depth,
                       disparity=frags.mask.float(), object_mask=frags.mask, image=image,
                       mask=torch.full((size, size), mask_value), generator=torch.Generator().manual_seed(seed),
                       num_inference_steps=2, guidance_scale=5.0)


@pytest.fixture(scope="module")
def tiny_depth_folder(tmp_path_factory):
    return tiny_sd.depth_pipeline(tmp_path_factory.mktemp("sd"))


@pytest.fixture(scope="module")
def tiny_generator(tiny_depth_folder):
    from backend.texture.sd_depth import DepthViewGenerator

    return DepthViewGenerator.from_pretrained(str(tiny_depth_folder), device="cpu")


def test_tiny_sd_depth_generates_and_keeps_what_it_is_told_to_keep(tiny_generator):
    assert isinstance(tiny_generator, ViewGenerator)
    pipe = tiny_generator.pipe
    out = tiny_generator(depth_request(mask_value=1.0))
    assert out.shape == (32, 32, 3) and 0 <= float(out.min()) and float(out.max()) <= 1
    other = tiny_generator(depth_request(mask_value=1.0, seed=1))
    assert not torch.allclose(out, other)  # the seed matters
    # mask 0 everywhere: the result is exactly the VAE round trip of the current render.
    request = depth_request(mask_value=0.0)
    kept = tiny_generator(request)
    with torch.no_grad():
        latents = pipe.vae.encode(request.image.permute(2, 0, 1)[None] * 2 - 1).latent_dist.mean
        decoded = pipe.vae.decode(latents).sample[0].permute(1, 2, 0)
    assert torch.allclose(kept, ((decoded + 1) / 2).clamp(0, 1), atol=1e-4)


def test_the_depth_map_steers_the_sd2_depth_view(tiny_generator):
    """The rendered depth (as disparity) is the 5th UNet input channel: another depth, another view."""
    hole = depth_request()  # the same request (seed included) but for its depth: a hole where the ball was
    hole.disparity = 1.0 - hole.disparity
    ball = tiny_generator(depth_request())
    assert torch.equal(ball, tiny_generator(depth_request()))  # nothing else varies between runs
    assert (ball - tiny_generator(hole)).abs().max() > 1e-3


def test_half_precision_paints_what_full_precision_paints(tiny_depth_folder, tiny_generator):
    """fp16, the default on CUDA, checked on the CPU: every input reaches the models in their dtype."""
    from backend.texture.sd_depth import DepthViewGenerator

    half = DepthViewGenerator.from_pretrained(str(tiny_depth_folder), dtype=torch.float16)
    assert half.pipe.unet.dtype == half.pipe.vae.dtype == torch.float16
    for mask in (1.0, 0.0):  # generated, kept
        assert (half(depth_request(mask_value=mask)) - tiny_generator(depth_request(mask_value=mask))).abs().max() < 0.01


def test_free_region_grows_by_one_latent_and_keeps_its_strengths():
    from backend.texture.latent_blend import latent_freedom

    mask = torch.zeros(64, 64)
    mask[:, :20] = 1.0  # generate: latent columns 0-2 (pixel 16-19 lies in column 2)
    mask[:, 40:48] = 0.5  # refine: latent column 5
    plain = latent_freedom(mask, (8, 8), dilation=0)[0, 0, 0]
    grown = latent_freedom(mask, (8, 8), dilation=1)[0, 0, 0]
    assert plain.tolist() == [1, 1, 1, 0, 0, 0.5, 0, 0]
    assert grown.tolist() == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0]


def test_tiny_sd_depth_paints_a_mesh_end_to_end(tiny_generator):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    pipe = TexturePaintingPipeline(tiny_generator)
    out = pipe([MeshPart("s", mesh.vertices, mesh.faces)], prompt="a red ball", num_inference_steps=1,
               view_resolution=64, num_views=2, top_and_bottom=False)
    assert out.result.texture.shape == (1024, 1024, 3) and out.painted.any()


def test_tiny_sd_depth_stops_within_a_denoising_step_when_cancelled(tiny_generator):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    calls = []

    def callback(phase, step, total, preview=None, within=0.0):
        calls.append((phase, step, preview is not None, within))
        if within >= 0.15:  # a cancel arriving during the first view's third denoising step
            raise JobCancelled()

    unet_calls = []
    hook = tiny_generator.pipe.unet.register_forward_hook(lambda *args: unet_calls.append(1))
    try:
        with pytest.raises(JobCancelled):
            TexturePaintingPipeline(tiny_generator)([MeshPart("s", mesh.vertices, mesh.faces)], prompt="a red ball",
                                                    num_inference_steps=20, view_resolution=64, num_views=2, callback=callback)
    finally:
        hook.remove()
    assert without_unwrap_heartbeats(calls) == [
        ("prepare", 0, False, 0.0), ("prepare", 1, False, 0.0), ("paint", 0, True, 0.0),  # view 1 shown
        ("paint", 0, False, 0.05), ("paint", 0, False, 0.1), ("paint", 0, False, 0.15)]  # 3 of its 20 steps
    assert len(unet_calls) == 3  # three of the view's 20 steps ran (guidance batches both halves)


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="stable-diffusion-2-depth.*--model-source"):
        load_texture_pipeline(LoadOptions(cache_dir=str(tmp_path)))


def test_a_local_folder_stands_in_for_the_hub_model_with_the_memory_options(tmp_path, monkeypatch):
    """What a studio without internet does: its own copy of the model, named by hub id."""
    from diffusers.models.attention_processor import SlicedAttnProcessor

    from backend.hub import MODEL_SOURCES_ENV
    from backend.models import registry
    from backend.texture.sd_depth import DEFAULT_MODEL

    folder = tiny_sd.depth_pipeline(tmp_path / "sd2-depth-copy")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(MODEL_SOURCES_ENV, f"some/other-model=/nowhere;{DEFAULT_MODEL}={folder}")
    entry = next(e for e in registry() if e.name == "sd2-depth")
    assert entry.describe()["source"] == str(folder) and entry.describe()["available_offline"]
    plain = load_texture_pipeline(LoadOptions(cache_dir=str(tmp_path)))
    sliced = load_texture_pipeline(LoadOptions(cache_dir=str(tmp_path), attention_slicing=True))
    kinds = [{type(p) for p in pipe.view_generator.pipe.unet.attn_processors.values()} for pipe in (plain, sliced)]
    assert SlicedAttnProcessor not in kinds[0] and kinds[1] == {SlicedAttnProcessor}


@pytest.mark.real_weights
def test_real_sd2_depth_paints_a_ball_when_cached():
    from backend.hub import is_available_offline
    from backend.texture.sd_depth import DEFAULT_MODEL, DepthViewGenerator

    if not is_available_offline(DEFAULT_MODEL):
        pytest.skip(f"{DEFAULT_MODEL} is not in the local Hugging Face cache")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = DepthViewGenerator.from_pretrained(device=device, dtype=torch.float16 if device == "cuda" else None)
    mesh = trimesh.creation.icosphere(subdivisions=3)
    out = TexturePaintingPipeline(generator, device=device)(
        [MeshPart("ball", mesh.vertices, mesh.faces)], prompt="a basketball", num_inference_steps=10, num_views=4)
    assert out.painted.sum() > 0.9 * out.surface.sum() and out.result.texture.std() > 5
