"""Texture coordinates: keep the ones a mesh has, unwrap it with xatlas when it has none.

UVs follow glTF: (u, v) with v pointing down the image, so texel row = v * height.
An unwrap splits vertices along seams (a vertex gets one UV per chart it borders); the
triangles keep their order and `vertex_map` says which original vertex each new one
copies, so callers can carry per-vertex data (colours, weights) across.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import GenerationFailed, InputError
from ..results import MeshPart


@dataclass
class UVLayout:
    """A mesh with texture coordinates.

    Attributes:
        vertices: (N, 3) float32, original vertices, split along UV seams when unwrapped.
        faces: (M, 3) int64, same triangles in the same order.
        uv: (N, 2) float32 in [0, 1], glTF convention (v down).
        vertex_map: (N,) int64 index of the original vertex each vertex copies.
        unwrapped: True when the UVs were made here, False when they were the mesh's own.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    vertex_map: np.ndarray
    unwrapped: bool


def ensure_uv(vertices: np.ndarray, faces: np.ndarray, uv: Optional[np.ndarray] = None,
              texture_size: int = 1024, padding: int = 4) -> UVLayout:
    """Return the mesh's own UVs, or an xatlas unwrap when it has none.

    Args:
        vertices: (N, 3) positions.
        faces: (M, 3) triangle indices.
        uv: (N, 2) existing UVs, or None.
        texture_size: Texture the unwrap is packed for (sets chart padding in texels).
        padding: Texels between charts, so mip levels do not mix neighbouring charts.

    Returns:
        The layout.
    """
    vertices = np.asarray(vertices, np.float32).reshape(-1, 3)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if uv is not None:
        uv = np.asarray(uv, np.float32).reshape(-1, 2)
        if len(uv) != len(vertices):
            raise InputError(f"the mesh has {len(uv)} UVs for {len(vertices)} vertices")
        return UVLayout(vertices, faces, uv, np.arange(len(vertices)), unwrapped=False)
    return unwrap([(vertices, faces)], texture_size, padding)[0]


def unwrap(meshes: Sequence[tuple[np.ndarray, np.ndarray]], texture_size: int = 1024, padding: int = 4,
           polygons: Optional[Sequence[Optional[np.ndarray]]] = None,
           on_wait: Optional[Callable[[], None]] = None, straight_seams: bool = True) -> list[UVLayout]:
    """Unwrap several meshes into one shared atlas with xatlas (dense ones in pieces: `unwrap_pieces`).

    Args:
        meshes: (vertices (N, 3), faces (M, 3)) pairs.
        texture_size: Texture resolution the charts are packed for.
        padding: Texels kept free around each chart.
        polygons: Per mesh, None or (M,) the polygon each triangle was cut from: the triangles
            of one polygon are then kept in one chart wherever they fit (`polygon_charts`).
        on_wait: Called about 5 times a second while xatlas works; it may raise to stop it.
        straight_seams: Prefer straight chart boundaries (False for isosurfaces:
            `xatlas_charts.chart`).

    Returns:
        One layout per mesh, all in the same [0, 1] square without overlaps.

    Raises:
        InputError: a mesh has no triangles, or xatlas crashed on it.
    """
    from .polygon_charts import keep_polygons_whole
    from .unwrap_pieces import join_pieces, piece_mesh, split_into_pieces

    for _, faces in meshes:
        if len(faces) == 0:
            raise InputError("cannot unwrap a mesh without triangles")
    meshes = [(np.asarray(v, np.float32), np.asarray(f, np.int64)) for v, f in meshes]
    polygons = [None if p is None else np.asarray(p, np.int64) for p in polygons or []]
    polygons += [None] * (len(meshes) - len(polygons))
    # Dense meshes are charted in pieces (far faster), all pieces of all meshes in one atlas.
    splits = [split_into_pieces(vertices, faces, polygon) for (vertices, faces), polygon in zip(meshes, polygons)]
    pieces = [piece_mesh(vertices, faces, triangles) for (vertices, faces), split in zip(meshes, splits)
              for triangles in split]
    charted = _xatlas([(vertices, faces) for vertices, faces, _ in pieces], texture_size, padding, on_wait=on_wait,
                      straight_seams=straight_seams)
    unwrapped, start = [], 0
    for (_, faces), split in zip(meshes, splits):
        stop = start + len(split)
        unwrapped.append(join_pieces(len(faces), split, charted[start:stop], [s for _, _, s in pieces[start:stop]]))
        start = stop
    moved = 0
    for i, polygon in enumerate(polygons):
        if polygon is not None:
            vertices, faces = meshes[i]
            *layout, count = keep_polygons_whole(vertices, faces, polygon, *unwrapped[i])
            unwrapped[i], moved = tuple(layout), moved + count
    if moved:  # pack the changed charts again, as they now are
        repacked = _xatlas([(meshes[i][0][m], f) for i, (m, f, _) in enumerate(unwrapped)], texture_size, padding,
                           [uv for _, _, uv in unwrapped], on_wait)
        unwrapped = [(m[new_map], f, uv) for (m, _, _), (new_map, f, uv) in zip(unwrapped, repacked)]
    return [UVLayout(vertices=vertices[vertex_map], faces=faces, uv=np.clip(uv, 0.0, 1.0), vertex_map=vertex_map,
                     unwrapped=True) for (vertices, _), (vertex_map, faces, uv) in zip(meshes, unwrapped)]


