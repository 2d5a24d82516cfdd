"""Per-triangle bookkeeping that travels between the add-on and the backend (numpy only).

- Which part each triangle of an upload belongs to: the add-on reads it from the object's part
  vertex groups and sends it in the GLB's extras, so the backend need not guess from part boxes.
- Which triangles of the upload an edit kept: the backend answers with index runs, and the
  add-on deletes the others from the artist's own mesh instead of replacing the mesh.
- Which Blender vertex each uploaded vertex copies (the export splits vertices at UV seams):
  pieces of the mesh are then the artist's own islands, not whatever happens to touch.
- Which Blender polygon each uploaded triangle was cut from: an unwrap then keeps quads and
  n-gons whole.
"""

from __future__ import annotations

import base64
from typing import Any, Optional

import numpy as np

FACE_PARTS_KEY = "diffusion3d_face_parts"  # scene extras key of the upload's per-triangle parts
VERTEX_IDS_KEY = "diffusion3d_vertex_ids"  # scene extras key: base64 little-endian uint32 per vertex
POLYGONS_KEY = "diffusion3d_polygons"  # scene extras key: base64 little-endian uint32 per triangle
NO_PART = 0xFFFF


def encode_face_parts(names: list[str], index: np.ndarray) -> dict[str, Any]:
    """names: the parts; index: (T,) part index per triangle, -1 for none. JSON-able."""
    index = np.asarray(index)
    packed = np.where(index < 0, NO_PART, index).astype("<u2")
    return {"names": list(names), "index": base64.b64encode(packed.tobytes()).decode("ascii")}


def decode_face_parts(value: Any, n_triangles: int) -> Optional[tuple[list[str], np.ndarray]]:
    """(names, (T,) int64 index with -1 for none), or None when absent or not for this mesh."""
    try:
        names = [str(n) for n in value["names"]]
        packed = np.frombuffer(base64.b64decode(value["index"]), dtype="<u2").astype(np.int64)
    except (TypeError, KeyError, ValueError):
        return None
    if len(packed) != n_triangles or (packed[packed != NO_PART] >= len(names)).any():
        return None
    return names, np.where(packed == NO_PART, -1, packed)


def to_runs(index: np.ndarray) -> list[list[int]]:
    """Sorted unique indices → [[start, stop), ...] runs (compact for the contiguous pieces of a mesh)."""
    index = np.unique(np.asarray(index, np.int64))
    if not len(index):
        return []
    breaks = np.nonzero(np.diff(index) != 1)[0] + 1
    starts, stops = index[np.r_[0, breaks]], index[np.r_[breaks - 1, len(index) - 1]] + 1
    return [[int(a), int(b)] for a, b in zip(starts, stops)]


def from_runs(runs: list, n: int) -> np.ndarray:
    """[[start, stop), ...] → (n,) bool mask. Raises ValueError for runs outside [0, n)."""
    mask = np.zeros(n, bool)
    for start, stop in runs:
        if not 0 <= int(start) <= int(stop) <= n:
            raise ValueError(f"triangle run {start}..{stop} is outside the mesh's {n} triangles")
        mask[int(start) : int(stop)] = True
    return mask


def encode_indices(values: np.ndarray) -> str:
    """(K,) indices (vertex ids, polygon ids) → base64 little-endian uint32 text for the scene extras."""
    return base64.b64encode(np.asarray(values).astype("<u4").tobytes()).decode("ascii")


def decode_indices(value: Any, count: Optional[int]) -> Optional[np.ndarray]:
    """(count,) int64 indices from `encode_indices` text, or None when absent or not `count`
    long (None: any length)."""
    try:
        ids = np.frombuffer(base64.b64decode(value), dtype="<u4").astype(np.int64)
    except (TypeError, ValueError):
        return None
    return ids if count is None or len(ids) == count else None
