"""Score distillation's engine against an oracle prior whose answer is known.

The oracle's noise prediction is the optimum for data concentrated on renders of a known
asset from the camera being scored (backend/distill/guidance/oracle.py). Run from a blank
field through the real engine (field, volume renderer, cameras, schedule, SDS, optimiser), the
result must reproduce that asset from cameras it never trained on.
"""


import numpy as np
import torch
import trimesh

from backend.distill.cameras import CameraConfig, sample_views
from backend.distill.field import FieldConfig, RadianceField
from backend.distill.guidance.oracle import OracleDenoiser
from backend.distill.guidance.sds import ScoreDistillation, SDSConfig
from backend.distill.mesh import extract_mesh
from backend.distill.metrics import chamfer_distance, psnr, silhouette_iou
from backend.distill.trainer import DistillConfig, distill
from backend.distill.volume import Occupancy, RenderConfig, render
from backend.render.rasterize import interpolate, rasterize


def make_asset() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A sphere resting on a box, coloured by position: (V, 3) vertices, (F, 3) faces, (V, 3)
    colours. They touch without overlapping, so every face is on the visible surface."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.42)
    sphere.apply_translation([0.0, 0.15, 0.0])
    box = trimesh.creation.box(extents=(0.6, 0.3, 0.5))
    box.apply_translation([0.15, -0.42, 0.05])
    asset = trimesh.util.concatenate([sphere, box])
    vertices = torch.tensor(asset.vertices, dtype=torch.float32)
    return vertices, torch.tensor(asset.faces, dtype=torch.int64), (vertices * 0.8 + 0.5).clamp(0.05, 0.95)


VERTICES, FACES, COLOURS = make_asset()


def render_asset(view) -> torch.Tensor:
    """(3, H, W) the asset from `view`, on the background the field was rendered on."""
    fragments = rasterize(VERTICES, FACES, view.camera, backend="torch")
    mask = fragments.mask[..., None].float()
    background = torch.tensor(view.background or (1.0, 1.0, 1.0))
    return (interpolate(COLOURS, fragments, FACES) * mask + (1 - mask) * background).permute(2, 0, 1)


def test_sds_against_the_oracle_reconstructs_the_asset_from_held_out_views():
    steps = 600  # about half a minute on two cores (32 dB; 1000 steps reach 33.5)
    config = DistillConfig(steps=steps, views_per_step=2, cameras=CameraConfig(resolution=32),
                           rendering=RenderConfig(samples=48), albedo_steps=steps, lr_grid=3e-2, lr_mlp=3e-3, seed=0)
    field = RadianceField(FieldConfig(resolutions=(16, 32, 64, 128), features=2, hidden=32))
    guidance = ScoreDistillation(OracleDenoiser(render_asset), SDSConfig(), total_steps=steps,
                                 generator=torch.Generator().manual_seed(1))
    seen = []
    distill(field, guidance, "the asset", config, on_step=lambda step, views, loss: seen.extend(views))

    held_out = sample_views(8, CameraConfig(resolution=64), torch.Generator().manual_seed(12345))
    assert nearest_training_camera(held_out, seen) > 1.0  # held out: never seen in training
    with torch.no_grad():
        occupancy = Occupancy(64, field.config.bound)
        occupancy.update(field, config.rendering.occupancy_threshold)
        rendered = render(field, held_out, RenderConfig(samples=128), occupancy, generator=torch.Generator().manual_seed(0))
    targets = torch.stack([render_asset(v) for v in held_out])
    masks = torch.stack([rasterize(VERTICES, FACES, v.camera, backend="torch").mask for v in held_out])
    image_psnr, iou = psnr(rendered.rgb, targets), silhouette_iou(rendered.opacity[:, 0], masks)

    vertices, faces, _ = extract_mesh(field, resolution=128)
    diagonal = float(np.linalg.norm(VERTICES.numpy().max(0) - VERTICES.numpy().min(0)))
    chamfer = chamfer_distance(vertices, faces, VERTICES.numpy(), FACES.numpy()) / diagonal
    print(f"held-out PSNR {image_psnr:.1f} dB, silhouette IoU {iou:.3f}, Chamfer {chamfer:.2%} of the diagonal")
    assert image_psnr >= 28.0 and iou >= 0.9 and chamfer <= 0.01


def nearest_training_camera(held_out, seen) -> float:
    """How close the nearest training camera came to any held-out one, in units of (1 degree of
    direction, 0.05 of distance, 1 degree of field of view): a camera is the same one only if
    all three match, so above 1 none was."""
    def table(views):
        return (torch.nn.functional.normalize(torch.tensor([v.camera.eye for v in views]), dim=1),
                torch.tensor([v.distance for v in views]), torch.tensor([v.fov_y for v in views]))

    (d_held, r_held, f_held), (d_seen, r_seen, f_seen) = table(held_out), table(seen)
    angle = torch.rad2deg(torch.acos((d_held @ d_seen.T).clamp(-1, 1)))
    gap = torch.maximum(torch.maximum(angle, (r_held[:, None] - r_seen).abs() / 0.05), (f_held[:, None] - f_seen).abs())
    return float(gap.min())