def _xatlas(meshes: Sequence[tuple[np.ndarray, np.ndarray]], texture_size: int, padding: int,
            uvs: Optional[Sequence[np.ndarray]] = None, on_wait: Optional[Callable[[], None]] = None,
            straight_seams: bool = True) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`xatlas_charts.chart` in a child process: xatlas has crashed (a segfault) on some meshes,
    which would take the whole backend and every job in it down.

    Args:
        on_wait: Called about 5 times a second while xatlas works; it may raise (a job's
            cancel) to stop it.

    Raises:
        InputError: xatlas crashed on the mesh or gave NaN UVs; the message says how to
            give the mesh UVs instead.
        GenerationFailed: the system killed the child, most likely for memory.
    """
    import os
    import pickle
    import subprocess
    import sys
    import threading

    # A fresh interpreter that imports only numpy and xatlas (0.2 s), finding this package as we do.
    path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    child = subprocess.Popen([sys.executable, "-m", "backend.geometry.xatlas_charts"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
    answer = []
    reader = threading.Thread(target=lambda: answer.append(child.stdout.read()), daemon=True)
    try:
        with child.stdin:
            child.stdin.write(pickle.dumps((meshes, texture_size, padding, uvs, straight_seams),
                                           protocol=pickle.HIGHEST_PROTOCOL))
        reader.start()
        while reader.is_alive():
            reader.join(0.2)
            if on_wait is not None and reader.is_alive():
                on_wait()
        if child.wait() == 0 and answer and answer[0]:
            charted = pickle.loads(answer[0])
            if all(np.isfinite(uv).all() for _, _, uv in charted):
                return charted
    except (BrokenPipeError, pickle.UnpicklingError, EOFError):
        pass  # the child died: said below
    finally:
        killed_here = child.poll() is None
        if killed_here:
            child.kill()
            child.wait()
    give_uvs = "give it a UV map and texture it again (in Blender: UV > Smart UV Project)"
    if child.returncode == -9 and not killed_here:  # SIGKILL: what Linux's out-of-memory killer sends
        raise GenerationFailed(f"the UV unwrap (xatlas) was killed, most likely out of memory: free memory or {give_uvs}")
    if child.returncode == 0:
        raise InputError(f"the UV unwrap (xatlas) gave no usable UVs for this mesh: {give_uvs}")
    raise InputError(f"the UV unwrap (xatlas) stopped on this mesh (exit status {child.returncode}): {give_uvs}")


def wrap_into_unit_square(faces: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Move triangles laid out beyond the unit square (tiled, offset or mirrored-and-shifted UVs)
    into it by whole tiles, where a repeating image lookup (Blender's default) reads them.

    Each triangle moves by the integer part of its UV centre; a moved triangle gets its own copy
    of its three vertices, so shared vertices keep their UVs for the triangles that stay. A
    triangle straddling an edge stays where its centre is (the painter rasterizes it on
    both sides: `texture.project.SurfaceSamples`).

    Returns:
        (vertex_map (V',) int64: which original vertex each vertex copies, faces, uv, number
        of triangles moved); the arrays come back as given when none moves.
    """
    shift = np.floor(uv[faces].mean(1))  # (F, 2)
    moved = np.nonzero(shift.any(1))[0]
    if not len(moved):
        return np.arange(len(uv)), faces, uv, 0
    corners = faces[moved].reshape(-1)
    new_uv = (uv[corners].reshape(-1, 3, 2) - shift[moved][:, None, :]).reshape(-1, 2)
    faces = faces.copy()
    faces[moved] = len(uv) + np.arange(3 * len(moved)).reshape(-1, 3)
    return (np.concatenate([np.arange(len(uv)), corners]), faces,
            np.concatenate([uv, new_uv]).astype(uv.dtype, copy=False), int(len(moved)))


