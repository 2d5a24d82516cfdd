"""The torch rasterizer against known answers (no GPU, no bpy)."""

import importlib

import pytest
import torch

from backend.render import Camera, default_views, frame_camera, interpolate, rasterize, rasterize_uv_space
from backend.render.camera import look_at
from backend.render.rasterize import _triangle_ids_nvdiffrast, face_normals, rasterize_clip, render_normals, select_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# The module, not the function of the same name that backend.render exports.
rasterize_module = importlib.import_module("backend.render.rasterize")

QUAD_V = torch.tensor([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
QUAD_F = torch.tensor([[0, 1, 2], [0, 2, 3]])
# Camera 2 units in front, 90 degrees: the frame spans [-2, 2] at the quad, 16 px per unit at 64 px.
FRONT = Camera(eye=(0.0, 0.0, 2.0), target=(0.0, 0.0, 0.0), fov_y=90.0, width=64, height=64, near=0.1, far=10.0)


def cube():
    v = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)])
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


def test_quad_facing_camera_has_known_depth_extent_and_ids():
    frags = rasterize(QUAD_V, QUAD_F, FRONT, backend="torch")
    # Pixel centres 24.5 .. 39.5 fall inside [-0.5, 0.5] * 16 + 32 = [24, 40].
    expected = torch.zeros(64, 64, dtype=torch.bool)
    expected[24:40, 24:40] = True
    assert torch.equal(frags.mask, expected)
    assert torch.allclose(frags.depth[frags.mask], torch.full((256,), 2.0), atol=1e-5)
    assert torch.isinf(frags.depth[~frags.mask]).all()
    assert set(frags.triangle_id[frags.mask].tolist()) == {0, 1}
    assert (frags.triangle_id[~frags.mask] == -1).all()
    # Row 0 is the top: the pixel at the top-left of the quad is in triangle 1 (upper-left half).
    assert frags.triangle_id[24, 24] == 1 and frags.triangle_id[39, 39] == 0
    assert torch.allclose(frags.barycentric.sum(-1)[frags.mask], torch.ones(256), atol=1e-5)


def test_uv_interpolation_is_linear_on_a_facing_quad():
    frags = rasterize(QUAD_V, QUAD_F, FRONT, backend="torch")
    uv = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])  # glTF: v down
    pixel_uv = interpolate(uv, frags, QUAD_F)
    cols = (torch.arange(24, 40) + 0.5 - 24) / 16
    assert torch.allclose(pixel_uv[30, 24:40, 0], cols, atol=1e-5)
    assert torch.allclose(pixel_uv[24:40, 30, 1], cols, atol=1e-5)  # row grows with v


def test_perspective_correct_barycentrics_on_a_slanted_plane():
    v = torch.tensor([[-1.0, -1.0, -1.5], [1.0, -1.0, 0.5], [1.0, 1.0, 0.5], [-1.0, 1.0, -1.5]])
    frags = rasterize(v, QUAD_F, FRONT, backend="torch")
    points = interpolate(v, frags, QUAD_F)[frags.mask]  # (n, 3)
    # Each interpolated point must lie on its pixel's ray: project back to the pixel centre.
    clip = torch.cat([points, torch.ones(len(points), 1)], 1) @ FRONT.full_matrix().T
    px = (clip[:, 0] / clip[:, 3] + 1) * 32
    rows, cols = torch.nonzero(frags.mask, as_tuple=True)
    assert torch.allclose(px, cols.float() + 0.5, atol=1e-3)
    # Depth is the view-axis distance of that point.
    assert torch.allclose(frags.depth[frags.mask], 2.0 - points[:, 2], atol=1e-4)


