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