def layouts_overlap(layouts: Sequence[tuple[np.ndarray, np.ndarray]], resolution: int = 256,
                    tolerance: float = 0.01) -> bool:
    """Whether two of the UV layouts ((uv, faces) pairs) share more than `tolerance` of the
    smaller one's texels, where the texture repeats. Parts that already share one atlas (a
    character's body and eyes) do not."""
    import itertools

    import torch

    from ..render.rasterize import uv_space_texels

    covered = []
    for uv, faces in layouts:
        _, faces, uv, _ = wrap_into_unit_square(np.asarray(faces, np.int64), np.asarray(uv, np.float32))
        texel, _, _ = uv_space_texels(torch.from_numpy(uv), torch.from_numpy(faces), resolution, resolution)
        covered.append(texel.numpy())
    return any(len(np.intersect1d(a, b, assume_unique=True)) > tolerance * min(len(a), len(b))
               for a, b in itertools.combinations(covered, 2))


def shared_texel_fraction(uv: np.ndarray, faces: np.ndarray, covered_texels: int, texture_size: int) -> float:
    """The fraction of the triangles' UV area that lies on texels other triangles use too
    (overlapping UVs: mirrored halves, one layout per material), from how many texels the
    layout covers once rasterized."""
    area = float(np.abs(signed_uv_areas(uv, faces)).sum()) * texture_size ** 2
    return max(0.0, 1.0 - covered_texels / area) if area > 0 else 0.0


