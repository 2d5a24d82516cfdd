"""Things on a table: lantern, clock, candle, teapot, bowl."""

import numpy as np

from ..shapes import COLORS, along, extent, group, is_round, make, rot, tint
from . import Category


# ---- lantern --------------------------------------------------------------------------

def build_lantern(rng, a):
    iron = tint(rng, [COLORS["black"], COLORS["metal"], COLORS["brown"], COLORS["dark_green"]][rng.integers(4)])
    glass = tint(rng, COLORS["glass"], 0.03)
    square = a["body"] == "square"
    prim = "box" if square else "cylinder"
    r, bh = rng.uniform(0.08, 0.1), rng.uniform(0.014, 0.02)
    hh, pr = r * rng.uniform(1.2, 1.6), rng.uniform(0.011, 0.013)
    y0 = 2 * bh
    n = a["posts"]
    if square:  # corners, then the middles of the left and right sides
        spots = [(sx * r, sz * r) for sx in (-1, 1) for sz in (-1, 1)] + [(-r, 0), (r, 0)][: n - 4]
    else:
        q0 = rng.uniform(0, 2 * np.pi)
        spots = [(r * np.cos(q), r * np.sin(q)) for q in q0 + 2 * np.pi * np.arange(n) / n]
    # Free-standing posts around a narrower glass, held by the base and the roof.
    parts = [make("post", prim, (x, y0 + hh, z), (pr, hh + bh, pr), iron) for x, z in spots]
    parts.append(make("body", prim, (0, y0 + hh, 0), (r * 0.72, hh + bh * 0.5, r * 0.72), glass))
    parts.append(make("base", prim, (0, bh, 0), (r * 1.25, bh, r * 1.25), iron))
    rh, top = r * rng.uniform(0.45, 0.65), rng.uniform(0.2, 0.3)
    y = y0 + 2 * hh - 0.05 * rh
    rr = r * (1.6 if square else 1.45)
    parts.append(make("roof", "cone", (0, y + rh, 0), (rr, rh, rr), iron, top=top))
    y += 2 * rh
    ch = r * 0.16
    parts.append(make("cap", "cylinder", (0, y + ch * 0.6, 0), (r * 0.3, ch, r * 0.3), iron))
    if a["handle"] == "ring":
        hr, t = r * rng.uniform(0.45, 0.6), r * 0.11
        parts.append(make("handle", "torus", (0, y + 1.6 * ch + hr - 1.5 * t, 0), (hr, t, hr), iron, along((0, 0, 1)),
                          tube=t / hr))
    return parts


def infer_lantern(parts):
    g = group(parts)
    return {"body": "round" if is_round(g["body"][0]) else "square", "posts": len(g["post"]),
            "handle": "ring" if g["handle"] else "none"}


LANTERN = Category(
    space={"body": ["round", "square"], "posts": [4, 6], "handle": ["ring", "none"]},
    build=build_lantern, infer=infer_lantern,
    heldout=[{"body": "square", "posts": 6}],
)


# ---- clock ----------------------------------------------------------------------------

def build_clock(rng, a):
    case = tint(rng, [COLORS["red"], COLORS["blue"], COLORS["wood"], COLORS["metal"], COLORS["green"]][rng.integers(5)])
    r = rng.uniform(0.1, 0.13)
    d = r * rng.uniform(0.3, 0.45)  # half depth
    lift = r * rng.uniform(0.15, 0.25)  # the feet's height
    c = np.array([0, lift + r, 0])
    fr, t = r * rng.uniform(0.8, 0.88), r * 0.06
    parts = []
    for length, q in ((fr * 0.8, rng.uniform(-0.3, 0.3)), (fr * 0.55, rng.uniform(0.9, 2.6))):  # minute, hour
        direction = np.array([np.sin(q), np.cos(q), 0])
        parts.append(make("hand", "box", c + direction * length / 2 + (0, 0, d + t), (t * 1.2, length / 2 + t, t),
                          COLORS["black"], rot("z", -q)))
    parts.append(make("face", "cylinder", c + (0, 0, d - 0.02 * r), (fr, t, fr), COLORS["white"], along((0, 0, 1))))
    if a["shape"] == "round":
        parts.append(make("body", "cylinder", c, (r, d, r), case, along((0, 0, 1))))
    else:
        parts.append(make("body", "rounded_box", c, (r, r, d), case, round=0.25))
    if a["bells"] == 2:
        br, bhh = r * rng.uniform(0.3, 0.36), r * rng.uniform(0.25, 0.3)
        tilt = rng.uniform(0.55, 0.75) if a["shape"] == "round" else 0.0
        for s in (-1, 1):
            direction = np.array([s * np.sin(tilt), np.cos(tilt), 0])
            base = c + direction * r * 0.92 if tilt else c + (s * r * 0.5, r * 0.93, 0)
            parts.append(make("bell", "dome", base + direction * bhh, (br, bhh, br), case, rot("z", -s * tilt)))
    fh = (lift + 0.25 * r) / 2
    for s in (-1, 1):
        parts.append(make("foot", "cylinder", (s * r * 0.55, fh, 0), (r * 0.14, fh, r * 0.14), COLORS["black"]))
    return parts


