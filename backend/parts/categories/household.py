"""Lamps and containers: desk lamp, floor lamp, vase, mug, bottle, traffic cone."""

import numpy as np

from ..shapes import COLORS, along, group, is_round, make, rot, stick, tint
from . import Category



def _shade(rng, kind, apex, tilt, r, hh, color):
    """A shade hanging below `apex` (its narrow end), opening downwards, tilted about Z."""
    frame = rot("z", tilt)
    center = np.asarray(apex) - frame @ np.array([0, hh * 0.9, 0])
    if kind == "cone":
        return make("shade", "cone", center, (r, hh, r), color, frame, top=rng.uniform(0.25, 0.4))
    if kind == "dome":
        return make("shade", "dome", center, (r, hh, r), color, frame)
    return make("shade", "cylinder", center, (r, hh, r), color, frame)


# ---- desk lamp ------------------------------------------------------------------------

def build_desk_lamp(rng, a):
    metal = tint(rng, [COLORS["black"], COLORS["metal"], COLORS["red"], COLORS["blue"]][rng.integers(4)])
    br, bh = rng.uniform(0.08, 0.11), rng.uniform(0.012, 0.02)
    parts = [make("base", "cylinder", (0, bh, 0), (br, bh, br), metal)]
    pr = rng.uniform(0.012, 0.016)
    foot = np.array([-br * 0.4, bh, 0])
    if a["arm"] == "straight":
        head = foot + np.array([rng.uniform(0.08, 0.14), rng.uniform(0.35, 0.42), 0])
        parts.append(stick("pole", foot, head, pr, metal))
    else:  # two segments meeting at an elbow joint
        elbow = foot + np.array([-rng.uniform(0.04, 0.08), rng.uniform(0.25, 0.3), 0])
        head = elbow + np.array([rng.uniform(0.18, 0.24), rng.uniform(0.08, 0.14), 0])
        parts.append(stick("pole", foot, elbow, pr, metal))
        parts.append(make("joint", "sphere", elbow, [pr * 1.6] * 3, metal))
        parts.append(stick("pole", elbow, head, pr, metal))
    parts.append(make("joint", "sphere", head, [pr * 1.8] * 3, metal))
    r = rng.uniform(0.06, 0.09)
    tilt = -rng.uniform(0.3, 0.6)  # shade faces forward and down
    parts.append(_shade(rng, a["shade"], head + np.array([0, pr, 0]), tilt, r, r * rng.uniform(0.6, 0.8), metal))
    return parts


def infer_desk_lamp(parts):
    g = group(parts)
    return {"arm": "bent" if len(g["pole"]) == 2 else "straight",
            "shade": "cone" if g["shade"][0].primitive == "cone" else "dome"}


DESK_LAMP = Category(
    space={"arm": ["straight", "bent"], "shade": ["cone", "dome"]},
    build=build_desk_lamp, infer=infer_desk_lamp,
    heldout=[{"arm": "straight", "shade": "dome"}],
)


# ---- floor lamp -----------------------------------------------------------------------

def build_floor_lamp(rng, a):
    metal = tint(rng, [COLORS["black"], COLORS["metal"], COLORS["dark_wood"]][rng.integers(3)])
    cloth = tint(rng, [COLORS["cream"], COLORS["white"], COLORS["yellow"]][rng.integers(3)])
    h, pr = rng.uniform(1.4, 1.7), rng.uniform(0.028, 0.034)
    if a["base"] == "disc":
        br, bh = rng.uniform(0.16, 0.22), rng.uniform(0.022, 0.03)
        parts = [make("base", "cylinder", (0, bh, 0), (br, bh, br), metal), stick("pole", (0, bh, 0), (0, h, 0), pr, metal)]
    else:  # three splayed legs meeting the pole at a hub
        hub = rng.uniform(0.35, 0.5)
        spread = rng.uniform(0.25, 0.35)
        parts = [stick("pole", (0, hub - 0.03, 0), (0, h, 0), pr, metal)]
        for q in np.arange(3) * 2 * np.pi / 3 + rng.uniform(0, 2 * np.pi):
            parts.append(stick("leg", (spread * np.cos(q), pr, spread * np.sin(q)), (0, hub, 0), pr, metal))
    r = rng.uniform(0.2, 0.27)
    hh = r * rng.uniform(0.55, 0.75)
    parts.append(_shade(rng, a["shade"], (0, h + hh * 1.6, 0), 0.0, r, hh, cloth))
    return parts


