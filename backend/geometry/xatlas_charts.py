"""xatlas itself: charting and packing meshes into one atlas (numpy and xatlas only).

`uv.unwrap` runs `chart` in a child process (`python -m backend.geometry.xatlas_charts`), which
this module keeps cheap to start.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def chart(meshes: Sequence[tuple[np.ndarray, np.ndarray]], texture_size: int, padding: int,
          uvs: Optional[Sequence[np.ndarray]] = None,
          straight_seams: bool = True) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """xatlas's (vertex_map, faces, uv) per mesh, all in one atlas; with `uvs`, their charts
    are only packed.

    `straight_seams` False drops xatlas's preference for straight chart boundaries. On an
    isosurface (jagged at the triangle scale) that preference makes many small charts: a
    50,000-triangle marching-cubes sphere took 6.8 s into 1,445 charts with it, 3.1 s into 759
    without, using more of the atlas (85% against 83%). Modelled meshes keep it: their seams
    follow their edge loops."""
    import xatlas

    atlas = xatlas.Atlas()
    scale = unit_scale([vertices for vertices, _ in meshes])
    for i, (vertices, faces) in enumerate(meshes):
        vertices = unsettled(vertices) if uvs is None else np.asarray(vertices, np.float64)
        atlas.add_mesh(np.ascontiguousarray(vertices * scale, np.float32), np.ascontiguousarray(faces, np.uint32),
                       None, None if uvs is None else np.ascontiguousarray(uvs[i], np.float32))
    charts = xatlas.ChartOptions()
    charts.use_input_mesh_uvs = uvs is not None
    if not straight_seams:
        charts.straightness_weight = 0.0
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)  # texels_per_unit 0: xatlas scales the charts to fill this one atlas
    pack.padding = int(padding)
    pack.bilinear = True
    pack.bruteForce = False
    atlas.generate(chart_options=charts, pack_options=pack)
    return [(vertex_map.astype(np.int64), faces.astype(np.int64), uv.astype(np.float32))
            for vertex_map, faces, uv in (atlas[i] for i in range(len(meshes)))]


def unit_scale(meshes: Sequence[np.ndarray]) -> float:
    """The factor that makes the largest mesh about one unit across, the same for all of them
    (their charts keep one texel density).

    xatlas's tolerances are absolute: a sphere of 3 mm radius came back with NaN UVs, and one
    of 2 cm used 0.40 of the atlas where the same sphere at 1 m used 0.74.
    """
    sizes = [float(np.ptp(np.asarray(v, np.float64), axis=0).max()) for v in meshes if len(v)]
    size = max(sizes, default=0.0)
    return 1.0 / size if np.isfinite(size) and size > 0 else 1.0


def unsettled(vertices: np.ndarray) -> np.ndarray:
    """The positions, centred and moved by at most 1e-5 of the mesh's size, the same way every time.

    xatlas misbehaves on exactly regular meshes, which Blender's primitives are: an ico sphere
    of 6 subdivisions crashed it (a segfault), and pieces of one were charted with texels 5.8
    times denser in places than in others (1.25 once moved). Copies of one position (a mesh
    split at sharp edges) move together, since xatlas joins faces through shared positions.
    Centring keeps the move above float32's resolution far from the origin. Only the charting
    sees these positions; the layout keeps the mesh's own.
    """
    points = np.asarray(vertices, np.float64)
    if not len(points):
        return points
    low, high = points.min(axis=0), points.max(axis=0)
    size = float(np.linalg.norm(high - low))
    if not np.isfinite(size):
        return points
    _, position = np.unique(points, axis=0, return_inverse=True)
    shift = np.random.default_rng(0).uniform(-1e-5, 1e-5, (int(position.max()) + 1, 3)) * size
    return points - (low + high) / 2 + shift[position.reshape(-1)]


def _serve() -> None:
    """The child process: read pickled `chart` arguments from stdin, write the pickled result
    to stdout. It ends itself should its parent (the backend) die first, rather than chart on
    for nobody."""
    import os
    import pickle
    import sys
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    arguments = pickle.load(sys.stdin.buffer)
    pickle.dump(chart(*arguments), sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