def infer_clock(parts):
    g = group(parts)
    return {"shape": "round" if is_round(g["body"][0]) else "square", "bells": len(g["bell"])}


CLOCK = Category(
    space={"shape": ["round", "square"], "bells": [0, 2]},
    build=build_clock, infer=infer_clock,
    heldout=[{"shape": "square", "bells": 2}],
)


# ---- candle ---------------------------------------------------------------------------

def build_candle(rng, a):
    wax = tint(rng, [COLORS["cream"], COLORS["white"], COLORS["red"], COLORS["yellow"]][rng.integers(4)], 0.04)
    holder = tint(rng, [COLORS["metal"], COLORS["yellow"], COLORS["black"], COLORS["ceramic"]][rng.integers(4)])
    r = rng.uniform(0.03, 0.04)
    hh = r * (rng.uniform(2.6, 3.4) if a["height"] == "tall" else rng.uniform(0.9, 1.3))
    parts, y0 = [], 0.0
    if a["holder"] == "dish":  # a saucer with a finger ring; the candle stands on its floor
        dr, dh = r * rng.uniform(2.0, 2.4), r * rng.uniform(0.25, 0.32)
        hr, t = r * rng.uniform(0.5, 0.6), r * 0.17
        parts.append(make("base", "cup", (0, dh, 0), (dr, dh, dr), holder, inner=0.85, bottom=0.4))
        parts.append(make("handle", "torus", (dr + hr * 0.6, dh, 0), (hr, t, hr), holder, along((0, 0, 1)), tube=t / hr))
        y0 = dh * 0.7
    elif a["holder"] == "stick":
        br, bh, ph = r * rng.uniform(1.6, 2.0), r * 0.25, r * rng.uniform(1.8, 2.6)
        parts.append(make("base", "cylinder", (0, bh, 0), (br, bh, br), holder))
        parts.append(make("pole", "cylinder", (0, 2 * bh + ph - 0.05 * r, 0), (r * 0.45, ph, r * 0.45), holder))
        top = 2 * bh + 2 * ph - 0.05 * r
        parts.append(make("rim", "cylinder", (0, top + 0.2 * r, 0), (r * 1.3, r * 0.25, r * 1.3), holder))
        y0 = top + 0.4 * r
    if a["lit"] == "yes":
        parts.append(make("flame", "sphere", (0, y0 + 2 * hh + 0.6 * r, 0), (r * 0.42, r * 0.85, r * 0.42),
                          tint(rng, COLORS["orange"], 0.05)))
    parts.append(make("body", "cylinder", (0, y0 + hh, 0), (r, hh, r), wax))
    return parts


def infer_candle(parts):
    g = group(parts)
    b = g["body"][0].half_extents
    holder = "stick" if g["pole"] else "dish" if g["base"] else "none"
    return {"holder": holder, "height": "tall" if b[1] / b[0] > 1.9 else "short", "lit": "yes" if g["flame"] else "no"}


CANDLE = Category(
    space={"holder": ["none", "dish", "stick"], "height": ["tall", "short"], "lit": ["yes", "no"]},
    build=build_candle, infer=infer_candle,
    heldout=[{"holder": "stick", "height": "short"}, {"holder": "none", "lit": "no"}],
)