def test_triangles_reaching_behind_the_camera_are_clipped_at_the_near_plane():
    # A 40 x 40 floor of two triangles, the camera standing on it 1 unit up looking ahead and
    # down along the diagonal: both triangles have corners behind the eye (dropped whole before).
    floor = torch.tensor([[-20.0, 0.0, -20.0], [20.0, 0.0, -20.0], [20.0, 0.0, 20.0], [-20.0, 0.0, 20.0]])
    cam = Camera(eye=(0.0, 1.0, 0.0), target=(-3.0, 0.0, -3.0), fov_y=60.0, width=48, height=40, near=0.05, far=100.0)
    frags = rasterize(floor, QUAD_F, cam, backend="torch")
    assert frags.mask[-1].all() and not frags.mask[0].any()  # the floor fills the bottom, the sky the top
    assert set(frags.triangle_id[frags.mask].tolist()) == {0, 1}
    points = interpolate(floor, frags, QUAD_F)[frags.mask]  # (n, 3)
    assert points[:, 1].abs().max() < 1e-4  # barycentrics on the original triangles: points on the floor
    clip = torch.cat([points, torch.ones(len(points), 1)], 1) @ cam.full_matrix().T  # ... on each pixel's ray
    rows, cols = torch.nonzero(frags.mask, as_tuple=True)
    assert torch.allclose((clip[:, 0] / clip[:, 3] + 1) * 24, cols.float() + 0.5, atol=2e-3)
    assert torch.allclose((1 - clip[:, 1] / clip[:, 3]) * 20, rows.float() + 0.5, atol=2e-3)
    assert torch.allclose(frags.depth[frags.mask], clip[:, 3], rtol=1e-4)  # ... at its depth
    # Wholly behind the camera: nothing.
    assert not rasterize(floor + torch.tensor([0.0, 0.0, 30.0]), QUAD_F, cam, backend="torch").mask.any()


def test_nearer_triangle_wins_whatever_its_order():
    near = QUAD_V + torch.tensor([0.25, 0.0, 0.5])
    for order in (0, 1):
        v = torch.cat([QUAD_V, near] if order == 0 else [near, QUAD_V])
        f = torch.cat([QUAD_F, QUAD_F + 4])
        frags = rasterize(v, f, FRONT, backend="torch")
        near_ids = {2, 3} if order == 0 else {0, 1}
        assert frags.triangle_id[32, 38].item() in near_ids  # overlap region
        assert frags.depth[32, 38] == pytest.approx(1.5, abs=1e-5)
        assert frags.triangle_id[32, 25].item() not in near_ids  # only the far quad there
        assert frags.depth[32, 25] == pytest.approx(2.0, abs=1e-5)


def test_cube_front_face_depth_and_normals():
    v, f = cube()
    cam = Camera(eye=(0.0, 0.0, 4.0), target=(0.0, 0.0, 0.0), fov_y=60.0, width=48, height=48)
    frags = rasterize(v, f, cam, backend="torch")
    assert torch.allclose(frags.depth[frags.mask], torch.full((int(frags.mask.sum()),), 3.0), atol=1e-4)
    normals = render_normals(v, f, frags)[frags.mask]
    assert torch.allclose(normals, torch.tensor([0.0, 0.0, 1.0]).expand_as(normals), atol=1e-5)
    # Seen from a corner, three faces show and every covered pixel has a unit barycentric sum.
    corner = Camera(eye=(3.0, 3.0, 3.0), target=(0.0, 0.0, 0.0), fov_y=60.0, width=48, height=48)
    frags = rasterize(v, f, corner, backend="torch")
    seen = {tuple(n) for n in face_normals(v, f)[frags.triangle_id[frags.mask]].round().tolist()}
    assert seen == {(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}


def test_gradients_flow_to_attributes_and_vertices():
    v = QUAD_V.clone().requires_grad_(True)
    colors = torch.rand(4, 3, requires_grad=True)
    frags = rasterize(v, QUAD_F, FRONT, backend="torch")
    interpolate(colors, frags, QUAD_F).sum().backward()
    assert colors.grad is not None and colors.grad.abs().sum() > 0
    assert v.grad is not None and torch.isfinite(v.grad).all()


def test_uv_space_rasterization_covers_the_square():
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    frags = rasterize_uv_space(uv, QUAD_F, 32, 32)
    assert frags.mask.all()
    half = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]])[None]  # per-corner UVs
    frags = rasterize_uv_space(half, None, 32, 32)
    assert 0.4 * 128 < frags.mask.sum() < 0.6 * 256 and frags.mask[0, 0] and not frags.mask[31, 31]


