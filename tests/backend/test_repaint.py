"""Repaint the selected faces: an oracle that paints a known new texture on the selection must
be reproduced there, and every texel outside the selection, its border band and the gutter
next to them must keep the original's bytes."""

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from backend.errors import InputError
from backend.geometry.uv import ensure_uv
from backend.pipelines.texture import TexturePaintingPipeline
from backend.render import frame_camera, interpolate, rasterize
from backend.results import MeshPart
from backend.texture import SurfaceSamples, ViewRequest, pad_texture, sample_texture
from backend.texture.region import GUTTER_REACH, region_cameras
from tests.backend.test_texture import VIEW, colour_field, obeying_the_mask, suzanne_like

torch.set_num_threads(1)
SIZE = 1024
BORDER = 0.03  # fraction of the bounding-box diagonal


def new_paint(p: torch.Tensor) -> torch.Tensor:
    """What the selection should become: rust-like stripes, unlike `colour_field` everywhere."""
    stripes = 0.5 + 0.5 * torch.sin(25 * p[..., 0] + 9 * p[..., 2])
    rust = torch.tensor([0.55, 0.22, 0.08]) + stripes[..., None] * torch.tensor([0.3, 0.15, 0.05])
    return rust.clamp(0, 1)


class RegionOracle:
    """Renders the edited asset: `new_paint` on the selected faces, the original texture elsewhere
    (where the mask lets it paint; see `obeying_the_mask`)."""

    def __init__(self, v, f, uv, original, selected):
        self.v, self.f, self.uv, self.original, self.selected = v, f, uv, original, selected
        self.requests: list[ViewRequest] = []

    def truth(self, frags):
        colour, _ = sample_texture(self.original, interpolate(self.uv, frags, self.f))
        on_selection = self.selected[frags.triangle_id.clamp(min=0)] & frags.mask
        colour = torch.where(on_selection[..., None], new_paint(interpolate(self.v, frags, self.f)), colour)
        return torch.where(frags.mask[..., None], colour, torch.full_like(colour, 0.5)), on_selection

    def __call__(self, request: ViewRequest) -> torch.Tensor:
        self.requests.append(request)
        colour, _ = self.truth(rasterize(self.v, self.f, request.camera))
        return obeying_the_mask(request, colour)


@pytest.fixture(scope="module")
def head():
    """A UV-unwrapped head, its texture, and a selection on top of it (a cap of ~8% of the faces)."""
    mesh = suzanne_like()
    layout = ensure_uv(mesh.vertices, mesh.faces, texture_size=SIZE)
    v, f, uv = (torch.from_numpy(a) for a in (layout.vertices, layout.faces, layout.uv))
    samples = SurfaceSamples.from_mesh(v, f, uv, SIZE, SIZE)
    texture = torch.zeros(SIZE * SIZE, 3)
    texture[samples.index] = colour_field(samples.position)
    filled = torch.zeros(SIZE * SIZE, dtype=torch.bool)
    filled[samples.index] = True
    texture, _ = pad_texture(texture.view(SIZE, SIZE, 3), filled.view(SIZE, SIZE))
    original = (texture * 255 + 0.5).to(torch.uint8).numpy()
    selected = v[f].mean(1)[:, 1] > 0.7
    return layout, v, f.long(), uv, original, selected, samples


