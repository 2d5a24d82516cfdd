"""Scene props: barrel, crate, ladder, fence (metres, Y up, front +Z)."""

import numpy as np

from ..shapes import COLORS, along, extent, group, is_round, make, rot, stick, tint
from . import Category


def _wood(rng):
    return tint(rng, [COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"]][rng.integers(3)])


def _bar(label, a, b, half, color, prim="box"):
    """A bar of square (or round) section from point a to point b."""
    return stick(label, a, b, half, color, prim)


# ---- barrel ---------------------------------------------------------------------------

def build_barrel(rng, a):
    wood = _wood(rng)
    metal = tint(rng, [COLORS["black"], COLORS["metal"], COLORS["grey"]][rng.integers(3)], 0.04)
    r = rng.uniform(0.24, 0.3)
    hh, t = r * rng.uniform(1.3, 1.5), rng.uniform(0.022, 0.028)
    lift = rng.uniform(0.05, 0.09)
    upright = a["position"] == "upright"
    frame = np.eye(3) if upright else along((1, 0, 0))
    c0 = np.array([0, hh, 0]) if upright else np.array([0, lift + r, 0])
    u, top = rng.uniform(0.68, 0.82), rng.uniform(0.8, 0.88)
    parts = []
    for s in np.linspace(-u, u, a["hoops"]):  # rings hugging the staves, which narrow towards the ends
        ring = r * (1 - (1 - top) * abs(s))
        parts.append(make("hoop", "torus", c0 + frame @ (0, s * hh, 0), (ring + t, t, ring + t), metal, frame,
                          tube=t / (ring + t)))
    for s in (-1, 1):  # two frusta, wide ends meeting at the bulge
        half = frame @ rot("x", np.pi) if s < 0 else frame
        parts.append(make("body", "cone", c0 + frame @ (0, s * hh / 2, 0), (r, hh / 2, r), wood, half, top=top))
    if not upright:  # two cradle blocks keep it from rolling
        sy = (lift + 0.35 * r) / 2
        parts += [make("support", "box", (s * 0.55 * hh, sy, 0), (0.04, sy, 0.8 * r), tint(rng, wood, 0.05)) for s in (-1, 1)]
    return parts


def infer_barrel(parts):
    g = group(parts)
    lo, hi = extent(g["body"])
    size = hi - lo
    return {"hoops": len(g["hoop"]), "position": "upright" if size[1] > max(size[0], size[2]) else "lying"}


BARREL = Category(
    space={"hoops": [2, 3, 4], "position": ["upright", "lying"]},
    build=build_barrel, infer=infer_barrel,
    heldout=[{"hoops": 4, "position": "lying"}],
)


# ---- crate ----------------------------------------------------------------------------

def build_crate(rng, a):
    wood = _wood(rng)
    hy = rng.uniform(0.2, 0.28)
    hz = hy * rng.uniform(0.9, 1.1)
    hx = hy * (rng.uniform(0.9, 1.1) if a["shape"] == "cube" else rng.uniform(1.65, 2.0))
    size = 2 * max(hx, hy, hz)
    e, pe = size * rng.uniform(0.035, 0.045), size * rng.uniform(0.045, 0.055)  # how far boards stand out; post width
    parts = [make("post", "box", (sx * (hx + e - pe), hy, sz * (hz + e - pe)), (pe, hy, pe), tint(rng, wood, 0.05))
             for sx, sz in ((-1, 1), (1, 1), (-1, -1), (1, -1))]
    parts.append(make("body", "box", (0, hy, 0), (hx, hy, hz), tint(rng, wood, 0.04)))
    sh = hy * rng.uniform(0.13, 0.17)
    for y in np.linspace(sh, 2 * hy - sh, a["slats"]):  # boards wrapping all four sides, gaps between
        parts.append(make("slat", "box", (0, y, 0), (hx + e, sh, hz + e), tint(rng, wood, 0.04)))
    return parts


def infer_crate(parts):
    g = group(parts)
    lo, hi = extent(parts)
    size = hi - lo
    return {"slats": len(g["slat"]), "shape": "long" if max(size[0], size[2]) / size[1] > 1.4 else "cube"}


CRATE = Category(
    space={"slats": [2, 3, 4], "shape": ["cube", "long"]},
    build=build_crate, infer=infer_crate,
    heldout=[{"slats": 4, "shape": "long"}],
)


# ---- ladder ---------------------------------------------------------------------------

def build_ladder(rng, a):
    wood = _wood(rng)
    n = a["rungs"]
    s = rng.uniform(0.26, 0.31)  # rung spacing
    H, hw = s * (n + 1), rng.uniform(0.19, 0.24)
    th, rr = H * rng.uniform(0.017, 0.02), H * rng.uniform(0.016, 0.019)
    ys = s * (np.arange(n) + 1)
    if a["kind"] == "straight":  # leaning back a little
        frame = rot("x", -rng.uniform(0.12, 0.22))
        parts = [make("rail", "box", frame @ (sx * hw, H / 2, 0), (th, H / 2, th * 1.2), wood, frame) for sx in (-1, 1)]
        prim = rng.choice(["cylinder", "box"])
        parts += [make("rung", prim, frame @ (0, y, 0), (rr, hw, rr), wood, frame @ along((1, 0, 0))) for y in ys]
        return parts
    d, db = H * rng.uniform(0.25, 0.32), H * rng.uniform(0.22, 0.3)  # feet in front of and behind the hinge
    parts = [_bar("rail", (sx * hw, 0, d), (sx * hw, H, 0), th, wood) for sx in (-1, 1)]
    parts += [_bar("leg", (sx * hw, 0, -db), (sx * hw, H, 0), th, wood) for sx in (-1, 1)]
    tt = H * 0.02
    parts.append(make("top", "box", (0, H + tt * 0.3, -0.01), (hw + th, tt, H * 0.06), tint(rng, wood, 0.04)))
    sd = H * rng.uniform(0.035, 0.045)
    parts += [make("rung", "box", (0, y, d * (1 - y / H)), (hw, rr, sd), wood) for y in ys]  # flat steps
    return parts


def infer_ladder(parts):
    g = group(parts)
    return {"rungs": len(g["rung"]), "kind": "step" if g["leg"] or g["top"] else "straight"}


LADDER = Category(
    space={"rungs": [3, 4, 5, 6], "kind": ["straight", "step"]},
    build=build_ladder, infer=infer_ladder,
    heldout=[{"rungs": 6, "kind": "step"}, {"rungs": 3, "kind": "straight"}],
)


# ---- fence ----------------------------------------------------------------------------

def build_fence(rng, a):
    wood = tint(rng, [COLORS["white"], COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"]][rng.integers(4)])
    n = a["pickets"]
    s, pr, ph = rng.uniform(0.15, 0.19), rng.uniform(0.045, 0.055), rng.uniform(0.9, 1.1)
    W = n * s
    size = max(W + 4 * pr, ph)
    pw, pd, rd = s * rng.uniform(0.28, 0.34), size * 0.018, size * 0.018
    prim = "cylinder" if a["posts"] == "round" else "box"
    parts = [make("post", prim, (sx * (W / 2 + pr), ph / 2, 0), (pr, ph / 2, pr), tint(rng, wood, 0.04)) for sx in (-1, 1)]
    y0, y1 = rng.uniform(0.04, 0.1), ph * rng.uniform(0.85, 0.95)
    rh = rng.uniform(0.028, 0.035)
    for f in {2: (0.2, 0.8), 3: (0.15, 0.5, 0.85)}[a["rails"]]:
        parts.append(make("rail", "box", (0, y0 + f * (y1 - y0), 0), (W / 2 + pr, rh, rd), wood))
    z = rd + 0.7 * pd  # pickets in front of the rails
    for i in range(n):
        parts.append(make("picket", "box", ((i + 0.5) * s - W / 2, (y0 + y1) / 2, z), (pw, (y1 - y0) / 2, pd), wood))
    return parts


def infer_fence(parts):
    g = group(parts)
    return {"pickets": len(g["picket"]), "rails": len(g["rail"]), "posts": "round" if is_round(g["post"][0]) else "square"}


FENCE = Category(
    space={"pickets": [4, 6, 8], "rails": [2, 3], "posts": ["round", "square"]},
    build=build_fence, infer=infer_fence,
    heldout=[{"pickets": 8, "rails": 3}, {"posts": "round", "pickets": 4}],
)


CATEGORIES = {"barrel": BARREL, "crate": CRATE, "ladder": LADDER, "fence": FENCE}

# Caption tables, as in captions.py
NOUNS = {
    "barrel": (["barrel", "cask"], ["keg"]),
    "crate": (["crate", "shipping crate"], ["packing case"]),
    "ladder": (["ladder"], ["climbing ladder"]),
    "fence": (["fence", "picket fence"], ["palisade", "garden barrier"]),
}
ATTRIBUTE_NOUNS = {("ladder", "kind", "step"): "stepladder"}
PARAPHRASE_ATTRIBUTE_NOUNS = {("ladder", "kind", "step"): "folding steps", ("barrel", "position", "lying"): "toppled keg"}
PHRASES = {
    "barrel": {
        "hoops": {
            2: (["two hoops", "2 hoops"], ["a pair of encircling rings"]),
            3: (["three hoops", "3 hoops"], ["a trio of encircling rings"]),
            4: (["four hoops", "4 hoops"], ["four encircling rings"]),
        },
        "position": {
            "upright": (["an upright position", "standing upright"], ["set on its end"]),
            "lying": (["lying on its side", "a horizontal position"], ["resting sideways on a cradle"]),
        },
    },
    "crate": {
        "slats": {
            2: (["two slats", "2 slats"], ["two planks around it"]),
            3: (["three slats", "3 slats"], ["three planks around it"]),
            4: (["four slats", "4 slats"], ["four planks around it"]),
        },
        "shape": {
            "cube": (["a cube shape", "a cubic shape"], ["equal sides"]),
            "long": (["a long shape", "an elongated shape"], ["a stretched-out form"]),
        },
    },
    "ladder": {
        "rungs": {
            3: (["three rungs", "3 rungs"], ["three steps to climb"]),
            4: (["four rungs", "4 rungs"], ["four steps to climb"]),
            5: (["five rungs", "5 rungs"], ["five steps to climb"]),
            6: (["six rungs", "6 rungs"], ["six steps to climb"]),
        },
        "kind": {
            "straight": (["a straight frame", "a single straight frame"], ["one leaning section"]),
            "step": (["a folding frame", "a freestanding frame"], ["two hinged halves"]),
        },
    },
    "fence": {
        "pickets": {
            4: (["four pickets", "4 pickets"], ["four upright boards"]),
            6: (["six pickets", "6 pickets"], ["six upright boards"]),
            8: (["eight pickets", "8 pickets"], ["eight upright boards"]),
        },
        "rails": {
            2: (["two rails", "2 rails"], ["a pair of crossbars"]),
            3: (["three rails", "3 rails"], ["three crossbars"]),
        },
        "posts": {
            "round": (["round posts", "rounded posts"], ["log-like uprights"]),
            "square": (["square posts", "square end posts"], ["four-sided uprights"]),
        },
    },
}

# Default looks, as in appearance.py and appearance_captions.py
PALETTE = {"hoop": (70, 70, 76), "picket": (236, 232, 222), "rung": (176, 130, 86)}
CATEGORY_PALETTE = {
    ("barrel", "body"): (150, 100, 58), ("barrel", "support"): (120, 84, 54),
    ("crate", "body"): (190, 150, 100), ("crate", "slat"): (200, 160, 110), ("crate", "post"): (170, 130, 86),
    ("ladder", "rail"): (190, 150, 100), ("ladder", "leg"): (190, 150, 100), ("ladder", "top"): (170, 130, 86),
    ("fence", "post"): (226, 222, 212), ("fence", "rail"): (214, 210, 200),
}
LABEL_KINDS = {"hoop": "metal", "picket": "wood", "rung": "wood"}
CATEGORY_KINDS = {"barrel": {"body": "wood"}, "crate": "wood", "ladder": "wood", "fence": "wood"}
PLURALS: dict = {}