def test_big_triangles_chunk_without_running_out_of_memory():
    v = torch.tensor([[-50.0, -50.0, 0.0], [50.0, -50.0, 0.0], [0.0, 50.0, 0.0]])
    frags = rasterize(v, torch.tensor([[0, 1, 2]]), FRONT.with_size(256), backend="torch")
    assert frags.mask.all()


def test_default_views_frame_the_object():
    v, _ = cube()
    v = v * torch.tensor([2.0, 0.5, 1.0]) + 3.0
    cams = default_views(v, width=64)
    assert len(cams) == 10
    for cam in cams:
        clip = torch.cat([v, torch.ones(8, 1)], 1) @ cam.full_matrix().T
        ndc = clip[:, :2] / clip[:, 3:]
        assert (ndc.abs() < 1).all() and (clip[:, 3] > cam.near).all() and (clip[:, 3] < cam.far).all()
    front = frame_camera(v, 0, 0)
    assert front.eye[2] > 3.0 and front.eye[0] == pytest.approx(3.0)
    with pytest.raises(ValueError):
        look_at((0, 0, 0), (0, 1, 0), (0, 1, 0))


def test_backend_selection_falls_back_to_torch(monkeypatch):
    monkeypatch.setattr(rasterize_module, "_import_nvdiffrast", lambda: None)
    assert select_backend(torch.device("cpu")) == "torch"
    assert select_backend(torch.device("cuda")) == "torch"  # CUDA without nvdiffrast
    with pytest.raises(ValueError, match="nvdiffrast"):
        select_backend(torch.device("cuda"), "nvdiffrast")
    with pytest.raises(ValueError):
        select_backend(torch.device("cpu"), "opengl")
    monkeypatch.setattr(rasterize_module, "_import_nvdiffrast", lambda: object())
    assert select_backend(torch.device("cuda")) == "nvdiffrast"
    assert select_backend(torch.device("cpu")) == "torch"  # nvdiffrast only runs on CUDA


class FakeNvdiffrast:
    """Mimics nvdiffrast.torch's conventions (id + 1, row 0 = bottom) on top of our torch path."""

    class RasterizeCudaContext:
        def __init__(self, device=None):
            pass

    @staticmethod
    def rasterize(ctx, pos, tri, resolution):
        h, w = resolution
        frags = rasterize_clip(pos[0], tri.long(), h, w, backend="torch")
        rast = torch.zeros(1, h, w, 4)
        rast[0, :, :, 3] = (frags.triangle_id + 1).flip(0).float()
        return rast, None


def test_nvdiffrast_path_translates_its_conventions(monkeypatch):
    monkeypatch.setattr(rasterize_module, "_import_nvdiffrast", lambda: FakeNvdiffrast)
    monkeypatch.setattr(rasterize_module, "_CONTEXTS", {})
    v, f = cube()
    cam = Camera(eye=(3.0, 2.0, 4.0), target=(0.0, 0.0, 0.0), fov_y=50.0, width=40, height=32)
    clip = torch.cat([v, torch.ones(8, 1)], 1) @ cam.full_matrix().T
    ids = _triangle_ids_nvdiffrast(clip, f, 32, 40)
    assert torch.equal(ids, rasterize(v, f, cam, backend="torch").triangle_id)


def test_an_nvdiffrast_that_refuses_a_size_hands_it_to_torch(monkeypatch):
    class OldNvdiffrast(FakeNvdiffrast):  # before 0.3.2: multiples of 8 pixels only
        @staticmethod
        def rasterize(ctx, pos, tri, resolution):
            if resolution[0] % 8 or resolution[1] % 8:
                raise RuntimeError("width and height must be divisible by 8")
            used.append(resolution)
            return FakeNvdiffrast.rasterize(ctx, pos, tri, resolution)

    used = []
    monkeypatch.setattr(rasterize_module, "_import_nvdiffrast", lambda: OldNvdiffrast)
    monkeypatch.setattr(rasterize_module, "_CONTEXTS", {})
    monkeypatch.setattr(rasterize_module, "select_backend",  # as on CUDA with nvdiffrast installed
                        lambda device, backend="auto": "torch" if backend == "torch" else "nvdiffrast")
    v, f = cube()
    for width in (40, 42):
        cam = Camera(eye=(3.0, 2.0, 4.0), target=(0.0, 0.0, 0.0), fov_y=50.0, width=width, height=32)
        assert torch.equal(rasterize(v, f, cam).triangle_id, rasterize(v, f, cam, backend="torch").triangle_id)
    assert used == [[32, 40]]  # 42 pixels wide went to the torch pass
    with pytest.raises(RuntimeError, match="divisible"):  # asked for by name: no quiet substitute
        rasterize(v, f, cam, backend="nvdiffrast")


