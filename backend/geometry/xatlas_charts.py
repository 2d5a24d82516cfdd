"""xatlas itself: charting and packing meshes into one atlas (numpy and xatlas only).

`uv.unwrap` runs `chart` in a child process, which this module keeps cheap to start.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def chart(meshes: Sequence[tuple[np.ndarray, np.ndarray]], texture_size: int, padding: int,
          uvs: Optional[Sequence[np.ndarray]] = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """xatlas's (vertex_map, faces, uv) per mesh, all in one atlas; with `uvs`, their charts
    are only packed."""
    import xatlas

    atlas = xatlas.Atlas()
    for i, (vertices, faces) in enumerate(meshes):
        if uvs is None:
            vertices = unsettled(vertices)
        atlas.add_mesh(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32),
                       None, None if uvs is None else np.ascontiguousarray(uvs[i], np.float32))
    charts = xatlas.ChartOptions()
    charts.use_input_mesh_uvs = uvs is not None
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)  # texels_per_unit 0: xatlas scales the charts to fill this one atlas
    pack.padding = int(padding)
    pack.bilinear = True
    pack.bruteForce = False
    atlas.generate(chart_options=charts, pack_options=pack)
    return [(vertex_map.astype(np.int64), faces.astype(np.int64), uv.astype(np.float32))
            for vertex_map, faces, uv in (atlas[i] for i in range(len(meshes)))]


def unsettled(vertices: np.ndarray) -> np.ndarray:
    """The positions moved by at most 1e-5 of the mesh's size, the same way every time.

    xatlas misbehaves on exactly regular meshes, which Blender's primitives are: an ico sphere
    of 6 subdivisions crashed it (a segfault, taking the backend down), and pieces of one were
    charted with texels 5.8 times denser in places than in others (1.25 once moved). Only the
    charting sees the moved positions; the layout keeps the mesh's own.
    """
    size = float(np.linalg.norm(np.ptp(vertices, axis=0))) if len(vertices) else 0.0
    shift = np.random.default_rng(0).uniform(-1e-5, 1e-5, np.shape(vertices)) * size
    return np.asarray(vertices, np.float64) + shift
