"""What the built-in model's parts look like: colours and material kinds, and their PBR values.

A part's look is a colour name and a material kind, each stated by the prompt or not
(`appearance_reader.py` reads them per part label). `resolve` turns that into a `Material`:
a stated colour wins; a stated material without a colour takes the material's own colour; the
rest falls back to plausible defaults per category and part (a table top is wood, a bottle
glass, a lamp shade fabric) in a default colour (PALETTE).
"""

from __future__ import annotations

from typing import Any, Optional

from backend.colour_space import srgb_to_linear
from backend.results import Material

from .categories import GROUPS


# Default colour per label (sRGB 0-255): plausible for the label's default material, with
# neighbouring parts in different shades so they stay apart in Blender's solid view.
PALETTE = {
    "leg": (110, 74, 46), "seat": (176, 122, 76), "back": (160, 108, 66), "arm": (146, 98, 60),
    "wheel": (40, 40, 44), "base": (150, 150, 158), "top": (184, 132, 84), "pedestal": (120, 84, 54),
    "shelf": (196, 160, 118), "side": (150, 108, 70), "shade": (240, 226, 196), "pole": (170, 170, 178),
    "body": (112, 150, 196), "cap": (200, 80, 72), "stem": (236, 226, 204), "trunk": (120, 88, 60),
    "canopy": (96, 160, 96), "roof": (170, 76, 64), "wall": (226, 214, 190), "chimney": (150, 90, 80),
    "fin": (200, 70, 70), "nose": (220, 220, 226), "wing": (190, 196, 204), "tail": (170, 176, 186),
    "handle": (190, 150, 100), "neck": (130, 176, 170), "slat": (180, 128, 92), "post": (150, 104, 78),
    "rail": (170, 120, 88), "support": (150, 104, 66), "cushion": (110, 140, 190), "frame": (140, 104, 80),
    "mattress": (236, 232, 220), "headboard": (150, 110, 84), "footboard": (160, 118, 90), "pillow": (250, 246, 236),
    "joint": (90, 90, 98), "head": (240, 240, 244), "hat": (40, 40, 46), "brim": (56, 56, 62), "door": (130, 90, 64),
    "window": (150, 196, 220), "stripe": (245, 245, 245), "cabin": (200, 205, 212), "light": (250, 230, 150),
    "engine": (120, 124, 134), "nozzle": (90, 90, 100), "lip": (200, 196, 186), "foot": (110, 110, 120),
    "bulb": (255, 240, 180),
}
CATEGORY_PALETTE = {("traffic cone", "body"): (240, 100, 20), ("traffic cone", "base"): (40, 40, 44),
                    ("car", "body"): (196, 40, 36), ("airplane", "body"): (230, 232, 236),
                    ("rocket", "body"): (225, 225, 230), ("snowman", "body"): (245, 245, 250),
                    ("bottle", "body"): (150, 200, 170), ("bottle", "neck"): (150, 200, 170)}
for _group in GROUPS:  # the later categories keep their default looks beside their grammars
    PALETTE.update(_group.PALETTE)
    CATEGORY_PALETTE.update(_group.CATEGORY_PALETTE)
FALLBACK = [(176, 132, 196), (110, 180, 200), (220, 180, 90), (150, 200, 140), (210, 130, 150)]


def part_color(label: str, category: str = "") -> tuple[int, int, int]:
    """A part's default sRGB colour (0-255)."""
    if (category, label) in CATEGORY_PALETTE:
        return CATEGORY_PALETTE[category, label]
    if label in PALETTE:
        return PALETTE[label]
    return FALLBACK[sum(map(ord, label)) % len(FALLBACK)]


# Colour names the reader predicts, as sRGB in [0, 1].
COLOURS = {
    "red": (0.80, 0.10, 0.08), "orange": (0.95, 0.45, 0.08), "yellow": (0.95, 0.82, 0.15),
    "green": (0.18, 0.55, 0.22), "blue": (0.12, 0.30, 0.80), "purple": (0.45, 0.20, 0.65),
    "pink": (0.95, 0.55, 0.70), "brown": (0.42, 0.26, 0.14), "black": (0.04, 0.04, 0.045),
    "white": (0.94, 0.94, 0.92), "grey": (0.50, 0.50, 0.52),
}
# Material kind -> (metallic, roughness, transmission, sRGB colour when no colour is stated).
MATERIALS = {
    "wood": (0.0, 0.55, 0.0, (0.55, 0.36, 0.20)),
    "metal": (1.0, 0.30, 0.0, (0.72, 0.73, 0.76)),
    "plastic": (0.0, 0.35, 0.0, (0.85, 0.85, 0.85)),
    "glass": (0.0, 0.05, 1.0, (0.90, 0.95, 0.97)),
    "fabric": (0.0, 0.90, 0.0, (0.40, 0.42, 0.50)),
    "stone": (0.0, 0.80, 0.0, (0.55, 0.54, 0.50)),
    "ceramic": (0.0, 0.20, 0.0, (0.93, 0.91, 0.87)),
}
PLAIN = (0.0, 0.5, 0.0)  # a part with no material kind: Blender's Principled BSDF defaults
COLOUR_CLASSES = (None, *COLOURS)  # the reader's classes; None: the prompt says nothing
MATERIAL_CLASSES = (None, *MATERIALS)