# ---- teapot ---------------------------------------------------------------------------

def build_teapot(rng, a):
    c = tint(rng, [COLORS["white"], COLORS["blue"], COLORS["terracotta"], COLORS["green"], COLORS["ceramic"],
                   COLORS["black"]][rng.integers(6)])
    R = rng.uniform(0.1, 0.12)
    H, fh = R * rng.uniform(0.7, 0.85), R * 0.08
    cy = 2 * fh + H * 0.92
    bw = R if a["body"] == "round" else R * 0.9  # half width
    parts = [make("foot", "cylinder", (0, fh, 0), (R * 0.55, fh, R * 0.55), c)]
    if a["body"] == "round":
        parts.append(make("body", "sphere", (0, cy, 0), (R, H, R), c))
    else:
        parts.append(make("body", "rounded_box", (0, cy, 0), (bw, H, bw), c, round=0.35))
    lh = R * rng.uniform(0.13, 0.17)
    parts.append(make("lid", "dome", (0, cy + 0.88 * H + lh, 0), (R * 0.45, lh, R * 0.45), c))
    kr = R * 0.12
    parts.append(make("knob", "sphere", (0, cy + 0.88 * H + 2 * lh + kr * 0.6, 0), (kr, kr, kr), c))
    p0 = np.array([bw * 0.55, cy - 0.15 * H, 0])
    if a["spout"] == "straight":
        q, length = rng.uniform(0.7, 0.85), R * rng.uniform(1.0, 1.2)
        d = np.array([np.cos(q), np.sin(q), 0])
        parts.append(make("spout", "cone", p0 + d * length / 2, (R * 0.2, length / 2, R * 0.2), c, along(d), top=0.4))
    else:  # out almost level, then up
        d1, d2 = np.array([np.cos(0.25), np.sin(0.25), 0]), np.array([np.cos(1.15), np.sin(1.15), 0])
        l1, l2 = R * rng.uniform(0.8, 0.9), R * rng.uniform(0.55, 0.65)
        p1 = p0 + d1 * l1 - d2 * R * 0.1
        parts.append(make("spout", "cone", p0 + d1 * l1 / 2, (R * 0.22, l1 / 2, R * 0.22), c, along(d1), top=0.75))
        parts.append(make("spout", "cone", p1 + d2 * l2 / 2, (R * 0.17, l2 / 2, R * 0.17), c, along(d2), top=0.6))
    t = R * 0.08
    if a["handle"] == "side":
        hr = R * rng.uniform(0.4, 0.5)
        parts.append(make("handle", "torus", (-(bw * 0.95 + hr * 0.55), cy + 0.05 * H, 0), (hr, t, hr), c,
                          along((0, 0, 1)), tube=t / hr))
    else:  # a bail arching over the lid, its lower half buried in the body
        hr = bw * 0.95
        parts.append(make("handle", "torus", (0, cy + 0.5 * H, 0), (hr, t, hr), c, along((0, 0, 1)), tube=t / hr))
    return parts


def infer_teapot(parts):
    g = group(parts)
    body, handle = g["body"][0], g["handle"][0]
    top = abs(handle.center[0] - body.center[0]) < 0.5 * body.half_extents[0]
    return {"body": "round" if is_round(body) else "square", "handle": "top" if top else "side",
            "spout": "curved" if len(g["spout"]) >= 2 else "straight"}


TEAPOT = Category(
    space={"body": ["round", "square"], "handle": ["side", "top"], "spout": ["straight", "curved"]},
    build=build_teapot, infer=infer_teapot,
    heldout=[{"body": "square", "handle": "top"}],
)


# ---- bowl -----------------------------------------------------------------------------

