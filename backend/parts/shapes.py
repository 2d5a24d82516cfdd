"""Part and Shape: a shape is a union of named parts, each a primitive in an oriented box.

The oriented box (centre, rotation, half extents) is the part's explicit "Gaussian"
(SPAGHETTI, Hertz et al. 2022); the primitive and its params are the geometry the part
autoencoder learns to encode. World frame: Y up, front towards +Z.
"""

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .primitives import PRIMITIVE_PARAMS, ROUND_PRIMITIVES, local_occupancy

# Fixed vocabulary of part labels; the model card lists it. Repeated parts are numbered
# "leg.0", "leg.1", ...; unique parts keep the bare label.
PART_VOCABULARY = [
    "leg", "seat", "back", "arm", "wheel", "base", "top", "pedestal", "shelf", "side",
    "shade", "pole", "body", "cap", "stem", "trunk", "canopy", "roof", "wall", "chimney",
    "fin", "nose", "wing", "tail", "handle", "neck",
    "slat", "post", "rail", "support", "cushion", "frame", "mattress", "headboard",
    "footboard", "pillow", "joint", "head", "hat", "brim", "door", "window", "stripe",
    "cabin", "light", "engine", "nozzle", "lip", "foot",
    "drawer", "lid", "knob", "hoop", "rung", "picket",  # storage and props
    "face", "hand", "flame", "spout", "rim", "blade", "guard", "grip", "pommel", "boss", "bell",  # tabletop, handheld
    "hull", "mast", "sail", "rotor", "skid", "pedal", "handlebar", "cargo", "petal", "leaf", "pot", "basket",  # transport,
    "boulder",  # nature
    "deck", "pillar", "block", "gallery", "battlement", "bucket", "crank", "cable", "hub",  # structures
]
MAX_PARTS = 24  # the model's fixed number of part tokens
BOUND = 0.95  # shapes fit in [-BOUND, BOUND]^3; the decoder samples [-1, 1]^3


@dataclass
class Part:
    name: str  # "leg.0"
    label: str  # vocabulary entry, "leg"
    primitive: str  # key of primitives.PRIMITIVES
    params: dict  # primitive parameters in its unit frame
    center: np.ndarray  # (3,) world
    rotation: np.ndarray  # (3, 3) columns = local axes in world
    half_extents: np.ndarray  # (3,) box half sizes along the local axes
    color: tuple = (0.7, 0.7, 0.7)

    def to_local(self, p_world: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) points normalised by the half extents."""
        return ((np.asarray(p_world, dtype=np.float64) - self.center) @ self.rotation) / self.half_extents

    def local_occupancy(self, p_local: np.ndarray) -> np.ndarray:
        """(N, 3) normalised local points (the part fills [-1, 1]^3) -> (N,) bool."""
        return local_occupancy(self.primitive, p_local, self.params)

    def occupancy(self, p_world: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N,) bool."""
        return self.local_occupancy(self.to_local(p_world))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World axis-aligned bounds of the part's oriented box (lo, hi)."""
        r = np.abs(self.rotation) @ self.half_extents
        return self.center - r, self.center + r


