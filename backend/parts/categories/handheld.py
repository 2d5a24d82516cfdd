"""Things held in the hand: guitar, sword, axe, shield (upright, front towards +Z)."""

import numpy as np

from ..shapes import COLORS, along, extent, group, is_round, make, rot, tint
from . import Category


# ---- guitar ---------------------------------------------------------------------------

def build_guitar(rng, a):
    finish = tint(rng, [COLORS["light_wood"], COLORS["wood"], COLORS["red"], COLORS["black"], COLORS["blue"],
                        COLORS["orange"]][rng.integers(6)])
    dark = tint(rng, COLORS["dark_wood"])
    L = rng.uniform(0.17, 0.2)  # lower bout radius
    if a["body"] == "acoustic":  # two overlapping bouts, a deep box
        d, ru = rng.uniform(0.045, 0.055), L * rng.uniform(0.72, 0.8)
        yu = L + L * rng.uniform(0.95, 1.1)
        parts = [make("body", "cylinder", (0, L, 0), (L, d, L), finish, along((0, 0, 1))),
                 make("body", "cylinder", (0, yu, 0), (ru, d, ru), finish, along((0, 0, 1)))]
        top = yu + ru * 0.85
    else:  # one thin slab
        d, bw, bh = rng.uniform(0.028, 0.034), L * rng.uniform(0.85, 0.95), L * rng.uniform(1.1, 1.25)
        parts = [make("body", "rounded_box", (0, bh, 0), (bw, bh, d), finish, round=0.45)]
        top = 2 * bh * 0.92
    nl = rng.uniform(0.2, 0.24)
    parts.append(make("neck", "box", (0, top + nl - 0.03, 0), (0.03, nl + 0.03, 0.025), dark))
    hl, hw = rng.uniform(0.11, 0.13), 0.045
    hy = top + 2 * nl - 0.04 + hl
    parts.append(make("head", "box", (0, hy, -0.005), (hw, hl, 0.024), dark))
    k = a["pegs"] // 2  # tuning pegs, half on each side of the head, apart from each other
    for y in hy + hl * (0.6 if k == 3 else 0.4) * np.linspace(-1, 1, k):
        for s in (-1, 1):
            parts.append(make("knob", "cylinder", (s * (hw + 0.018), y, 0), (0.022, 0.03, 0.022), COLORS["metal"],
                              rot("z", np.pi / 2)))
    return parts


def infer_guitar(parts):
    g = group(parts)
    return {"body": "acoustic" if len(g["body"]) >= 2 else "electric", "pegs": len(g["knob"])}


GUITAR = Category(
    space={"body": ["acoustic", "electric"], "pegs": [4, 6]},
    build=build_guitar, infer=infer_guitar,
    heldout=[{"body": "acoustic", "pegs": 4}],
)


# ---- sword ----------------------------------------------------------------------------

def build_sword(rng, a):
    steel = tint(rng, COLORS["metal"], 0.04)
    wrap = tint(rng, [COLORS["brown"], COLORS["black"], COLORS["dark_wood"], COLORS["red_fabric"]][rng.integers(4)])
    trim = tint(rng, [COLORS["yellow"], COLORS["metal"], COLORS["black"]][rng.integers(3)])
    gr, gl = rng.uniform(0.023, 0.027), rng.uniform(0.07, 0.09)
    pr = gr * rng.uniform(1.6, 1.9)
    parts = [make("pommel", "sphere", (0, pr, 0), (pr, pr, pr), trim)]
    y = 2 * pr * 0.85
    parts.append(make("grip", "cylinder", (0, y + gl, 0), (gr, gl, gr), wrap))
    y += 2 * gl
    if a["guard"] == "straight":
        parts.append(make("guard", "box", (0, y + 0.015, 0), (rng.uniform(0.13, 0.17), 0.024, 0.03), trim))
    else:
        gw = rng.uniform(0.06, 0.07)
        parts.append(make("guard", "cylinder", (0, y + 0.015, 0), (gw, 0.024, gw), trim))
    y += 0.03
    bw, bt = rng.uniform(0.03, 0.038), 0.024
    bl = gl * (rng.uniform(4.2, 5.2) if a["length"] == "long" else rng.uniform(1.8, 2.3))
    tl = bw * rng.uniform(1.2, 1.6)
    parts.append(make("blade", "box", (0, y + bl, 0), (bw, bl, bt), steel))
    # The point: a wedge turned so its triangle lies in the blade's plane.
    parts.append(make("blade", "wedge", (0, y + 2 * bl + tl - 0.005, 0), (bt, tl, bw), steel, rot("y", -np.pi / 2)))
    return parts