def test_repaint_reaches_the_new_paint_and_keeps_every_other_texel(head):
    layout, v, f, uv, original, selected, samples = head
    shown = torch.from_numpy(original).float() / 255
    oracle = RegionOracle(v, f, uv, shown, selected)
    pipe = TexturePaintingPipeline(oracle)
    part = MeshPart("head", layout.vertices, layout.faces, uv=layout.uv)
    out = pipe.repaint([part], selected.numpy(), base_texture=original, prompt="rusty metal", border_width=BORDER,
                       view_resolution=VIEW)
    result, texture = out.result.parts[0], out.result.texture
    assert np.array_equal(result.uv, layout.uv) and np.array_equal(result.faces, layout.faces)
    assert np.array_equal(result.vertices, layout.vertices)
    assert texture.shape == original.shape and texture.dtype == np.uint8

    # Outside: bytes identical wherever a texel is farther than the band from the selection,
    # and in the gutter farther than GUTTER_REACH from any texel that may change.
    border = BORDER * float((v.max(0).values - v.min(0).values).norm())
    on_selection = selected[samples.triangle]
    tree = cKDTree(np.concatenate([samples.position[on_selection].numpy(), v[f[selected].reshape(-1)].numpy()]))
    distance, _ = tree.query(samples.position.numpy(), k=1)
    may_change = np.zeros(SIZE * SIZE, bool)
    may_change[samples.index.numpy()[distance <= border * 1.001]] = True
    covered = np.zeros(SIZE * SIZE, bool)
    covered[samples.index.numpy()] = True
    from scipy import ndimage
    near = ndimage.binary_dilation(may_change.reshape(SIZE, SIZE), iterations=GUTTER_REACH,
                                   structure=np.ones((3, 3), bool)).reshape(-1)
    may_change |= near & ~covered
    differs = (texture != original).any(-1).reshape(-1)
    assert differs.sum() > 1000  # the selection was repainted
    assert not (differs & ~may_change).any(), f"{int((differs & ~may_change).sum())} texels changed outside the region"
    assert not (differs & ~out.painted.reshape(-1)).any()  # `painted` names every texel that may differ

    # Inside: held-out views of the selection show the new paint.
    new = torch.from_numpy(texture).float() / 255
    errors, before = [], []
    for camera in held_out_region_views(v, f, selected):
        frags = rasterize(v, f, camera)
        truth, on_sel = oracle.truth(frags)
        got, _ = sample_texture(new, interpolate(uv, frags, f))
        old, _ = sample_texture(shown, interpolate(uv, frags, f))
        errors.append(((got - truth) ** 2)[on_sel])
        before.append(((old - truth) ** 2)[on_sel])
    psnr = float(-10 * torch.log10(torch.cat(errors).mean()))
    untouched = float(-10 * torch.log10(torch.cat(before).mean()))  # the original, not repainted: the baseline
    print("PSNR", psnr, untouched, int(differs.sum()), int(may_change.sum()))
    assert psnr >= 30.0 and untouched < 20.0, (psnr, untouched)
    # The views were aimed at the selection: the first looks at it head-on and mostly shows it.
    first = oracle.requests[0]
    assert float(first.mask.gt(0.99).float().mean()) > 0.15
    meta = out.result.metadata["texture"]["repaint"]
    assert meta["selected_triangles"] == int(selected.sum()) and meta["changed_texels"] == int(out.painted.sum())


def held_out_region_views(v, f, selected):
    """Views of the selection from directions no painting view used."""
    cams = region_cameras(v, f, selected, 7, VIEW)  # head-on + 6 tilted by 40 degrees at 60-degree turns
    points = v[f[selected].reshape(-1)]
    return [frame_camera(points, az, el, width=VIEW) for az, el in ((30.0, 75.0), (200.0, 60.0), (110.0, 50.0))] + cams[1:3]


def test_the_band_blends_into_the_original(head):
    """Without a band the seam is a hard step; with it, texels at the band's middle mix old and new."""
    layout, v, f, uv, original, selected, samples = head
    part = MeshPart("head", layout.vertices, layout.faces, uv=layout.uv)
    shown = torch.from_numpy(original).float() / 255
    changed = {}
    for border in (0.0, BORDER):
        out = TexturePaintingPipeline(RegionOracle(v, f, uv, shown, selected)).repaint(
            [part], selected.numpy(), base_texture=original, prompt="rust", border_width=border, view_resolution=VIEW,
            region_views=3, fill_views=0)
        changed[border] = out.painted
    on_selection = np.zeros(SIZE * SIZE, bool)
    on_selection[samples.index[selected[samples.triangle]].numpy()] = True
    band = changed[BORDER].reshape(-1) & ~changed[0.0].reshape(-1) & ~on_selection
    assert band.sum() > 500  # the band exists only with a border width


def test_repaint_refuses_what_it_cannot_do(head):
    layout, v, f, uv, original, selected, _ = head
    pipe = TexturePaintingPipeline(RegionOracle(v, f, uv, torch.zeros(SIZE, SIZE, 3), selected))
    part = MeshPart("head", layout.vertices, layout.faces, uv=layout.uv)
    with pytest.raises(InputError, match="no face is selected"):
        pipe.repaint([part], np.zeros(len(layout.faces), bool), base_texture=original, prompt="rust")
    with pytest.raises(InputError, match="entries but the mesh has"):
        pipe.repaint([part], np.ones(3, bool), base_texture=original, prompt="rust")
    with pytest.raises(InputError, match="no UVs"):
        pipe.repaint([MeshPart("head", layout.vertices, layout.faces)], selected.numpy(), base_texture=original,
                     prompt="rust")
    with pytest.raises(InputError, match="border_width"):
        pipe.repaint([part], selected.numpy(), base_texture=original, prompt="rust", border_width=0.9)
    with pytest.raises(InputError, match="8-bit"):
        pipe.repaint([part], selected.numpy(), base_texture=original.astype(np.float32), prompt="rust")


# --- through the service ------------------------------------------------------------------

from tests.backend.test_server import assert_error, client, make_client, submit, wait  # noqa: E402,F401


def uv_ball():
    """An unwrapped ball, a texture for it (PNG, RGBA) and the top faces selected."""
    import io

    import trimesh
    from PIL import Image

    ball = trimesh.creation.icosphere(subdivisions=3)
    layout = ensure_uv(ball.vertices, ball.faces, texture_size=1024)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (1024, 1024, 4), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(texture).save(png, format="PNG")
    selected = layout.vertices[layout.faces].mean(1)[:, 1] > 0.6
    return layout, texture, png.getvalue(), selected


