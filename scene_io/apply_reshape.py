"""Write a reshape onto the object it was made for: only the moved vertices' positions (main thread).

The backend answers with the uploaded mesh, its region moved, and names the moved vertices.
The upload said which Blender vertex each of its vertices copies (UV seams split them), so
just those vertices get new positions; polygons, UVs, materials, vertex groups, normals'
settings and every other vertex stay exactly as they were.
"""

from __future__ import annotations

import json

import bpy
import numpy as np

from ..formats.face_parts import VERTEX_IDS_KEY, decode_indices, from_runs
from ..formats.glb import GLBScene, read_glb_extras
from ..formats.mesh_arrays import gltf_to_blender
from .texture_export import mesh_fingerprint
from .write_back import METADATA_KEY, read_metadata


def sent_vertex_ids(upload: bytes) -> np.ndarray:
    """(V,) the Blender vertex each vertex of an upload (`object_to_glb`) copies."""
    ids = decode_indices(read_glb_extras(upload).get(VERTEX_IDS_KEY), None)
    if ids is None:
        raise ValueError("the upload does not say which Blender vertex each of its vertices is")
    return ids


def apply_reshape(context, obj: bpy.types.Object, result: GLBScene, vertex_ids: np.ndarray,
                  fingerprint: str = "") -> bpy.types.Object:
    """Move the vertices the reshape moved.

    Args:
        context: Blender context.
        obj: The mesh object that was sent.
        result: The parsed `reshape-sd` result.
        vertex_ids: `sent_vertex_ids` of the upload: the Blender vertex of each uploaded vertex.
        fingerprint: `mesh_fingerprint` of the mesh when it was sent ("" = not checked).

    Returns:
        The object.

    Raises:
        ValueError: the mesh changed meanwhile, or the result does not fit it (a reply that
            names vertices the upload did not have, or positions that are not finite). Nothing
            has changed then.
    """
    ids, count = vertex_ids, len(vertex_ids)
    vertices = np.concatenate([p.vertices for p in result.parts]) if result.parts else np.zeros((0, 3), np.float32)
    if len(vertices) != count:
        raise ValueError(f"the result has {len(vertices)} vertices for the {count} sent; nothing was changed")
    try:
        moved = from_runs(result.metadata.get("reshape", {}).get("moved", []), count)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the result names vertices the mesh does not have ({exc}); nothing was changed") from None
    if not np.isfinite(vertices[moved]).all():
        raise ValueError("the result holds positions that are not finite numbers; nothing was changed")
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    mesh = obj.data
    if int(ids.max(initial=-1)) >= len(mesh.vertices):
        raise ValueError(f"'{obj.name}' has fewer vertices than were sent; reshape it again")
    if fingerprint and mesh_fingerprint(mesh) != fingerprint:
        raise ValueError(f"'{obj.name}' was edited while it was reshaped; import the result from the job list, "
                         "or reshape it again")
    if obj.mode != 'OBJECT':  # edit-mode data would overwrite what is written here
        with context.temp_override(active_object=obj, object=obj):
            bpy.ops.object.mode_set(mode='OBJECT')
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3)
    co[ids[moved]] = gltf_to_blender(vertices[moved].astype(np.float32))
    mesh.vertices.foreach_set("co", co.reshape(-1))
    mesh.update()
    metadata = read_metadata(obj)
    metadata["reshape"] = {key: result.metadata.get(key) for key in ("model", "prompt", "source_prompt", "seed", "steps",
                                                                     "identity", "displacement")}
    metadata["reshape"]["moved_vertices"] = int(len(np.unique(ids[moved])))
    obj[METADATA_KEY] = json.dumps(metadata)
    return obj