def build_bowl(rng, a):
    c = tint(rng, [COLORS["white"], COLORS["ceramic"], COLORS["blue"], COLORS["terracotta"], COLORS["light_wood"],
                   COLORS["green"]][rng.integers(6)])
    R = rng.uniform(0.15, 0.2)
    hh = R * (rng.uniform(0.5, 0.65) if a["depth"] == "deep" else rng.uniform(0.25, 0.33))
    parts, y0 = [], 0.0
    if a["base"] == "pedestal":
        bh, sh = R * 0.06, R * rng.uniform(0.18, 0.28)
        br = R * rng.uniform(0.5, 0.6)
        parts.append(make("base", "cylinder", (0, bh, 0), (br, bh, br), c))
        parts.append(make("stem", "cylinder", (0, 2 * bh + sh - 0.02 * R, 0), (R * 0.13, sh, R * 0.13), c))
        y0 = 2 * bh + 2 * sh - 0.04 * R
    elif a["base"] == "legs":
        lh = R * rng.uniform(0.09, 0.13)
        for q in rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(3) / 3:
            parts.append(make("leg", "cone", (R * 0.35 * np.cos(q), lh + 0.02 * R, R * 0.35 * np.sin(q)),
                              (R * 0.09, lh + 0.02 * R, R * 0.09), c, top=0.7))
        y0 = 2 * lh
    # A tapering solid underneath and a hollow wall above: a bowl, not a pan.
    dh = hh * rng.uniform(0.45, 0.55)
    parts.append(make("body", "cone", (0, y0 + dh, 0), (R, dh, R), c, rot("x", np.pi), top=rng.uniform(0.45, 0.55)))
    f = 0.06 * R
    ch = (2 * hh - 2 * dh + f) / 2
    parts.append(make("body", "cup", (0, y0 + 2 * hh - ch, 0), (R, ch, R), c, inner=rng.uniform(0.86, 0.9),
                      bottom=(f + 0.02 * R) / (2 * ch)))
    t = R * 0.05
    parts.append(make("rim", "torus", (0, y0 + 2 * hh - t * 0.5, 0), (R * 1.03, t, R * 1.03), c, tube=t / (R * 1.03)))
    if a["handles"] == 2:  # flat ear loops level with the rim
        hr = R * 0.2
        for s in (-1, 1):
            parts.append(make("handle", "torus", (s * (R + hr * 0.55), y0 + 2 * hh - 2.5 * t, 0), (hr, t, hr), c,
                              tube=t / hr))
    return parts


def infer_bowl(parts):
    g = group(parts)
    lo, hi = extent(g["body"])
    base = "legs" if len(g["leg"]) >= 2 else "pedestal" if g["stem"] or g["base"] else "flat"
    depth = "deep" if (hi[1] - lo[1]) / (hi[0] - lo[0]) > 0.41 else "shallow"
    return {"base": base, "depth": depth, "handles": len(g["handle"])}


BOWL = Category(
    space={"base": ["flat", "pedestal", "legs"], "depth": ["deep", "shallow"], "handles": [0, 2]},
    build=build_bowl, infer=infer_bowl,
    heldout=[{"base": "legs", "depth": "shallow"}],
)


CATEGORIES = {"lantern": LANTERN, "clock": CLOCK, "candle": CANDLE, "teapot": TEAPOT, "bowl": BOWL}

