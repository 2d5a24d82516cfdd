"""Write a repaint onto the object it was made for (main thread only).

A repaint of a textured material gives the image node a new image: the backend's texture,
which holds the original's bytes outside the selected faces and their border. The original
image is left as it was (other materials may show it; Undo puts it back in the node), and the
mesh, its UVs, the material's other settings and every other material stay untouched.

A repaint of faces with no image on their material (one flat colour) goes through Texture
Selected's write: the faces of that material slot get a textured material whose texture is
that colour everywhere but the repainted region.
"""

from __future__ import annotations

import json
from typing import Optional

import bpy

from ..formats.glb import GLBScene
from .apply_texture import apply_texture
from .texture_export import mesh_fingerprint
from .write_back import METADATA_KEY, load_image, read_metadata


def apply_repaint(context, obj: bpy.types.Object, result: GLBScene, target: dict, storage: str = 'PACK',
                  fingerprint: str = "") -> bpy.types.Object:
    """Put a repaint's texture where the selected faces read their image.

    Args:
        context: Blender context.
        obj: The mesh object that was sent.
        result: The parsed `texture` result of a repaint.
        target: `RepaintSource.as_target()` of the request.
        storage: 'PACK' or 'NEXT_TO_BLEND', where the new image goes.
        fingerprint: `mesh_fingerprint` of the mesh when it was sent.

    Returns:
        The object.

    Raises:
        ValueError: the mesh, the material or its image changed meanwhile, or the result does
            not fit the image. Nothing has changed then.
    """
    if not target.get("node"):
        return apply_texture(context, obj, result, storage, fingerprint, only_slot=int(target.get("slot", 0)))
    node, original = _node_and_image(target)
    if node.image != original:
        raise ValueError(f"the image node of '{target['material']}' shows '{node.image.name}' now, not the repainted "
                         f"'{original.name}'; import the result from the job list, or repaint again")
    image_index = next((p.image for p in result.parts if p.image is not None), None)
    if image_index is None:
        raise ValueError("the result has no texture")
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    if fingerprint and mesh_fingerprint(obj.data) != fingerprint:
        raise ValueError(f"'{obj.name}' was edited while it was repainted; import the result from the job list, "
                         "or repaint it again")
    image = load_image(result, image_index, f"{original.name} repaint", storage)
    if image is None or tuple(image.size) != tuple(original.size):
        got = "nothing" if image is None else f"{image.size[0]} x {image.size[1]}"
        if image is not None:
            bpy.data.images.remove(image)
        raise ValueError(f"the backend sent a {got} texture for the {original.size[0]} x {original.size[1]} "
                         f"image '{original.name}'; nothing was changed")
    image.colorspace_settings.name = original.colorspace_settings.name
    image.alpha_mode = original.alpha_mode
    node.image = image
    metadata = read_metadata(obj)
    metadata["repaint"] = {**result.metadata.get("texture", {}), "material": target["material"],
                           "original_image": original.name, "image": image.name}
    obj[METADATA_KEY] = json.dumps(metadata)
    return obj


def repainted_material(obj: bpy.types.Object, target: Optional[dict]) -> str:
    """The material a repaint wrote into ("" when it was no repaint, or went through a new material)."""
    return target["material"] if target and target.get("node") else ""


def repaint_shown(target: dict) -> bool:
    """Whether the repaint's node shows another image than the one that was sent (the result,
    unless the artist changed it); False after Undo."""
    try:
        node, original = _node_and_image(target)
    except ValueError:
        return False
    return node.image != original


def _node_and_image(target: dict) -> tuple[bpy.types.Node, bpy.types.Image]:
    material = bpy.data.materials.get(target.get("material", ""))
    node = material.node_tree.nodes.get(target.get("node", "")) if material and material.node_tree else None
    original = bpy.data.images.get(target.get("image", ""))
    if node is None or getattr(node, "image", None) is None or original is None:
        raise ValueError(f"the material '{target.get('material')}' or its image node changed while the faces were "
                         "repainted; import the result from the job list, or repaint again")
    return node, original
