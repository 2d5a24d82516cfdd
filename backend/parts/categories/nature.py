"""Nature and buildings: mushroom, tree, snowman, house."""

import numpy as np

from ..shapes import COLORS, along, group, make, tint
from . import Category


# ---- mushroom -------------------------------------------------------------------------

def build_mushroom(rng, a):
    rc = rng.uniform(0.12, 0.18)
    rs = rc * rng.uniform(0.25, 0.35)
    h = 2 * rc * (rng.uniform(1.0, 1.3) if a["height"] == "tall" else rng.uniform(0.35, 0.5))
    stem_c = tint(rng, COLORS["cream"], 0.04)
    cap_c = tint(rng, [COLORS["red"], COLORS["brown"], COLORS["orange"]][rng.integers(3)])
    parts = [make("stem", "cone", (0, h / 2, 0), (rs, h / 2, rs), stem_c, top=rng.uniform(0.7, 0.9))]
    ch = rc * {"dome": rng.uniform(0.45, 0.6), "cone": rng.uniform(0.5, 0.7), "flat": rng.uniform(0.12, 0.18)}[a["cap"]]
    prim = {"dome": "dome", "cone": "cone", "flat": "cylinder"}[a["cap"]]
    parts.append(make("cap", prim, (0, h + ch * 0.8, 0), (rc, ch, rc), cap_c, top=0.0))
    return parts


def infer_mushroom(parts):
    g = group(parts)
    cap, stem = g["cap"][0], g["stem"][0]
    ratio = 2 * stem.half_extents[1] / (2 * cap.half_extents[0])
    flat = cap.half_extents[1] / cap.half_extents[0] < 0.3
    return {"cap": "flat" if flat else ("cone" if cap.primitive == "cone" else "dome"),
            "height": "tall" if ratio > 0.75 else "short"}


MUSHROOM = Category(
    space={"cap": ["dome", "cone", "flat"], "height": ["tall", "short"]},
    build=build_mushroom, infer=infer_mushroom,
    heldout=[{"cap": "cone", "height": "short"}],
)


# ---- tree -----------------------------------------------------------------------------

def build_tree(rng, a):
    bark = tint(rng, COLORS["brown"])
    leaf = tint(rng, COLORS["dark_green"] if a["canopy"] == "cone" else COLORS["green"])
    tr, th = rng.uniform(0.06, 0.1), rng.uniform(0.35, 0.6)
    parts = [make("trunk", "cone", (0, th / 2, 0), (tr, th / 2, tr), bark, top=rng.uniform(0.6, 0.8))]
    n = a["tiers"]
    y = th * 0.85
    if a["canopy"] == "cone":  # stacked, shrinking cones, each overlapping the one below
        r, hh = rng.uniform(0.45, 0.6), rng.uniform(0.3, 0.4) * (1.0 if n > 1 else 1.6)
        for _ in range(n):
            parts.append(make("canopy", "cone", (0, y + hh, 0), (r, hh, r), leaf, top=0.0))
            y += hh * 1.1
            r, hh = r * 0.75, hh * 0.85
    else:  # stacked, shrinking blobs
        r = rng.uniform(0.4, 0.55) * (1.0 if n > 1 else 1.2)
        for _ in range(n):
            hh = r * rng.uniform(0.8, 0.95)
            parts.append(make("canopy", "sphere", (0, y + hh * 0.9, 0), (r, hh, r), tint(rng, leaf, 0.03)))
            y += hh * 1.3
            r *= 0.75
    return parts


def infer_tree(parts):
    g = group(parts)
    return {"canopy": "cone" if g["canopy"][0].primitive == "cone" else "round", "tiers": len(g["canopy"])}


TREE = Category(
    space={"canopy": ["round", "cone"], "tiers": [1, 2, 3]},
    build=build_tree, infer=infer_tree,
    heldout=[{"canopy": "round", "tiers": 3}],
)


# ---- snowman --------------------------------------------------------------------------