def infer_floor_lamp(parts):
    g = group(parts)
    return {"shade": "cone" if g["shade"][0].primitive == "cone" else "cylinder", "base": "tripod" if "leg" in g else "disc"}


FLOOR_LAMP = Category(
    space={"shade": ["cone", "cylinder"], "base": ["disc", "tripod"]},
    build=build_floor_lamp, infer=infer_floor_lamp,
    heldout=[{"shade": "cylinder", "base": "tripod"}],
)


# ---- vase -----------------------------------------------------------------------------

def build_vase(rng, a):
    c = tint(rng, [COLORS["ceramic"], COLORS["terracotta"], COLORS["blue"], COLORS["glass"]][rng.integers(4)])
    fr, fh = rng.uniform(0.05, 0.07), rng.uniform(0.01, 0.02)
    parts = [make("foot", "cylinder", (0, fh, 0), (fr, fh, fr), c)]
    if a["body"] == "round":
        r = rng.uniform(0.11, 0.15)
        hh = r * rng.uniform(0.85, 1.05)
        parts.append(make("body", "sphere", (0, 2 * fh + hh * 0.95, 0), (r, hh, r), c))
    else:
        r = rng.uniform(0.07, 0.09)
        hh = r * rng.uniform(1.8, 2.3)
        parts.append(make("body", "cone", (0, 2 * fh + hh, 0), (r, hh, r), c, top=rng.uniform(0.55, 0.8)))
    top = 2 * fh + 2 * hh * 0.97
    nr, nh = rng.uniform(0.035, 0.05), rng.uniform(0.05, 0.09)
    parts.append(make("neck", "cup", (0, top + nh - 0.01, 0), (nr, nh + 0.02, nr), c, inner=0.65, bottom=0.5))
    parts.append(make("lip", "torus", (0, top + 2 * nh, 0), (nr + 0.012, 0.012, nr + 0.012), c, tube=0.012 / (nr + 0.012)))
    if a["handles"] == 2:  # ear handles bridging neck and shoulder
        hr = rng.uniform(0.045, 0.06)
        y = top + nh * 0.6
        for s in (-1, 1):
            ring = (s * (nr + hr * 0.6), y, 0)
            parts.append(make("handle", "torus", ring, (hr, 0.011, hr), c, along((0, 0, 1)), tube=0.011 / hr))
    return parts


def infer_vase(parts):
    g = group(parts)
    b = g["body"][0].half_extents
    return {"body": "slender" if b[1] / b[0] > 1.4 else "round", "handles": len(g.get("handle", []))}


VASE = Category(
    space={"body": ["round", "slender"], "handles": [0, 2]},
    build=build_vase, infer=infer_vase,
    heldout=[{"body": "slender", "handles": 2}],
)


# ---- mug ------------------------------------------------------------------------------

def build_mug(rng, a):
    c = tint(rng, [COLORS["white"], COLORS["red"], COLORS["blue"], COLORS["yellow"], COLORS["ceramic"]][rng.integers(5)])
    r = rng.uniform(0.04, 0.05)
    hh = r * (rng.uniform(1.5, 1.9) if a["height"] == "tall" else rng.uniform(0.8, 1.05))
    parts = [make("body", "cup", (0, hh, 0), (r, hh, r), c, inner=rng.uniform(0.8, 0.86), bottom=0.12)]
    t = 0.008
    if a["handle"] == "round":
        hr = min(hh * 0.75, r * 0.8)
        parts.append(make("handle", "torus", (r + hr - t, hh, 0), (hr, t, hr), c, along((0, 0, 1)), tube=t / hr))
    else:  # a C of three bars
        reach, span = r * rng.uniform(0.6, 0.8), hh * rng.uniform(0.55, 0.75)
        for y in (hh - span, hh + span):
            parts.append(make("handle", "box", (r + reach / 2, y, 0), (reach / 2 + t, t, t), c))
        parts.append(make("handle", "box", (r + reach, hh, 0), (t, span + t, t), c))
    return parts


def infer_mug(parts):
    g = group(parts)
    b = g["body"][0].half_extents
    return {"handle": "round" if len(g["handle"]) == 1 else "square", "height": "tall" if b[1] / b[0] > 1.27 else "short"}


