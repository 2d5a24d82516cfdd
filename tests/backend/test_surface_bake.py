"""Baking a distilled field's colour into a UV texture: each texel holds the colour at the
surface point it maps to."""

import numpy as np
import torch
import trimesh

from backend.texture.surface_bake import bake_albedo


def position_colour(points: torch.Tensor) -> torch.Tensor:
    return (points * 0.5 + 0.5).clamp(0, 1)


def test_the_texture_holds_the_colour_of_the_surface_under_each_texel():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    part, texture, note = bake_albedo(position_colour, sphere.vertices, sphere.faces, texture_size=256)
    assert texture.shape == (256, 256, 3) and texture.dtype == np.uint8 and "unwrap" in note.lower()
    # Each vertex's own colour, read back from the texture at its UV (glTF: row = v * height).
    rows = np.clip((part.uv[:, 1] * 256).astype(int), 0, 255)
    columns = np.clip((part.uv[:, 0] * 256).astype(int), 0, 255)
    read = texture[rows, columns] / 255.0
    expected = position_colour(torch.from_numpy(part.vertices)).numpy()
    error = np.abs(read - expected)
    assert error.mean() < 0.01 and np.percentile(error, 99) < 0.05, (error.mean(), error.max())
    # A constant colour would not pass: the colours really vary over the sphere.
    assert np.abs(expected - expected.mean(0)).mean() > 0.1


def test_an_isosurface_unwrapped_without_straight_seams_has_charts_that_do_not_overlap():
    from backend.geometry.isosurface import outer_surface
    from backend.geometry.uv import unwrap
    from backend.render.rasterize import rasterize_uv_space

    line = np.linspace(-1, 1, 40)
    x, y, z = np.meshgrid(line, line, line, indexing="ij")
    bumpy = 0.6 + 0.08 * np.sin(5 * x) * np.sin(4 * y) - np.sqrt(x ** 2 + y ** 2 + z ** 2)
    vertices, faces = outer_surface(bumpy, 1.0, 0.0)
    layout = unwrap([(vertices, faces)], 1024, straight_seams=False)[0]
    uv = torch.from_numpy(layout.uv)
    corners = uv[torch.from_numpy(layout.faces)]
    edges = corners[:, 1:] - corners[:, :1]
    area = 0.5 * (edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0]).abs().sum()
    covered = rasterize_uv_space(uv, torch.from_numpy(layout.faces), 2048, 2048).mask.float().mean()
    assert abs(float(covered / area) - 1) < 0.03  # the triangles' areas add up to what they cover: no overlap