# Caption tables, as in captions.py
NOUNS = {
    "lantern": (["lantern"], ["storm lantern"]),
    "clock": (["clock", "desk clock"], ["timepiece"]),
    "candle": (["candle"], ["church candle"]),
    "teapot": (["teapot", "tea pot"], ["tea kettle"]),
    "bowl": (["bowl"], ["basin"]),
}
PHRASES = {
    "lantern": {
        "body": {
            "round": (["a round body", "a cylindrical body"], ["a tube-shaped chamber"]),
            "square": (["a square body", "a boxy body"], ["a four-sided chamber"]),
        },
        "posts": {
            4: (["four posts", "4 posts"], ["four upright bars"]),
            6: (["six posts", "6 posts"], ["six upright bars"]),
        },
        "handle": {
            "ring": (["a ring handle", "a carrying ring"], ["a loop to hang it by"]),
            "none": (["no handle", "no carrying ring"], ["nothing to hang it by"]),
        },
    },
    "clock": {
        "shape": {
            "round": (["a round case", "a circular case"], ["a disc-shaped housing"]),
            "square": (["a square case", "a rectangular case"], ["a boxy housing"]),
        },
        "bells": {
            0: (["no bells", "no alarm bells"], ["nothing on top to ring"]),
            2: (["two bells", "2 alarm bells"], ["twin ringers on top"]),
        },
    },
    "candle": {
        "holder": {
            "none": (["no holder", "no candlestick"], ["standing on its own"]),
            "dish": (["a dish holder", "a saucer holder"], ["a small plate with a finger loop"]),
            "stick": (["a candlestick", "a tall holder"], ["a raised stand on a column"]),
        },
        "height": {
            "tall": (["a tall shape", "a long body"], ["a slim elongated form"]),
            "short": (["a short shape", "a stubby body"], ["a squat pillar form"]),
        },
        "lit": {
            "yes": (["a flame", "a lit wick"], ["burning brightly"]),
            "no": (["no flame", "an unlit wick"], ["not burning"]),
        },
    },
    "teapot": {
        "body": {
            "round": (["a round body", "a spherical body"], ["a globe-shaped belly"]),
            "square": (["a square body", "a boxy body"], ["a cube-like belly"]),
        },
        "handle": {
            "side": (["a side handle", "a handle on the side"], ["a loop at the back"]),
            "top": (["a top handle", "an overhead handle"], ["a bail arching over the lid"]),
        },
        "spout": {
            "straight": (["a straight spout", "a short straight spout"], ["a plain pouring tube"]),
            "curved": (["a curved spout", "a bent spout"], ["a swan-neck pouring tube"]),
        },
    },
    "bowl": {
        "base": {
            "flat": (["a flat bottom", "no foot"], ["resting directly on the table"]),
            "pedestal": (["a pedestal foot", "a stemmed base"], ["a raised column underneath"]),
            "legs": (["three legs", "3 legs"], ["three feet"]),
        },
        "depth": {
            "deep": (["a deep body", "deep sides"], ["a high-walled hollow"]),
            "shallow": (["a shallow body", "shallow sides"], ["a low-walled hollow"]),
        },
        "handles": {
            0: (["no handles", "no lugs"], ["nothing to hold it by"]),
            2: (["two handles", "2 handles"], ["a pair of loops"]),
        },
    },
}
ATTRIBUTE_NOUNS = {("clock", "bells", 2): "alarm clock", ("candle", "lit", "yes"): "lit candle",
                   ("bowl", "base", "pedestal"): "footed bowl"}
PARAPHRASE_ATTRIBUTE_NOUNS = {("clock", "bells", 2): "twin-bell clock", ("candle", "lit", "yes"): "burning candle",
                              ("candle", "lit", "no"): "snuffed-out candle", ("bowl", "base", "pedestal"): "compote dish"}

# Default looks, as in appearance.py and appearance_captions.py
PALETTE = {"face": (245, 242, 230), "hand": (30, 30, 34), "flame": (255, 170, 40), "spout": (220, 215, 205),
           "rim": (200, 170, 90), "bell": (205, 175, 80)}
CATEGORY_PALETTE = {
    ("lantern", "body"): (205, 228, 236), ("lantern", "post"): (50, 50, 55), ("lantern", "base"): (50, 50, 55),
    ("lantern", "roof"): (50, 50, 55), ("lantern", "cap"): (50, 50, 55), ("lantern", "handle"): (60, 60, 64),
    ("clock", "body"): (150, 100, 60), ("clock", "foot"): (40, 40, 44),
    ("candle", "body"): (245, 240, 225), ("candle", "base"): (200, 170, 90), ("candle", "pole"): (200, 170, 90),
    ("candle", "handle"): (200, 170, 90),
    ("teapot", "body"): (236, 232, 224), ("teapot", "lid"): (236, 232, 224), ("teapot", "handle"): (236, 232, 224),
    ("teapot", "knob"): (236, 232, 224), ("teapot", "foot"): (236, 232, 224),
    ("bowl", "body"): (230, 225, 215), ("bowl", "rim"): (120, 150, 190), ("bowl", "handle"): (230, 225, 215),
}
LABEL_KINDS = {"hand": "metal", "rim": "metal", "bell": "metal", "spout": "ceramic"}
CATEGORY_KINDS = {
    "lantern": {"body": "glass", "post": "metal", "roof": "metal", "cap": "metal", "handle": "metal"},
    "clock": {"body": "wood", "foot": "metal"},
    "candle": {"handle": "metal"},
    "teapot": "ceramic", "bowl": "ceramic",
}
PLURALS: dict = {}