# Default material kind per part label, then per category (a whole category, or some labels).
_LABEL_KINDS = {
    **dict.fromkeys(["leg", "seat", "back", "arm", "slat", "post", "rail", "support", "top", "pedestal", "shelf",
                     "side", "frame", "headboard", "footboard", "door", "handle"], "wood"),
    **dict.fromkeys(["cushion", "mattress", "pillow", "shade"], "fabric"),
    **dict.fromkeys(["pole", "joint", "base", "engine", "nozzle"], "metal"),
    **dict.fromkeys(["wheel", "cap"], "plastic"),
    **dict.fromkeys(["window", "bulb", "light"], "glass"),
}
_CATEGORY_KINDS = {
    "vase": "ceramic", "mug": "ceramic", "traffic cone": "plastic", "rocket": "metal", "airplane": "metal",
    "bottle": {"body": "glass", "neck": "glass", "cap": "metal"},
    "car": {"body": "metal", "cabin": "metal", "wheel": "plastic", "light": "glass"},
    "house": {"wall": "stone", "roof": "ceramic", "chimney": "stone", "door": "wood", "window": "glass"},
    "sofa": {"base": "fabric", "arm": "fabric", "support": "fabric", "cushion": "fabric", "back": "fabric", "leg": "wood"},
    "mushroom": None, "tree": {"trunk": "wood", "canopy": None}, "snowman": {"arm": "wood", "hat": "fabric",
                                                                           "brim": "fabric"},
}

for _group in GROUPS:
    _LABEL_KINDS.update(_group.LABEL_KINDS)
    _CATEGORY_KINDS.update(_group.CATEGORY_KINDS)


def default_kind(category: str, label: str) -> Optional[str]:
    """The material kind a part has when the prompt names none (None: a plain material)."""
    override = _CATEGORY_KINDS.get(category, ...)
    if isinstance(override, dict):  # the labels whose default is wrong for this category
        return override[label] if label in override else _LABEL_KINDS.get(label)
    if override is not ...:
        return override
    return _LABEL_KINDS.get(label)


def resolve(category: str, label: str, colour: Optional[str] = None, kind: Optional[str] = None) -> Material:
    """The PBR material of a part from what the prompt states (colour and kind, each or None).

    Raises:
        ValueError: an unknown colour or kind.
    """
    if colour is not None and colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; known: {', '.join(COLOURS)}")
    if kind is not None and kind not in MATERIALS:
        raise ValueError(f"unknown material {kind!r}; known: {', '.join(MATERIALS)}")
    used = kind if kind is not None else default_kind(category, label)
    metallic, roughness, transmission = MATERIALS[used][:3] if used else PLAIN
    if colour is not None:
        srgb = COLOURS[colour]
    elif kind is not None:
        srgb = MATERIALS[kind][3]
    else:
        srgb = tuple(v / 255 for v in part_color(label, category))
    said = " ".join(w for w in (colour, kind) if w)
    return Material(name=f"{label} ({said})" if said else label,
                    base_color=(*(float(c) for c in srgb_to_linear(srgb)), 1.0),
                    metallic=metallic, roughness=roughness, transmission=transmission)


def clean_looks(value: Any) -> dict[str, tuple[Optional[str], Optional[str]]]:
    """label -> (colour, kind) from a stored shape's `extra["looks"]`: it comes back in uploaded
    files, so anything but a known colour or kind reads as not stated."""
    if not isinstance(value, dict):
        return {}
    looks = {}
    for label, look in list(value.items())[:256]:
        if isinstance(label, str) and isinstance(look, (list, tuple)) and len(look) == 2:
            colour, kind = look
            looks[label] = (colour if isinstance(colour, str) and colour in COLOURS else None,
                            kind if isinstance(kind, str) and kind in MATERIALS else None)
    return looks


def part_materials(category: str, labels, looks: Any = None) -> dict[str, Material]:
    """label -> Material for each distinct label, from stored looks (cleaned) and the defaults."""
    said = clean_looks(looks)
    return {label: resolve(category, label, *said.get(label, (None, None))) for label in dict.fromkeys(labels)}