def infer_sword(parts):
    g = group(parts)
    lo, hi = extent(g["blade"])
    ratio = (hi[1] - lo[1]) / (2 * g["grip"][0].half_extents[1])
    return {"guard": "round" if is_round(g["guard"][0]) else "straight", "length": "long" if ratio > 3.9 else "short"}


SWORD = Category(
    space={"guard": ["straight", "round"], "length": ["long", "short"]},
    build=build_sword, infer=infer_sword,
    heldout=[{"guard": "round", "length": "short"}],
)


# ---- axe ------------------------------------------------------------------------------

def build_axe(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"]][rng.integers(3)])
    steel = tint(rng, [COLORS["metal"], COLORS["grey"], COLORS["black"]][rng.integers(3)])
    hr = rng.uniform(0.02, 0.024)
    hl = rng.uniform(0.36, 0.44) if a["handle"] == "long" else rng.uniform(0.16, 0.2)
    gl = hl * rng.uniform(0.18, 0.25)
    parts = [make("grip", "cylinder", (0, gl, 0), (hr * 1.3, gl, hr * 1.3), tint(rng, COLORS["black"])),
             make("handle", "cylinder", (0, hl, 0), (hr, hl, hr), wood)]
    hw, hh = rng.uniform(0.035, 0.04), rng.uniform(0.045, 0.055)
    hy = 2 * hl - hh * 0.7
    parts.append(make("head", "box", (0, hy, 0), (hw, hh, 0.028), steel))
    bl, bh = rng.uniform(0.07, 0.09), rng.uniform(0.08, 0.11)
    for s in (1, -1)[: a["blades"]]:
        # A wedge whose ridge is buried in the head and whose broad side is the cutting edge.
        frame = np.stack([(0, 0, 1), (-s, 0, 0), (0, -s, 0)], axis=1)
        parts.append(make("blade", "wedge", (s * (hw + 0.5 * bl), hy, 0), (0.02, bl, bh), steel, frame))
    return parts


def infer_axe(parts):
    g = group(parts)
    lo, hi = extent(g["blade"][:1])
    ratio = 2 * g["handle"][0].half_extents[1] / (hi[1] - lo[1])
    return {"blades": len(g["blade"]), "handle": "long" if ratio > 2.9 else "short"}


AXE = Category(
    space={"blades": [1, 2], "handle": ["long", "short"]},
    build=build_axe, infer=infer_axe,
    heldout=[{"blades": 2, "handle": "short"}],
)


# ---- shield ---------------------------------------------------------------------------

def build_shield(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["red"], COLORS["blue"], COLORS["dark_wood"], COLORS["green"]][rng.integers(5)])
    steel = tint(rng, [COLORS["metal"], COLORS["grey"], COLORS["yellow"]][rng.integers(3)])
    R = rng.uniform(0.3, 0.36)
    d = R * rng.uniform(0.07, 0.1)  # half thickness
    c = np.array([0, R, 0])
    w, h = (R, R) if a["shape"] == "round" else (R * rng.uniform(0.8, 0.9), R)
    n, sr = a["studs"], R * 0.06
    if a["shape"] == "round":
        q0 = rng.uniform(0, np.pi / 2)
        spots = [(0.8 * R * np.cos(q), 0.8 * R * np.sin(q)) for q in q0 + 2 * np.pi * np.arange(n) / n]
    else:  # corners, then the middles of the edges
        spots = [(sx * 0.75 * w, sy * 0.8 * h) for sx in (-1, 1) for sy in (-1, 1)]
        spots += [(0, 0.8 * h), (0, -0.8 * h), (0.75 * w, 0), (-0.75 * w, 0)]
        spots = spots[:n]
    parts = [make("knob", "sphere", c + (x, y, d), (sr, sr, sr), steel) for x, y in spots]
    if a["boss"] == "yes":
        br, bh = R * rng.uniform(0.22, 0.28), R * rng.uniform(0.1, 0.13)
        parts.append(make("boss", "dome", c + (0, 0, d * 0.8 + bh), (br, bh, br), steel, along((0, 0, 1))))
    if a["shape"] == "round":
        parts.append(make("body", "cylinder", c, (R, d, R), wood, along((0, 0, 1))))
    else:
        parts.append(make("body", "rounded_box", c, (w, h, d), wood, round=0.15))
    parts.append(make("grip", "box", c + (0, 0, -d - 0.04 * R), (0.25 * R, 0.06 * R, 0.06 * R), tint(rng, COLORS["brown"])))
    return parts


