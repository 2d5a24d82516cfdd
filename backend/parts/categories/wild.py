"""Nature: rock, cactus, flower."""

import numpy as np

from ..shapes import COLORS, along, group, is_round, make, rot, tint
from . import Category


def _pot(rng, r, h):
    """A flower pot on the floor, wider at the top (an upturned frustum); returns it and its top."""
    pot = make("pot", "cone", (0, h, 0), (r, h, r), tint(rng, COLORS["terracotta"]), rot("x", np.pi), top=0.75)
    return pot, 2 * h


# ---- rock -----------------------------------------------------------------------------

def build_rock(rng, a):
    color = tint(rng, [COLORS["grey"], (0.6, 0.58, 0.54), (0.45, 0.42, 0.38)][rng.integers(3)], 0.04)
    angular = a["shape"] == "angular"

    def boulder(center, half, frame, prim):
        return make("boulder", prim, center, half, tint(rng, color, 0.03), frame)

    def frame(phi):
        tilt = rot("x", rng.uniform(-0.2, 0.2)) @ rot("z", rng.uniform(-0.2, 0.2)) if angular else np.eye(3)
        return rot("y", phi) @ tilt

    hx, hy, hz = rng.uniform(0.45, 0.55), rng.uniform(0.3, 0.4), rng.uniform(0.35, 0.45)
    phi = rng.uniform(0, 2 * np.pi)
    k = 0.82 if angular else 1.0  # a box fills more of its box than an ellipsoid does
    parts = [boulder((0, hy * 0.9, 0), (hx * k, hy * k, hz * k), frame(phi), "box" if angular else "sphere")]
    theta = rng.uniform(0, 2 * np.pi)
    for i in range(a["boulders"] - 1):  # smaller ones leaning on the big one, on opposite sides
        t = theta + i * (np.pi + rng.uniform(-0.5, 0.5))
        u = np.array([np.cos(t), 0, np.sin(t)])
        local = rot("y", phi).T @ u
        reach = 1 / np.sqrt((local[0] / hx) ** 2 + (local[2] / hz) ** 2)  # the big one's radius towards u
        s = rng.uniform(0.45, 0.6)
        half = np.array([hx, hy * rng.uniform(0.9, 1.1), hz]) * s
        r = (half[0] + half[2]) / 2
        prim = "box" if angular else "sphere"
        parts.append(boulder(u * (reach * k * 0.8 + r * k * 0.6) + (0, half[1] * 0.9, 0), half * k, frame(rng.uniform(0, 2 * np.pi)),
                             prim))
    return parts


def infer_rock(parts):
    boulders = group(parts)["boulder"]
    big = max(boulders, key=lambda p: np.prod(p.half_extents))
    return {"boulders": len(boulders), "shape": "round" if is_round(big) else "angular"}


ROCK = Category(
    space={"boulders": [1, 2, 3], "shape": ["round", "angular"]},
    build=build_rock, infer=infer_rock,
    heldout=[{"boulders": 3, "shape": "round"}],
)


# ---- cactus ---------------------------------------------------------------------------

def build_cactus(rng, a):
    green = tint(rng, [COLORS["green"], COLORS["dark_green"]][rng.integers(2)], 0.05)
    parts, y0 = [], 0.0
    if a["pot"] == "yes":
        pot, top = _pot(rng, rng.uniform(0.2, 0.26), rng.uniform(0.14, 0.19))
        parts.append(pot)
        y0 = top - 0.05  # the body's foot is buried in the soil
    rb, hb = rng.uniform(0.12, 0.15), rng.uniform(0.8, 0.95)
    parts.append(make("body", "capsule", (0, y0 + hb / 2, 0), (rb, hb / 2, rb), green, cap=rb / (hb / 2)))
    n, phase = a["arms"], rng.uniform(0, 2 * np.pi)
    for k in range(n):  # L-shaped arms: a joint out of the body, then an arm up
        q = phase + 2 * np.pi * k / max(n, 1) + rng.uniform(-0.3, 0.3)
        d = np.array([np.cos(q), 0, np.sin(q)])
        ra = rb * rng.uniform(0.6, 0.7)
        da = rb + ra + rng.uniform(0.07, 0.1)  # the arm's axis, clear of the body
        yj = y0 + hb * rng.uniform(0.3, 0.5)
        hl = (da - 0.5 * rb) / 2
        parts.append(make("joint", "capsule", d * (0.5 * rb + hl) + (0, yj, 0), (ra * 0.9, hl, ra * 0.9), green, along(d),
                          cap=min(ra * 0.9 / hl, 1.0)))
        ha = rng.uniform(0.22, 0.34)
        half = (ha + 0.6 * ra) / 2
        parts.append(make("arm", "capsule", d * da + (0, yj - 0.6 * ra + half, 0), (ra, half, ra), green, cap=ra / half))
    return parts


def infer_cactus(parts):
    g = group(parts)
    return {"arms": len(g["arm"]), "pot": "yes" if g["pot"] else "no"}


CACTUS = Category(
    space={"arms": [0, 1, 2, 3], "pot": ["yes", "no"]},
    build=build_cactus, infer=infer_cactus,
    heldout=[{"arms": 3, "pot": "no"}],
)


# ---- flower ---------------------------------------------------------------------------

