"""What Repaint Selected sends besides the mesh: the selected faces' texture, exactly as it is.

The selected faces must share one material. When its Base Color comes from an image (directly
or through other nodes), that image is sent byte for byte with the UV map its node reads, and
the result replaces it in that node only. Without an image, the backend starts from a flat
texture of the material's base colour (the viewport's look, for a mesh painted in one colour).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import bpy
import numpy as np

from ..formats.png import encode_png
from .mesh_export import ExportError

MAX_TEXTURE_SIDE = 8192  # the backend's limit on a repaint's texture


@dataclass
class RepaintSource:
    """The selected faces' material and texture.

    Attributes:
        slot: Material slot index of the selected faces.
        material: Its material's name ("" = none).
        node: Name of the image node feeding Base Color ("" = the material has none).
        image: That node's image name.
        png: The image as an 8-bit PNG, top row first (b"" without one).
        uv_name: The UV map the node reads ("" = the render one).
        base_color: sRGB of the flat texture when there is no image.
    """

    slot: int
    material: str = ""
    node: str = ""
    image: str = ""
    png: bytes = b""
    uv_name: str = ""
    base_color: list = field(default_factory=lambda: [0.8, 0.8, 0.8])

    def as_target(self) -> dict:
        """What the write-back needs (JSON-able, kept with the job)."""
        return {"slot": self.slot, "material": self.material, "node": self.node, "image": self.image}


def selected_polygons(obj: bpy.types.Object) -> np.ndarray:
    """(P,) bool: the selected faces (Edit Mode's selection, synced)."""
    if obj.mode == 'EDIT':
        obj.update_from_editmode()
    selected = np.zeros(len(obj.data.polygons), bool)
    obj.data.polygons.foreach_get("select", selected)
    return selected


def repaint_source(obj: bpy.types.Object, selected: np.ndarray) -> RepaintSource:
    """The material and texture the selected faces show.

    Raises:
        ExportError: no face selected, faces of several materials, or a texture that cannot be
            sent exactly (the message says what to do).
    """
    if not selected.any():
        raise ExportError(f"no face of '{obj.name}' is selected: select the faces to repaint in Edit Mode")
    index = np.zeros(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", index)
    slots = np.unique(index[selected])
    if len(slots) > 1:
        raise ExportError(f"the selected faces of '{obj.name}' use {len(slots)} materials; "
                          "repaint the faces of one material at a time")
    slot = int(slots[0])
    material = obj.material_slots[slot].material if slot < len(obj.material_slots) else None
    if material is None:
        return RepaintSource(slot=slot)
    node = _base_color_image_node(material)
    if node is None:
        return RepaintSource(slot=slot, material=material.name, base_color=_base_color(material))
    image = node.image
    return RepaintSource(slot=slot, material=material.name, node=node.name, image=image.name, png=image_png(image),
                         uv_name=_uv_map_of(node))


def reads_an_image(obj: bpy.types.Object, selected: np.ndarray) -> bool:
    """Whether the selected faces (of one material) show an image through their Base Color."""
    index = np.zeros(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", index)
    slots = np.unique(index[selected]) if selected.any() else []
    if len(slots) != 1 or slots[0] >= len(obj.material_slots):
        return False
    material = obj.material_slots[int(slots[0])].material
    return material is not None and _base_color_image_node(material) is not None


def image_png(image: bpy.types.Image) -> bytes:
    """The image's bytes as an 8-bit PNG, top row first (Blender stores the bottom row first).

    Raises:
        ExportError: a float image (16-bit PNG, EXR: 8 bits would lose what it holds), an
            image with no pixels (missing file), or one larger than the backend takes.
    """
    width, height = image.size
    if not width or not height:
        raise ExportError(f"the image '{image.name}' has no pixels (is its file missing?): reload or replace it")
    if max(width, height) > MAX_TEXTURE_SIDE:
        raise ExportError(f"the image '{image.name}' is {width} x {height}; a repaint takes at most "
                          f"{MAX_TEXTURE_SIDE} texels a side")
    if image.is_float:
        raise ExportError(f"the image '{image.name}' holds float colours (16-bit or EXR), which a repaint would "
                          "round to 8 bits: save it as an 8-bit PNG first")
    return encode_png(image_bytes(image)[::-1])


def image_bytes(image: bpy.types.Image) -> np.ndarray:
    """(H, W, C) uint8 of a byte image, bottom row first as Blender keeps it."""
    width, height = image.size
    pixels = np.empty(width * height * image.channels, np.float32)
    image.pixels.foreach_get(pixels)  # byte images: each byte / 255, so this returns the bytes exactly
    return np.floor(pixels * 255 + 0.5).astype(np.uint8).reshape(height, width, image.channels)


def _base_color_image_node(material: bpy.types.Material) -> Optional[bpy.types.Node]:
    """The image node nearest upstream of the surface shader's Base Color (or Color), if any."""
    if not material.use_nodes or material.node_tree is None:
        return None
    tree = material.node_tree
    output = next((n for n in tree.nodes if n.type == 'OUTPUT_MATERIAL' and n.is_active_output), None)
    surface = output.inputs["Surface"].links if output else ()
    if not surface:
        return None
    shader = surface[0].from_node
    socket = shader.inputs.get("Base Color") or shader.inputs.get("Color")
    frontier, seen = ([socket] if socket else []), set()
    while frontier:  # breadth first: the image nearest the shader is the one the faces show most
        links = [link for s in frontier for link in s.links]
        frontier = []
        for link in links:
            node = link.from_node
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.type == 'TEX_IMAGE' and node.image is not None:
                return node
            frontier += [s for s in node.inputs if s.is_linked]
    return None


def _uv_map_of(node: bpy.types.Node) -> str:
    """The UV map an image node reads: a UV Map node's, else the render one ("")."""
    vector = node.inputs["Vector"].links
    source = vector[0].from_node if vector else None
    return source.uv_map if source is not None and source.type == 'UVMAP' else ""


def _base_color(material: bpy.types.Material) -> list:
    """The material's base colour in sRGB (what a flat texture of it must hold)."""
    linear = np.array(material.diffuse_color[:3], np.float64)
    if material.use_nodes and material.node_tree is not None:
        shader = next((n for n in material.node_tree.nodes if n.type == 'BSDF_PRINCIPLED'), None)
        if shader is not None:
            linear = np.array(shader.inputs["Base Color"].default_value[:3], np.float64)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(np.clip(linear, 0, None), 1 / 2.4) - 0.055)
    return [round(float(c), 4) for c in np.clip(srgb, 0, 1)]