def build_snowman(rng, a):
    snow = tint(rng, COLORS["white"], 0.03)
    radii = [rng.uniform(0.3, 0.36)]
    for _ in range(a["balls"] - 1):
        radii.append(radii[-1] * rng.uniform(0.68, 0.78))
    parts, y = [], 0.0
    centers = []
    for i, r in enumerate(radii):  # each ball sinks a little into the one below
        y = r if i == 0 else y + radii[i - 1] * 0.8 + r * 0.8
        centers.append(y)
        parts.append(make("head" if i == len(radii) - 1 else "body", "sphere", (0, y, 0), (r, r, r), snow))
    hr, hy = radii[-1], centers[-1]
    parts.append(make("nose", "cone", (0, hy, hr * 1.15), (0.03, hr * 0.4, 0.03), COLORS["orange"], along((0, 0, 1))))
    if a["hat"] == "yes":
        black = COLORS["black"]
        parts.append(make("brim", "cylinder", (0, hy + hr * 0.85, 0), (hr * 0.95, 0.02, hr * 0.95), black))
        hh = hr * rng.uniform(0.45, 0.6)
        parts.append(make("hat", "cylinder", (0, hy + hr * 0.85 + hh, 0), (hr * 0.6, hh, hr * 0.6), black))
    if a["arms"] == "sticks":
        r, y = radii[-2], centers[-2]
        for s in (-1, 1):
            root = np.array([s * r * 0.7, y + r * 0.2, 0])
            tip = root + np.array([s * rng.uniform(0.25, 0.35), rng.uniform(0.1, 0.25), 0])
            half = (0.022, np.linalg.norm(tip - root) / 2, 0.022)
            parts.append(make("arm", "cylinder", (root + tip) / 2, half, COLORS["brown"], along(tip - root)))
    return parts


def infer_snowman(parts):
    g = group(parts)
    return {"balls": len(g["body"]) + 1, "hat": "yes" if "hat" in g else "no", "arms": "sticks" if "arm" in g else "none"}


SNOWMAN = Category(
    space={"balls": [2, 3], "hat": ["yes", "no"], "arms": ["sticks", "none"]},
    build=build_snowman, infer=infer_snowman,
    heldout=[{"balls": 2, "hat": "yes", "arms": "sticks"}],
)


# ---- house ----------------------------------------------------------------------------

def build_house(rng, a):
    wall_c = tint(rng, [COLORS["cream"], COLORS["white"], COLORS["brick"], COLORS["light_wood"]][rng.integers(4)])
    roof_c = tint(rng, [COLORS["red"], COLORS["dark_wood"], COLORS["grey"]][rng.integers(3)])
    hx, hz, fh = rng.uniform(0.45, 0.6), rng.uniform(0.32, 0.42), rng.uniform(0.28, 0.34)
    parts = [make("wall", "box", (0, fh * (2 * i + 1) - 0.005 * i, 0), (hx, fh, hz), wall_c) for i in range(a["floors"])]
    top = 2 * fh * a["floors"] - 0.01 * (a["floors"] - 1)
    over = rng.uniform(0.03, 0.06)
    if a["roof"] == "gable":  # ridge along X
        rh = (hz + over) * rng.uniform(0.7, 1.0)
        parts.append(make("roof", "wedge", (0, top + rh / 2 - 0.01, 0), (hx + over, rh / 2, hz + over), roof_c))
        peak = top + rh
    else:
        parts.append(make("roof", "box", (0, top + 0.02, 0), (hx + over, 0.03, hz + over), roof_c))
        peak = top + 0.05
    if a["chimney"] == "yes":
        cx, cz = hx * rng.uniform(0.4, 0.6) * rng.choice([-1, 1]), -hz * 0.45
        ch = peak + rng.uniform(0.06, 0.12) - top
        parts.append(make("chimney", "box", (cx, top + ch / 2, cz), (0.05, ch / 2, 0.05), tint(rng, COLORS["brick"])))
    door_x = hx * rng.uniform(-0.1, 0.1)
    parts.append(make("door", "box", (door_x, 0.2, hz + 0.012), (0.09, 0.19, 0.022), tint(rng, COLORS["dark_wood"])))
    glass = COLORS["glass"]
    for floor in range(a["floors"]):
        y = fh * (2 * floor + 1) + (0.05 if floor == 0 else 0)
        for s in (-1, 1):
            parts.append(make("window", "box", (s * hx * 0.55, y, hz + 0.012), (0.07, 0.07, 0.02), glass))
    return parts


def infer_house(parts):
    g = group(parts)
    roof = g["roof"][0].half_extents
    return {"roof": "gable" if roof[1] / roof[2] > 0.2 else "flat", "floors": len(g["wall"]),
            "chimney": "yes" if "chimney" in g else "no"}


HOUSE = Category(
    space={"roof": ["gable", "flat"], "floors": [1, 2], "chimney": ["yes", "no"]},
    build=build_house, infer=infer_house,
    heldout=[{"roof": "flat", "floors": 2, "chimney": "yes"}],
)