def test_the_service_repaints_the_masked_faces_of_the_uploaded_texture(client):
    import io

    from PIL import Image

    from backend.geometry.glb import mesh_result_to_glb
    from backend.results import MeshResult
    from formats.glb import read_glb

    layout, texture, png, selected = uv_ball()
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", layout.vertices, layout.faces, uv=layout.uv)]))
    files = {"mesh": ("ball.glb", glb), "face_mask": ("mask", selected.astype(np.uint8).tobytes()),
             "texture": ("texture.png", png)}
    response = submit(client, {"prompt": "a red cap", "seed": 3, "region_views": 2, "fill_views": 0},
                      model="test-texture", task="texture", files=files)
    assert response.status_code == 201, response.text
    done = wait(client, response.json()["id"], timeout=60)
    assert done["state"] == "succeeded", done["error"]
    repaint = done["result_metadata"]["texture"]["repaint"]
    assert repaint["selected_triangles"] == int(selected.sum())
    scene = read_glb(client.get(f"/jobs/{done['id']}/result").content)
    result = np.asarray(Image.open(io.BytesIO(scene.images[0].data)))
    assert result.shape == texture.shape  # its size and its alpha kept
    differs = (result != texture).any(-1)
    assert 0 < differs.sum() <= repaint["changed_texels"]
    assert np.array_equal(result[..., 3], texture[..., 3])
    # Texels of faces well below the selection keep their bytes.
    v, f, uv = (torch.from_numpy(a) for a in (layout.vertices, layout.faces, layout.uv))
    samples = SurfaceSamples.from_mesh(v, f.long(), uv, 1024, 1024)
    low = samples.index[samples.position[:, 1] < 0.3].numpy()
    assert not differs.reshape(-1)[low].any()


@pytest.mark.parametrize("files, params, words", [
    (("mesh", "face_mask", "texture", "image"), {}, ("prompt alone",)),
    (("mesh", "texture"), {}, ("send face_mask",)),
    (("mesh", "face_mask"), {"base_color": [1, 2, 3]}, ("base_color",)),
    (("mesh", "face_mask"), {"prompt": ""}, ("describe the texture",)),
    (("mesh", "short_mask"), {}, ("face_mask has",)),
    (("mesh", "face_mask", "bad_texture"), {}, ("texture",)),
    (("mesh", "face_mask"), {"border_width": 0.5}, ("border_width",)),
])
def test_the_service_refuses_a_repaint_it_cannot_do(client, files, params, words):
    from backend.geometry.glb import mesh_result_to_glb
    from backend.results import MeshResult

    layout, _, png, selected = uv_ball()
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", layout.vertices, layout.faces, uv=layout.uv)]))
    available = {"mesh": ("mesh", ("b.glb", glb)), "face_mask": ("face_mask", ("m", selected.astype(np.uint8).tobytes())),
                 "short_mask": ("face_mask", ("m", b"\x01\x00")), "texture": ("texture", ("t.png", png)),
                 "bad_texture": ("texture", ("t.png", b"GIF89a not a png")), "image": ("image", ("i.png", png))}
    form = dict(available[name] for name in files)
    response = submit(client, {"prompt": "rust", **params}, model="test-texture", task="texture", files=form)
    assert_error(response, 400, *words)


def test_a_mesh_without_uvs_or_texture_is_unwrapped_and_starts_from_its_flat_colour():
    """As Texture Selected does for a bare mesh: an unwrap, then a flat texture of the base
    colour with the selection painted into it."""
    import trimesh

    ball = trimesh.creation.icosphere(subdivisions=3)
    selected = ball.vertices[ball.faces].mean(1)[:, 1] > 0.6
    flat = (0.2, 0.4, 0.6)
    calls = []  # a generator painting pure red wherever it may
    pipe = TexturePaintingPipeline(lambda request: calls.append(request) or torch.where(
        request.mask[..., None] > 0, torch.tensor([1.0, 0.0, 0.0]).expand_as(request.image), request.image))
    out = pipe.repaint([MeshPart("ball", ball.vertices, ball.faces)], selected, base_color=flat, prompt="red cap",
                       texture_size=1024, view_resolution=VIEW, border_width=0.0, region_views=2, fill_views=0)
    part, texture = out.result.parts[0], out.result.texture
    assert part.uv is not None and "xatlas" in out.result.metadata["texture"]["uv"]
    expected = np.round(np.array(flat) * 255).astype(np.uint8)
    untouched = ~out.painted
    assert (texture[untouched] == expected).all()  # everything not repainted holds the flat colour
    painted = texture[out.painted & (texture[..., 0] > 200)]
    assert len(painted) > 1000 and len(calls) >= 1  # the selection took the paint