def test_random_triangles_match_a_brute_force_reference():
    gen = torch.Generator().manual_seed(0)
    v = torch.rand(60, 3, generator=gen) * 2 - 1
    f = torch.randperm(60, generator=gen).view(20, 3)
    cam = Camera(eye=(0.3, 0.2, 3.0), target=(0.0, 0.0, 0.0), fov_y=60.0, width=24, height=20)
    frags = rasterize(v, f, cam, backend="torch")
    # Reference in float64, one pixel centre against every triangle.
    clip = (torch.cat([v, torch.ones(60, 1)], 1) @ cam.full_matrix().T).double()
    xy = torch.stack([(clip[:, 0] / clip[:, 3] + 1) * 12, (1 - clip[:, 1] / clip[:, 3]) * 10], -1)[f]  # (F, 3, 2)
    inv_w = (1 / clip[:, 3])[f]
    checked = 0
    for row in range(20):
        for col in range(24):
            p = torch.tensor([col + 0.5, row + 0.5], dtype=torch.float64)
            a, b, c = xy[:, 0], xy[:, 1], xy[:, 2]
            cross = lambda u, w: u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]  # noqa: E731
            area = cross(b - a, c - a)
            bary = torch.stack([cross(b - p, c - p), cross(c - p, a - p), cross(a - p, b - p)], -1) / area[:, None]
            inside = (bary >= 0).all(1) & (area.abs() > 1e-9)
            depth = torch.where(inside, 1 / (bary * inv_w).sum(1), torch.tensor(torch.inf, dtype=torch.float64))
            margin = torch.where(inside, bary.amin(1), torch.tensor(1.0, dtype=torch.float64))
            if (margin[inside] < 1e-4).any() or ((bary.amin(1) > -1e-4) & ~inside).any():
                continue  # a pixel centre on an edge: either answer is right
            order = torch.sort(depth).values
            if inside.sum() > 1 and order[1] - order[0] < 1e-4:
                continue
            expected = int(torch.argmin(depth)) if inside.any() else -1
            assert frags.triangle_id[row, col].item() == expected, (row, col)
            if expected >= 0:
                assert frags.depth[row, col].item() == pytest.approx(float(depth[expected]), rel=1e-4)
            checked += 1
    assert checked > 400


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_same_fragments_as_cpu():
    gen = torch.Generator().manual_seed(1)
    v = torch.rand(300, 3, generator=gen) * 2 - 1
    f = torch.randint(0, 300, (400, 3), generator=gen)
    cam = Camera(eye=(0.5, 1.0, 3.0), target=(0.0, 0.0, 0.0), fov_y=50.0, width=96, height=80)
    cpu = rasterize(v, f, cam, backend="torch")
    gpu = rasterize(v.cuda(), f.cuda(), cam, backend="torch")
    assert torch.equal(cpu.triangle_id, gpu.triangle_id.cpu())
    assert torch.allclose(cpu.barycentric, gpu.barycentric.cpu(), atol=1e-5)
    auto = rasterize(v.cuda(), f.cuda(), cam)  # nvdiffrast when installed: same surface
    same = (auto.triangle_id.cpu() == cpu.triangle_id).float().mean()
    assert same > 0.99  # pixel centres exactly on shared edges may go to either triangle
    assert torch.allclose(auto.depth.cpu()[cpu.mask & auto.mask.cpu()], cpu.depth[cpu.mask & auto.mask.cpu()], rtol=1e-4)
