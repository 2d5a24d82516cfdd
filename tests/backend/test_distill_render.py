"""The distillation engine's renderer: gradients match finite differences, shadings, cameras."""

import pytest
import torch

from backend.distill.cameras import CameraConfig, sample_views, view_at
from backend.distill.field import FieldConfig, RadianceField
from backend.distill.volume import SHADINGS, Occupancy, RenderConfig, render


def tiny_field(seed: int = 0) -> RadianceField:
    torch.manual_seed(seed)
    return RadianceField(FieldConfig(resolutions=(4, 8), features=2, hidden=8, init_std=0.5))


@pytest.mark.parametrize("shading", ["albedo", "lambertian"])
def test_render_gradients_match_finite_differences(shading):
    """d(render)/d(grid feature) by autograd against central differences, for a few features that
    the rays see (the whole chain: grid lookup, MLP, density activation, compositing, shading)."""
    field = tiny_field().double()
    view = view_at(20.0, 30.0, 3.0, 40.0, 6)
    light = torch.tensor([2.0, 3.0, 2.0], dtype=torch.float64)
    weights = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def objective() -> torch.Tensor:
        rendered = render(field, [view], RenderConfig(samples=16), shading=shading, light=light,
                          background=torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64),
                          generator=torch.Generator().manual_seed(0))
        return (rendered.rgb * weights).sum()

    grid = field.grids[1]
    objective().backward()
    seen = grid.grad.abs().flatten().topk(5).indices  # the features with the most influence
    for index in seen:
        original = grid.data.view(-1)[index].item()
        values = []
        for delta in (1e-5, -1e-5):
            grid.data.view(-1)[index] = original + delta
            with torch.no_grad():
                values.append(objective().item())
        grid.data.view(-1)[index] = original
        numeric = (values[0] - values[1]) / 2e-5
        assert grid.grad.view(-1)[index].item() == pytest.approx(numeric, rel=1e-3, abs=1e-7)


def test_shadings_light_the_surface_and_textureless_drops_the_albedo():
    field = tiny_field()
    view = view_at(10.0, 0.0, 3.0, 40.0, 16)
    light = torch.tensor([0.0, 3.0, 3.0])
    images = {s: render(field, [view], shading=s, light=light, generator=torch.Generator().manual_seed(0)).rgb
              for s in SHADINGS}
    assert all(image.shape == (1, 3, 16, 16) for image in images.values())
    assert not torch.allclose(images["albedo"], images["lambertian"])
    # Textureless is the same lighting on a white albedo: grey, all channels equal.
    opaque = render(field, [view], generator=torch.Generator().manual_seed(0)).opacity[0, 0] > 0.99
    lit = images["textureless"][0][:, opaque]
    assert torch.allclose(lit[0], lit[1], atol=1e-5) and torch.allclose(lit[1], lit[2], atol=1e-5)
    with pytest.raises(ValueError, match="shading must be one of"):
        render(field, [view], shading="toon")


def test_empty_space_skipping_changes_nothing_it_skips():
    """Samples in cells the occupancy grid marks empty are dropped only where the field has no density."""
    field = tiny_field()
    views = sample_views(2, CameraConfig(resolution=12), torch.Generator().manual_seed(3))
    occupancy = Occupancy(16, field.config.bound)
    fraction = occupancy.update(field, threshold=1e-3, generator=torch.Generator().manual_seed(0))
    full = render(field, views, generator=torch.Generator().manual_seed(0))
    skipped = render(field, views, occupancy=occupancy, generator=torch.Generator().manual_seed(0))
    assert fraction < 1.0
    assert torch.allclose(full.rgb, skipped.rgb, atol=2e-3)


def test_sampled_cameras_cover_their_ranges_and_look_at_the_object():
    config = CameraConfig(elevation=(-10.0, 60.0), distance=(2.8, 3.4), fov_y=(36.0, 44.0), resolution=8)
    views = sample_views(500, config, torch.Generator().manual_seed(0))
    elevations = torch.tensor([v.elevation for v in views])
    azimuths = torch.tensor([v.azimuth for v in views])
    assert elevations.min() >= -10.0 - 1e-6 and elevations.max() <= 60.0 + 1e-6
    assert azimuths.min() < -150 and azimuths.max() > 150  # all the way round
    for v in views[:20]:
        eye = torch.tensor(v.camera.eye)
        assert eye.norm().item() == pytest.approx(v.distance, rel=1e-6)
        assert v.camera.target == (0.0, 0.0, 0.0)
