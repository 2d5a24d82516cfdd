"""Shared by the texture scripts run inside Blender: read a result's texture back per face."""

import numpy as np


def face_colour_reader(obj, image, uv_map: str):
    """A function polygon -> RGB of `image` at the centre of the polygon's UVs in `uv_map`."""
    mesh = obj.data
    pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(pixels)
    pixels = pixels.reshape(image.size[1], image.size[0], 4)
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers[uv_map].data.foreach_get("uv", uv)
    uv = uv.reshape(-1, 2)

    def colour(polygon) -> np.ndarray:
        centre = uv[list(polygon.loop_indices)].mean(axis=0)
        x, y = (np.clip(centre, 0, 1) * (np.array(image.size) - 1)).astype(int)
        return pixels[y, x, :3]

    return colour