def build_flower(rng, a):
    petal_c = tint(rng, [COLORS["red"], COLORS["yellow"], COLORS["white"], (0.9, 0.5, 0.7), (0.6, 0.35, 0.8)][rng.integers(5)])
    leaf_c = tint(rng, COLORS["green"], 0.05)
    parts, y0 = [], 0.0
    if a["pot"] == "yes":
        pot, top = _pot(rng, rng.uniform(0.17, 0.21), rng.uniform(0.12, 0.16))
        parts.append(pot)
        y0 = top - 0.04
    hs, rs = rng.uniform(0.6, 0.75), rng.uniform(0.03, 0.034)
    yh = y0 + hs
    rc = rng.uniform(0.07, 0.09)
    # The head faces +Z; it comes before the petals so that it owns their buried roots.
    parts.append(make("head", "sphere", (0, yh, 0.03), (rc, rc, 0.06), tint(rng, [COLORS["yellow"], COLORS["brown"]][rng.integers(2)])))
    parts.append(make("stem", "cylinder", (0, (y0 + yh) / 2 - 0.01, 0), (rs, (yh - y0) / 2, rs), leaf_c))
    n, pl, phase = a["petals"], rng.uniform(0.11, 0.14), rng.uniform(0, np.pi)
    mid = 0.6 * rc + pl
    pw = min(pl * 0.5, 0.25 * 2 * np.pi * mid / n)  # narrow enough that neighbours do not meet
    for k in range(n):
        q = phase + 2 * np.pi * k / n
        parts.append(make("petal", "sphere", (mid * np.cos(q), yh + mid * np.sin(q), 0.03), (pl, pw, 0.025), petal_c, rot("z", q)))
    for i in range(a["leaves"]):  # alternate sides, tilted up, broad face to the front
        s, t = (1, -1)[i], rng.uniform(0.45, 0.7)
        ll = rng.uniform(0.1, 0.13)
        d = np.array([s * np.cos(t), np.sin(t), 0])
        c = np.array([0, y0 + hs * (0.25 + 0.25 * i), 0]) + d * ll * 0.9
        parts.append(make("leaf", "sphere", c, (ll, rng.uniform(0.04, 0.05), 0.024), leaf_c, rot("z", t if s > 0 else np.pi - t)))
    return parts


def infer_flower(parts):
    g = group(parts)
    return {"petals": len(g["petal"]), "leaves": len(g["leaf"]), "pot": "yes" if g["pot"] else "no"}


FLOWER = Category(
    space={"petals": [4, 6, 8], "leaves": [0, 1, 2], "pot": ["yes", "no"]},
    build=build_flower, infer=infer_flower,
    heldout=[{"petals": 8, "leaves": 0}, {"petals": 4, "pot": "yes"}],
)


CATEGORIES = {"rock": ROCK, "cactus": CACTUS, "flower": FLOWER}

# Caption tables, as in captions.py
NOUNS = {
    "rock": (["rock"], ["crag", "outcrop"]),
    "cactus": (["cactus"], ["succulent", "saguaro"]),
    "flower": (["flower"], ["blossom", "bloom"]),
}
ATTRIBUTE_NOUNS = {("rock", "boulders", 2): "rock pile", ("rock", "boulders", 3): "rock pile",
                   ("cactus", "pot", "yes"): "potted cactus", ("flower", "pot", "yes"): "potted flower"}
PARAPHRASE_ATTRIBUTE_NOUNS = {("rock", "shape", "angular"): "jagged crag", ("cactus", "pot", "yes"): "houseplant",
                              ("flower", "pot", "yes"): "houseplant in bloom"}
PHRASES = {
    "rock": {
        "boulders": {
            1: (["one boulder", "a single boulder"], ["one lump"]),
            2: (["two boulders", "2 boulders"], ["a pair of lumps"]),
            3: (["three boulders", "3 boulders"], ["three lumps"]),
        },
        "shape": {
            "round": (["a round shape", "rounded edges"], ["pebble-like curves"]),
            "angular": (["an angular shape", "sharp edges"], ["jagged facets"]),
        },
    },
    "cactus": {
        "arms": {
            0: (["no arms", "no side arms"], ["just one column"]),
            1: (["one arm", "a single arm"], ["one branch"]),
            2: (["two arms", "2 arms"], ["two branches"]),
            3: (["three arms", "3 arms"], ["three branches"]),
        },
        "pot": {
            "yes": (["a pot", "a plant pot"], ["a planter"]),
            "no": (["no pot", "no plant pot"], ["rooted in the sand"]),
        },
    },
    "flower": {
        "petals": {
            4: (["four petals", "4 petals"], ["a corolla of four"]),
            6: (["six petals", "6 petals"], ["a corolla of six"]),
            8: (["eight petals", "8 petals"], ["a corolla of eight"]),
        },
        "leaves": {
            0: (["no leaves", "a bare stem"], ["a leafless stalk"]),
            1: (["one leaf", "a single leaf"], ["one frond"]),
            2: (["two leaves", "2 leaves"], ["two fronds"]),
        },
        "pot": {
            "yes": (["a pot", "a plant pot"], ["a planter"]),
            "no": (["no pot", "no plant pot"], ["freshly cut"]),
        },
    },
}

# Default looks, as in appearance.py and appearance_captions.py
PALETTE = {"boulder": (130, 128, 122), "petal": (236, 120, 160), "leaf": (80, 150, 70), "pot": (190, 100, 60)}
CATEGORY_PALETTE = {("cactus", "body"): (70, 140, 70), ("cactus", "arm"): (70, 140, 70), ("cactus", "joint"): (70, 140, 70),
                    ("flower", "stem"): (80, 140, 60), ("flower", "head"): (240, 200, 40)}
LABEL_KINDS = {"boulder": "stone", "pot": "ceramic"}
CATEGORY_KINDS = {"rock": "stone", "cactus": {"arm": None, "joint": None}}
PLURALS: dict = {}
