"""Magic3D's fine stage against a latent oracle: from a plain sphere with a blank texture, the
real mesh stage (smooth vertex displacement, rasterized renders, texture field, latent SDS with
t in [0.02, 0.5]) must reach a known textured asset: held-out PSNR >= 28 dB, Chamfer <= 1%.

The "latent" is VAE-free: 8x8 pixel blocks folded into 192 channels (pixel_unshuffle, the
VAE's downsampling factor) and mixed by a fixed orthogonal matrix. SDS only needs a
differentiable map from renders into the space the prior noises, and the oracle's x0 is the
target mapped the same way, so the update pulls the encoded render towards the encoded target
as it would through the VAE. Being invertible like a good VAE (whose decoder gives the image
back), it keeps what the renders show; the VAE's own wiring is exercised by the tiny Stable
Diffusion tests.
"""

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from backend.distill.cameras import CameraConfig, view_at
from backend.distill.field import FieldConfig, RadianceField
from backend.distill.guidance.oracle import OracleDenoiser
from backend.distill.guidance.sds import ScoreDistillation, SDSConfig
from backend.distill.mesh_stage import MeshStageConfig, TexturedMesh, refine_mesh, render_mesh
from backend.distill.metrics import chamfer_distance, psnr

torch.set_num_threads(1)
MIXING = torch.linalg.qr(torch.randn(192, 192, generator=torch.Generator().manual_seed(0)))[0]


def to_latent(renders: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 192, H/8, W/8)."""
    return torch.einsum("kc,bchw->bkhw", MIXING.to(renders), F.pixel_unshuffle(renders * 2 - 1, 8))


def colour(points: torch.Tensor) -> torch.Tensor:
    """The asset's paint: smooth colour waves over its surface."""
    x, y, z = points.unbind(-1)
    return torch.stack([0.5 + 0.35 * torch.sin(4 * x + 1), 0.5 + 0.35 * torch.sin(3 * y + 2 * z),
                        0.5 + 0.35 * torch.cos(5 * z - x)], -1)


def asset():
    """A sphere (the draft the stage starts from) and the asset: the same sphere with a bump on top."""
    ball = trimesh.creation.icosphere(subdivisions=4, radius=0.7)
    vertices, faces = ball.vertices.astype(np.float32), ball.faces.astype(np.int64)
    s = np.clip((vertices[:, 1] - 0.35) / 0.35, 0, 1)
    return vertices, faces, (vertices * (1 + 0.25 * s * s * (3 - 2 * s))[:, None]).astype(np.float32)


def test_the_mesh_stage_reaches_a_textured_asset_from_a_latent_oracle():
    vertices, faces, target = asset()
    target_t, faces_t = torch.from_numpy(target), torch.from_numpy(faces)

    def target_render(view):
        return render_mesh(target_t, faces_t, view, view.shading, torch.tensor(view.background), colour)[0]

    steps = 1200
    oracle = OracleDenoiser(target_render, to_model_space=to_latent)
    guidance = ScoreDistillation(oracle, SDSConfig(guidance_scale=1.0, t_range=(0.02, 0.5), view_dependent=False),
                                 total_steps=steps, to_model_space=to_latent, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    mesh = TexturedMesh(vertices, faces, RadianceField(FieldConfig(resolutions=(16, 32, 64))))
    config = MeshStageConfig(steps=steps, cameras=CameraConfig(resolution=64), lr_shape=0.01, lr_grid=0.03, seed=0)
    refine_mesh(mesh, guidance, "a painted ball with a bump", config)

    result = mesh.positions().detach().numpy()[mesh.shape.graph.weld]
    diagonal = float(np.linalg.norm(target.max(0) - target.min(0)))
    after = chamfer_distance(result, faces, target, faces, samples=20000) / diagonal
    before = chamfer_distance(vertices, faces, target, faces, samples=20000) / diagonal
    views = [replace(view_at(elevation, azimuth, 3.1, 40.0, 128), background=(1.0, 1.0, 1.0), shading=shading)
             for elevation, azimuth, shading in ((20, 30, "albedo"), (45, 200, "albedo"), (5, 110, "lambertian"),
                                                 (35, 290, "albedo"))]
    white = torch.ones(3)
    with torch.no_grad():
        got = torch.stack([mesh.render(v, v.shading, white)[0] for v in views])
        want = torch.stack([target_render(v) for v in views])
        grey = torch.stack([render_mesh(torch.from_numpy(vertices), faces_t, v, v.shading, white,
                                        lambda p: torch.full_like(p, 0.5))[0] for v in views])
    reached, start = psnr(got, want), psnr(grey, want)
    print(f"held-out PSNR {reached:.1f} dB (the grey draft: {start:.1f}); Chamfer {after:.2%} of the diagonal "
          f"(the draft: {before:.2%})")
    assert reached >= 28.0 and start < 20.0, (reached, start)
    assert after <= 0.01 and after < 0.5 * before, (after, before)


def test_mesh_renders_have_finite_difference_gradients_for_vertices_and_texture():
    """Away from silhouettes a render is smooth in the vertices (barycentrics, normals) and in the
    texture field's parameters; autograd must agree with finite differences on both."""
    torch.manual_seed(0)
    vertices, faces, _ = asset()
    mesh = TexturedMesh(vertices, faces, RadianceField(FieldConfig(resolutions=(8, 16))), smoothness=10.0).double()
    mesh.shape.rest, mesh.shape.weight = mesh.shape.rest.double(), mesh.shape.weight.double()
    if mesh.shape.normals is not None:
        mesh.shape.normals = mesh.shape.normals.double()
    view = replace(view_at(25.0, 40.0, 3.0, 40.0, 48), background=(1.0, 1.0, 1.0), shading="lambertian")
    probe = torch.rand(3, 48, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def loss():
        image, mask = mesh.render(view, "lambertian", torch.ones(3, dtype=torch.float64))
        return (image * probe * mask).sum()

    loss().backward()
    grid = mesh.texture.grids[1]
    assert mesh.shape.u.grad.abs().max() > 0 and grid.grad.abs().max() > 0
    probes = []
    for parameter in (mesh.shape.u, grid):  # the entry with the largest gradient and a middling one
        touched = torch.nonzero(parameter.grad.abs() > 0)
        order = parameter.grad.abs()[tuple(touched.T)].argsort()
        probes += [(parameter, tuple(touched[order[-1]].tolist())), (parameter, tuple(touched[order[len(order) // 2]].tolist()))]
    for parameter, index in probes:
        analytic = float(parameter.grad[index])
        with torch.no_grad():
            parameter[index] += 1e-6
            up = float(loss())
            parameter[index] -= 2e-6
            down = float(loss())
            parameter[index] += 1e-6
        numeric = (up - down) / 2e-6
        assert analytic != 0 and abs(numeric - analytic) <= 1e-4 * max(1.0, abs(analytic)), (index, numeric, analytic)