@dataclass
class Shape:
    category: str
    attributes: dict  # attribute -> value, e.g. {"legs": 4, "arms": "round"}
    parts: list
    captions: list = field(default_factory=list)  # training templates
    looks: list = field(default_factory=list)  # per caption: label -> (colour, material kind) it states
    paraphrases: list = field(default_factory=list)  # held-out templates, never for training
    seed: int = 0

    def occupancy(self, p_world: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N,) bool, the union of the parts."""
        p_world = np.asarray(p_world, dtype=np.float64).reshape(-1, 3)
        occ = np.zeros(len(p_world), dtype=bool)
        for part in self.parts:
            occ |= part.occupancy(p_world)
        return occ

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)


# ---- helpers for the category grammars -------------------------------------------------

def rot(axis: str, angle: float) -> np.ndarray:
    """Rotation matrix about a world axis ('x', 'y' or 'z'), angle in radians."""
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def along(direction) -> np.ndarray:
    """Rotation whose local Y points along `direction` (for poles, slanted legs)."""
    y = np.asarray(direction, dtype=np.float64)
    y = y / np.linalg.norm(y)
    helper = np.array([1.0, 0, 0]) if abs(y[0]) < 0.9 else np.array([0, 0, 1.0])
    x = np.cross(y, helper)
    x /= np.linalg.norm(x)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def make(label, primitive, center, half, color, rotation=None, **params) -> Part:
    """A part before naming. Params the primitive does not read are dropped (grammars pass
    e.g. `round=` whichever of box/rounded_box they drew); the rest get their defaults."""
    assert label in PART_VOCABULARY, label
    defaults = PRIMITIVE_PARAMS.get(primitive, {})
    return Part(
        name=label, label=label, primitive=primitive,
        params={k: float(params.get(k, v)) for k, v in defaults.items()},
        center=np.asarray(center, dtype=np.float64),
        rotation=np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64),
        half_extents=np.asarray(half, dtype=np.float64),
        color=tuple(float(np.clip(c, 0, 1)) for c in color),
    )


def stick(label, a, b, radius, color, prim="cylinder", **params) -> Part:
    """A part from point a to point b (its local Y), `radius` across (poles, rungs, struts)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return make(label, prim, (a + b) / 2, (radius, np.linalg.norm(b - a) / 2, radius), color, along(b - a), **params)


def name_parts(parts: list) -> list:
    """Number repeated labels in order of appearance: leg.0, leg.1; unique ones stay bare."""
    counts = {}
    for p in parts:
        counts[p.label] = counts.get(p.label, 0) + 1
    seen = {}
    for p in parts:
        if counts[p.label] > 1:
            p.name = f"{p.label}.{seen.get(p.label, 0)}"
            seen[p.label] = seen.get(p.label, 0) + 1
        else:
            p.name = p.label
    return parts


def normalize(parts: list) -> list:
    """Centre the parts' bounding box at the origin and scale it uniformly into BOUND."""
    lo = np.min([p.bounds()[0] for p in parts], axis=0)
    hi = np.max([p.bounds()[1] for p in parts], axis=0)
    scale = 2 * BOUND / np.max(hi - lo)
    for p in parts:
        p.center = (p.center - (lo + hi) / 2) * scale
        p.half_extents = p.half_extents * scale
    return parts


def group(parts: list) -> dict:
    """label -> list of parts with that label (for reading attributes back)."""
    out = defaultdict(list)  # a missing label reads as no parts
    for p in parts:
        out[p.label].append(p)
    return out


def is_round(part: Part) -> bool:
    """True when the part's primitive has a round cross-section (see ROUND_PRIMITIVES)."""
    return part.primitive in ROUND_PRIMITIVES


def extent(parts: list) -> tuple[np.ndarray, np.ndarray]:
    """World bounds (lo, hi) of several parts."""
    return np.min([p.bounds()[0] for p in parts], axis=0), np.max([p.bounds()[1] for p in parts], axis=0)


def tint(rng, color, amount=0.06):
    """A colour jittered a little so instances differ."""
    return tuple(np.clip(np.asarray(color) + rng.uniform(-amount, amount, 3), 0, 1))


COLORS = {
    "wood": (0.55, 0.36, 0.2), "dark_wood": (0.36, 0.22, 0.12), "light_wood": (0.78, 0.62, 0.42),
    "fabric": (0.25, 0.35, 0.55), "red_fabric": (0.6, 0.15, 0.15), "black": (0.08, 0.08, 0.09),
    "metal": (0.7, 0.72, 0.75), "white": (0.93, 0.93, 0.9), "cream": (0.95, 0.9, 0.75),
    "red": (0.85, 0.12, 0.1), "orange": (0.98, 0.45, 0.05), "green": (0.2, 0.55, 0.2),
    "dark_green": (0.1, 0.38, 0.15), "brown": (0.42, 0.27, 0.15), "blue": (0.15, 0.35, 0.8),
    "yellow": (0.95, 0.8, 0.2), "grey": (0.5, 0.5, 0.52), "brick": (0.7, 0.35, 0.25),
    "glass": (0.55, 0.75, 0.85), "ceramic": (0.88, 0.85, 0.8), "terracotta": (0.75, 0.4, 0.25),
}