def infer_shield(parts):
    g = group(parts)
    return {"shape": "round" if is_round(g["body"][0]) else "square", "boss": "yes" if g["boss"] else "no",
            "studs": len(g["knob"])}


SHIELD = Category(
    space={"shape": ["round", "square"], "boss": ["yes", "no"], "studs": [0, 4, 8]},
    build=build_shield, infer=infer_shield,
    heldout=[{"shape": "square", "studs": 8}],
)


CATEGORIES = {"guitar": GUITAR, "sword": SWORD, "axe": AXE, "shield": SHIELD}

# Caption tables, as in captions.py
NOUNS = {
    "guitar": (["guitar"], ["stringed instrument"]),
    "sword": (["sword"], ["broadsword"]),
    "axe": (["axe"], ["woodsman's axe"]),
    "shield": (["shield"], ["buckler"]),
}
PHRASES = {
    "guitar": {
        "body": {
            "acoustic": (["an acoustic body", "a hollow body"], ["a round-shouldered sound box"]),
            "electric": (["an electric body", "a solid body"], ["a slab-shaped plank body"]),
        },
        "pegs": {
            4: (["four tuning pegs", "4 pegs"], ["four tuners"]),
            6: (["six tuning pegs", "6 pegs"], ["six tuners"]),
        },
    },
    "sword": {
        "guard": {
            "straight": (["a straight crossguard", "a cross guard"], ["a bar-shaped hilt guard"]),
            "round": (["a round guard", "a disc guard"], ["a circular tsuba"]),
        },
        "length": {
            "long": (["a long blade", "a long sword blade"], ["an extended cutting edge"]),
            "short": (["a short blade", "a short sword blade"], ["a stubby cutting edge"]),
        },
    },
    "axe": {
        "blades": {
            1: (["one blade", "a single blade"], ["one cutting bit"]),
            2: (["two blades", "a double blade"], ["two cutting bits"]),
        },
        "handle": {
            "long": (["a long handle", "a long haft"], ["an extended shaft"]),
            "short": (["a short handle", "a short haft"], ["a stubby shaft"]),
        },
    },
    "shield": {
        "shape": {
            "round": (["a round shape", "a circular shape"], ["a disc-like outline"]),
            "square": (["a square shape", "a rectangular shape"], ["a four-cornered outline"]),
        },
        "boss": {
            "yes": (["a boss", "a central boss"], ["a dome in the middle"]),
            "no": (["no boss", "a plain centre"], ["nothing in the middle"]),
        },
        "studs": {
            0: (["no studs", "no rivets"], ["an unadorned face"]),
            4: (["four studs", "4 studs"], ["four rivet heads"]),
            8: (["eight studs", "8 studs"], ["eight rivet heads"]),
        },
    },
}
ATTRIBUTE_NOUNS = {("guitar", "body", "acoustic"): "acoustic guitar", ("guitar", "body", "electric"): "electric guitar",
                   ("guitar", "pegs", 4): "bass guitar", ("sword", "length", "long"): "longsword",
                   ("sword", "length", "short"): "short sword", ("axe", "blades", 2): "double-headed axe"}
PARAPHRASE_ATTRIBUTE_NOUNS = {("guitar", "pegs", 4): "four-string bass", ("guitar", "pegs", 6): "six-string",
                              ("sword", "length", "short"): "dagger", ("sword", "length", "long"): "greatsword",
                              ("axe", "handle", "short"): "hatchet", ("axe", "blades", 2): "labrys"}

# Default looks, as in appearance.py and appearance_captions.py
PALETTE = {"blade": (200, 204, 212), "guard": (176, 140, 60), "grip": (80, 52, 36), "pommel": (176, 140, 60),
           "boss": (170, 172, 178)}
CATEGORY_PALETTE = {
    ("guitar", "body"): (200, 140, 70), ("guitar", "neck"): (110, 70, 40), ("guitar", "head"): (60, 40, 30),
    ("guitar", "knob"): (200, 200, 205),
    ("axe", "head"): (120, 122, 128), ("axe", "handle"): (150, 105, 60),
    ("shield", "body"): (140, 90, 55), ("shield", "knob"): (180, 180, 186),
}
LABEL_KINDS = {"blade": "metal", "guard": "metal", "grip": "fabric", "pommel": "metal", "boss": "metal"}
CATEGORY_KINDS = {
    "guitar": {"body": "wood", "neck": "wood", "head": "wood", "knob": "metal"},
    "axe": {"head": "metal"},
    "shield": {"body": "wood", "knob": "metal"},
}
PLURALS: dict = {}