def signed_uv_areas(uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(M,) float64 area of each triangle in UV space, negative where it is laid out mirrored."""
    corners = np.asarray(uv, np.float64)[np.asarray(faces, np.int64).reshape(-1, 3)]  # (M, 3, 2)
    edges = corners[:, 1:] - corners[:, :1]
    return 0.5 * (edges[:, 0, 0] * edges[:, 1, 1] - edges[:, 0, 1] * edges[:, 1, 0])


def pack_in_grid(uvs: Sequence[np.ndarray], margin: float = 0.01) -> list[np.ndarray]:
    """Place several UV layouts side by side in a square grid of tiles.

    Each layout keeps its shape (a uniform scale and a shift), so an artist's own UVs stay
    recognisable while parts stop overlapping in the one shared texture. A layout within the
    unit square fills its tile as the square would; one reaching beyond it (triangles
    straddling an edge) is shrunk until all of it fits.

    Args:
        uvs: (N_i, 2) arrays.
        margin: Free border inside each tile, as a fraction of the tile.

    Returns:
        The moved UVs, same shapes.
    """
    columns = max(1, math.ceil(math.sqrt(len(uvs))))
    out = []
    for i, uv in enumerate(uvs):
        row, col = divmod(i, columns)
        low = np.minimum(uv.min(0), 0.0) if len(uv) else np.zeros(2)
        high = np.maximum(uv.max(0), 1.0) if len(uv) else np.ones(2)
        scale = (1.0 - 2 * margin) / columns / float((high - low).max())
        shift = np.array([col, row], np.float32) / columns + margin / columns
        out.append(((uv - low) * scale + shift).astype(np.float32))
    return out


def ensure_part_uvs(parts: Sequence[MeshPart], texture_size: int = 1024, padding: int = 4,
                    on_wait: Optional[Callable[[], None]] = None,
                    straight_seams: bool = True) -> tuple[list[MeshPart], str]:
    """UVs for every part of a result that shares one texture.

    One part with UVs keeps them exactly. Parts without UVs, or with UVs nothing can be
    painted in (NaN, or no area: a UV map added but never unwrapped), are unwrapped together
    into one atlas. When the result then holds layouts that would share texels (several parts
    each with its own unit square, or own UVs plus an unwrap), they go side by side in a grid
    of tiles; parts whose own UVs already share one atlas keep them as they are.

    Args:
        parts: The parts, in glTF axes.
        texture_size: Texture resolution the unwrap is packed for.
        padding: Texels kept free around each chart.
        on_wait, straight_seams: See `unwrap`.

    Returns:
        (parts with `uv` set, a sentence saying what happened to the UVs).
    """
    unusable = {i: why for i, p in enumerate(parts) if p.uv is not None and (why := uv_problem(p.uv, p.faces))}
    own = [i for i, p in enumerate(parts) if p.uv is not None and i not in unusable]
    bare = [i for i, p in enumerate(parts) if p.uv is None or i in unusable]
    # Layouts that would share texels go side by side; parts that share one atlas stay as they are.
    tiled = bool(own and bare) or (len(own) > 1 and layouts_overlap([(parts[i].uv, parts[i].faces) for i in own]))
    new_parts = list(parts)
    for i in own:
        layout = ensure_uv(parts[i].vertices, parts[i].faces, parts[i].uv)
        if tiled:
            # Its tile holds the unit square: bring triangles on other tiles into it first.
            vertex_map, faces, uv, _ = wrap_into_unit_square(layout.faces, layout.uv)
            used, faces = np.unique(faces, return_inverse=True)  # vertices left behind by moved triangles go
            new_parts[i] = _take_vertices(parts[i], vertex_map[used], faces.reshape(-1, 3), uv[used])
        else:
            new_parts[i] = _take_vertices(parts[i], layout.vertex_map, layout.faces, layout.uv)
    if bare:
        layouts = unwrap([(parts[i].vertices, parts[i].faces) for i in bare], texture_size, padding,
                         [parts[i].polygons for i in bare], on_wait, straight_seams)
        for i, layout in zip(bare, layouts):
            new_parts[i] = _take_vertices(parts[i], layout.vertex_map, layout.faces, layout.uv)
    # The layouts: each part with its own UVs, plus one shared unwrap for the rest.
    groups = [[i] for i in own] + ([bare] if bare else [])
    if tiled:
        # Tile by group: the unwrap's parts share one tile (xatlas already packed them together).
        placed = pack_in_grid([np.concatenate([new_parts[i].uv for i in g]) for g in groups])
        for g, uv in zip(groups, placed):
            offsets = np.cumsum([0] + [len(new_parts[i].uv) for i in g])
            for i, a, b in zip(g, offsets[:-1], offsets[1:]):
                new_parts[i] = dataclasses.replace(new_parts[i], uv=uv[a:b])
    if not bare:
        note = ("kept the mesh's own UVs" if len(own) == 1 else "kept each part's own UVs, placed side by side in a grid"
                if tiled else "kept the parts' own UVs, which share one atlas")
    elif not own:
        note = "unwrapped UVs with xatlas (the mesh had none); triangles keep their order, vertices are split at seams"
    else:
        note = ("kept the UVs of parts that had them and unwrapped the others with xatlas; "
                "the layouts are placed side by side in a grid")
    for i, why in unusable.items():
        note += f"; part {parts[i].name!r} was unwrapped because {why}"
    return new_parts, note


def _take_vertices(part: MeshPart, vertex_map: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> MeshPart:
    """`part` with the vertices (and their colours and normals) `vertex_map` picks, split at
    seams or left out, and new `faces` and `uv`."""
    def take(values, dtype=None):
        return None if values is None else np.asarray(values, dtype)[vertex_map]

    return MeshPart(part.name, take(part.vertices, np.float32), faces, take(part.vertex_colors), uv,
                    normals=take(part.normals, np.float32), origin=part.origin, node_matrix=part.node_matrix,
                    material=part.material)


def uv_problem(uv: np.ndarray, faces: np.ndarray) -> str:
    """Why a part's own UVs cannot be painted in ("" when they can)."""
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    if len(uv) and not np.isfinite(uv).all():
        return "some of its UVs are missing (a primitive without TEXCOORD_0), NaN or infinite"
    if np.asarray(faces).size and (len(uv) <= int(np.max(faces)) or int(np.min(faces)) < 0):
        return ""  # a count mismatch: ensure_uv refuses it with its own message
    area = float(np.abs(signed_uv_areas(uv, faces)).sum())
    return "its UVs have no area (a UV map added but never unwrapped?)" if area < 1e-10 else ""