MUG = Category(
    space={"handle": ["round", "square"], "height": ["tall", "short"]},
    build=build_mug, infer=infer_mug,
    heldout=[{"handle": "square", "height": "tall"}],
)


# ---- bottle ---------------------------------------------------------------------------

def build_bottle(rng, a):
    glass = tint(rng, [COLORS["glass"], COLORS["dark_green"], COLORS["brown"]][rng.integers(3)])
    r, hh = rng.uniform(0.035, 0.045), rng.uniform(0.08, 0.11)
    if a["body"] == "round":
        parts = [make("body", "cylinder", (0, hh, 0), (r, hh, r), glass)]
    else:
        parts = [make("body", "rounded_box", (0, hh, 0), (r * 0.9, hh, r * 0.9), glass, round=0.15)]
    sh = rng.uniform(0.02, 0.035)  # shoulder
    nr = r * rng.uniform(0.3, 0.4)
    parts.append(make("top", "cone", (0, 2 * hh + sh * 0.6, 0), (r * 0.95, sh, r * 0.95), glass, top=nr / r))
    nh = hh * (rng.uniform(0.45, 0.6) if a["neck"] == "long" else rng.uniform(0.12, 0.22))
    y = 2 * hh + 1.6 * sh  # top of the shoulder
    parts.append(make("neck", "cylinder", (0, y + nh - 0.01, 0), (nr, nh, nr), glass))
    ch = rng.uniform(0.008, 0.012)
    cap = tint(rng, COLORS["red"] if rng.random() < 0.5 else COLORS["metal"])
    parts.append(make("cap", "cylinder", (0, y + 2 * nh - 0.01 + ch * 0.3, 0), (nr * 1.15, ch, nr * 1.15), cap))
    return parts


def infer_bottle(parts):
    g = group(parts)
    ratio = g["neck"][0].half_extents[1] / g["body"][0].half_extents[1]
    return {"body": "round" if is_round(g["body"][0]) else "square", "neck": "long" if ratio > 0.33 else "short"}


BOTTLE = Category(
    space={"body": ["round", "square"], "neck": ["long", "short"]},
    build=build_bottle, infer=infer_bottle,
    heldout=[{"body": "square", "neck": "long"}],
)


# ---- traffic cone ---------------------------------------------------------------------

def build_traffic_cone(rng, a):
    orange = tint(rng, COLORS["orange"] if rng.random() < 0.7 else COLORS["red"], 0.04)
    bw, bh = rng.uniform(0.17, 0.21), rng.uniform(0.015, 0.025)
    if a["base"] == "square":
        parts = [make("base", rng.choice(["box", "rounded_box"]), (0, bh, 0), (bw, bh, bw), orange, round=0.2)]
    else:
        parts = [make("base", "cylinder", (0, bh, 0), (bw, bh, bw), orange)]
    r0, hh, top = bw * rng.uniform(0.7, 0.8), rng.uniform(0.3, 0.38), rng.uniform(0.12, 0.18)
    y0 = 2 * bh * 0.9
    parts.append(make("body", "cone", (0, y0 + hh, 0), (r0, hh, r0), orange, top=top))

    def radius(y):  # the body's radius at height y
        return r0 * (1 + (top - 1) * (y - y0) / (2 * hh))

    bands = [(0.35, 0.5), (0.62, 0.74)] if a["stripes"] == 2 else [(0.45, 0.62)]
    for f0, f1 in bands:
        ya, yb = y0 + 2 * hh * f0, y0 + 2 * hh * f1
        ra = radius(ya) + 0.006
        band = (ra, (yb - ya) / 2, ra)
        parts.append(make("stripe", "cone", (0, (ya + yb) / 2, 0), band, COLORS["white"], top=(radius(yb) + 0.006) / ra))
    return parts


def infer_traffic_cone(parts):
    g = group(parts)
    return {"base": "round" if is_round(g["base"][0]) else "square", "stripes": len(g["stripe"])}


TRAFFIC_CONE = Category(
    space={"base": ["square", "round"], "stripes": [1, 2]},
    build=build_traffic_cone, infer=infer_traffic_cone,
    heldout=[{"base": "round", "stripes": 2}],
)
