"""Storage furniture: cabinet, wardrobe, desk, shelf unit, chest (metres, Y up, front +Z)."""

import numpy as np

from ..shapes import COLORS, along, group, is_round, make, tint
from . import Category


def _wood(rng, white=True):
    options = [COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"]] + ([COLORS["white"]] if white else [])
    return tint(rng, options[rng.integers(len(options))])


def _front(label, x0, x1, y0, y1, z, depth, color):
    """A door or drawer front over x0..x1, y0..y1 on the face at z, a third buried in the body."""
    return make(label, "box", ((x0 + x1) / 2, (y0 + y1) / 2, z + depth / 2), ((x1 - x0) / 2, (y1 - y0) / 2, depth), color)


def _knob(prim, x, y, face, r, color):
    """A knob standing on the front face at z = face."""
    if prim == "sphere":
        return make("knob", "sphere", (x, y, face + 0.4 * r), (r, r, r), color)
    return make("knob", "cylinder", (x, y, face + 0.6 * r), (r, 0.8 * r, r), color, along((0, 0, 1)))


def _hardware(rng):
    return tint(rng, [COLORS["metal"], COLORS["black"], COLORS["yellow"]][rng.integers(3)], 0.04)


def _corner_legs(rng, hx, hd, top, thick, inset, color):
    prim = rng.choice(["box", "cylinder"])
    x, z = hx - thick - inset, hd - thick - inset
    return [make("leg", prim, (sx * x, top / 2, sz * z), (thick, top / 2, thick), color)
            for sx, sz in ((-1, 1), (1, 1), (-1, -1), (1, -1))]


# ---- cabinet --------------------------------------------------------------------------

def build_cabinet(rng, a):
    wood = _wood(rng)
    front, metal = tint(rng, wood, 0.04), _hardware(rng)
    hx, hd, bh = rng.uniform(0.3, 0.45), rng.uniform(0.2, 0.27), rng.uniform(0.65, 0.85)
    y0 = rng.uniform(0.1, 0.16) if a["base"] == "legs" else rng.uniform(0.06, 0.1)
    y1 = y0 + bh
    parts = [make("body", "box", (0, y0 + bh / 2, 0), (hx, bh / 2, hd), wood)]
    tt, o = rng.uniform(0.018, 0.025), rng.uniform(0.01, 0.03)
    parts.append(make("top", rng.choice(["box", "rounded_box"]), (0, y1 + tt * 0.8, 0), (hx + o, tt, hd + o),
                      tint(rng, wood, 0.04), round=0.15))
    m, g, dt = 0.025, 0.022, 0.018  # margin to the body's edges, gap between fronts, front half depth
    face = hd + 1.5 * dt
    kr, kprim = rng.uniform(0.018, 0.024), rng.choice(["sphere", "cylinder"])
    knobs = []
    dh = rng.uniform(0.12, 0.15)
    yt = y1 - m
    for _ in range(a["drawers"]):  # drawers stacked under the top, doors below them
        parts.append(_front("drawer", -hx + m, hx - m, yt - dh, yt, hd, dt, front))
        knobs.append(_knob(kprim, 0, yt - dh / 2, face, kr, metal))
        yt -= dh + g
    n = a["doors"]
    dw = (2 * (hx - m) - (n - 1) * g) / n
    ky = yt - min(0.1, (yt - y0) * 0.25)
    side = rng.choice([-1, 1])
    for i in range(n):
        x0 = -hx + m + i * (dw + g)
        parts.append(_front("door", x0, x0 + dw, y0 + m, yt, hd, dt, front))
        kx = side * (hx - m - 0.05) if n == 1 else (g / 2 + 0.045) * (1 if i else -1)  # by the free edge
        knobs.append(_knob(kprim, kx, ky, face, kr, metal))
    parts += knobs
    if a["base"] == "legs":
        return parts + _corner_legs(rng, hx, hd, y0 + 0.02, rng.uniform(0.02, 0.03), 0.02, tint(rng, wood, 0.04))
    return parts + [make("base", "box", (0, (y0 + 0.02) / 2, 0), (hx - 0.02, (y0 + 0.02) / 2, hd - 0.02), tint(rng, wood, 0.04))]


def infer_cabinet(parts):
    g = group(parts)
    return {"doors": len(g["door"]), "drawers": len(g["drawer"]), "base": "legs" if g["leg"] else "plinth"}


CABINET = Category(
    space={"doors": [1, 2], "drawers": [0, 1, 2], "base": ["legs", "plinth"]},
    build=build_cabinet, infer=infer_cabinet,
    heldout=[{"doors": 1, "drawers": 2}, {"doors": 2, "base": "legs"}],
)


# ---- wardrobe -------------------------------------------------------------------------

def build_wardrobe(rng, a):
    wood = _wood(rng)
    front, metal = tint(rng, wood, 0.04), _hardware(rng)
    n, nd = a["doors"], a["drawers"]
    m, g, dt = 0.03, 0.035, 0.035
    dw = rng.uniform(0.42, 0.5)  # width of one door
    hx = (n * dw + (n - 1) * g) / 2 + m
    hd, H, ph = rng.uniform(0.28, 0.32), rng.uniform(1.8, 2.05), rng.uniform(0.06, 0.1)
    parts = [make("body", "box", (0, ph + H / 2, 0), (hx, H / 2, hd), wood)]
    tt, o = rng.uniform(0.035, 0.045), rng.uniform(0.02, 0.05)
    parts.append(make("top", "box", (0, ph + H + tt * 0.8, 0), (hx + o, tt, hd + o), tint(rng, wood, 0.04)))
    parts.append(make("base", "box", (0, (ph + 0.02) / 2, 0), (hx - 0.02, (ph + 0.02) / 2, hd - 0.02), tint(rng, wood, 0.04)))
    face = hd + 1.5 * dt
    dh = rng.uniform(0.17, 0.21)
    kr = rng.uniform(0.036, 0.04)
    knobs = []
    for i in range(nd):  # full-width drawers under the doors
        yb = ph + m + i * (dh + g)
        parts.append(_front("drawer", -hx + m, hx - m, yb, yb + dh, hd, dt, front))
        knobs.append(_knob("sphere", 0, yb + dh / 2, face, kr, metal))
    y0, y1 = ph + m + nd * (dh + g), ph + H - m
    hr, hl = 0.035, rng.uniform(0.12, 0.18)
    hprim = rng.choice(["box", "cylinder"])
    handles = []
    for i in range(n):
        cx = -hx + m + dw / 2 + i * (dw + g)
        parts.append(_front("door", cx - dw / 2, cx + dw / 2, y0, y1, hd, dt, front))
        toward = -np.sign(cx) if abs(cx) > 1e-6 else 1.0  # a bar by the edge nearer the middle
        hy = min(y0 + (y1 - y0) * 0.5, 1.15)
        handles.append(make("handle", hprim, (cx + toward * (dw / 2 - 0.06), hy, face + hr * 0.5), (hr, hl, hr), metal))
    return parts + handles + knobs


def infer_wardrobe(parts):
    g = group(parts)
    return {"doors": len(g["door"]), "drawers": len(g["drawer"])}


WARDROBE = Category(
    space={"doors": [2, 3, 4], "drawers": [0, 1, 2]},
    build=build_wardrobe, infer=infer_wardrobe,
    heldout=[{"doors": 3, "drawers": 2}],
)


# ---- desk -----------------------------------------------------------------------------

def build_desk(rng, a):
    wood = _wood(rng)
    front, metal = tint(rng, wood, 0.04), _hardware(rng)
    H, hx, hd, t = rng.uniform(0.72, 0.78), rng.uniform(0.55, 0.72), rng.uniform(0.3, 0.37), rng.uniform(0.024, 0.03)
    parts = [make("top", rng.choice(["box", "rounded_box"]), (0, H - t, 0), (hx, t, hd), wood, round=0.1)]
    yt = H - 2 * t + 0.01  # supports reach into the top
    m = rng.uniform(0.02, 0.05)
    lt, pt = rng.uniform(0.025, 0.03), rng.uniform(0.022, 0.028)
    lprim = rng.choice(["box", "cylinder"])

    def support(s):
        if a["sides"] == "legs":
            x, z = s * (hx - m - lt), hd - m - lt
            return [make("leg", lprim, (x, yt / 2, sz * z), (lt, yt / 2, lt), wood) for sz in (1, -1)]
        return [make("side", "box", (s * (hx - m - pt), yt / 2, 0), (pt, yt / 2, hd - m), wood)]

    parts += support(-1)
    n = a["drawers"]
    if n:  # a pedestal of drawers on the right
        pw = rng.uniform(0.19, 0.24)
        px, pd = hx - m - pw, hd - m
        parts.append(make("pedestal", "box", (px, yt / 2, 0), (pw, yt / 2, pd), wood))
        pm, g, dt = 0.02, 0.025, 0.022
        dh = (yt - 0.01 - 2 * pm - (n - 1) * g) / n
        kr, kprim = rng.uniform(0.022, 0.027), rng.choice(["sphere", "cylinder"])
        knobs = []
        y = yt - 0.01 - pm
        for _ in range(n):
            parts.append(_front("drawer", px - pw + pm, px + pw - pm, y - dh, y, pd, dt, front))
            knobs.append(_knob(kprim, px, y - dh / 2, pd + 1.5 * dt, kr, metal))
            y -= dh + g
        parts += knobs
    else:
        parts += support(1)
    if a["sides"] == "panels":  # modesty panel between the sides at the back
        bh = rng.uniform(0.25, 0.35)
        parts.append(make("back", "box", (0, yt - bh / 2, -hd + m + 0.06), (hx - m - 0.01, bh / 2, 0.025), tint(rng, wood, 0.04)))
    return parts


def infer_desk(parts):
    g = group(parts)
    return {"drawers": len(g["drawer"]), "sides": "panels" if g["side"] else "legs"}


DESK = Category(
    space={"drawers": [0, 2, 3], "sides": ["legs", "panels"]},
    build=build_desk, infer=infer_desk,
    heldout=[{"drawers": 3, "sides": "panels"}],
)


# ---- shelf unit -----------------------------------------------------------------------

def build_shelf_unit(rng, a):
    frame = tint(rng, [COLORS["metal"], COLORS["black"], COLORS["wood"]][rng.integers(3)])
    board = _wood(rng)
    n = a["shelves"]
    gap, hx, hd = rng.uniform(0.3, 0.38), rng.uniform(0.38, 0.5), rng.uniform(0.17, 0.24)
    wr = rng.uniform(0.04, 0.05)
    floor = 2 * wr - 0.01 if a["wheels"] == "yes" else 0.0
    ys = floor + rng.uniform(0.06, 0.14) + gap * np.arange(n)
    H = ys[-1] + rng.uniform(0.02, 0.08)
    size = max(H, 2 * hx)
    st, pw = size * rng.uniform(0.017, 0.02), size * rng.uniform(0.017, 0.02)  # thick enough to show at 64^3
    prim = "cylinder" if a["posts"] == "round" else "box"
    corners = [(sx * (hx - pw), sz * (hd - pw)) for sx, sz in ((-1, 1), (1, 1), (-1, -1), (1, -1))]
    parts = [make("post", prim, (x, (floor + H) / 2, z), (pw, (H - floor) / 2, pw), frame) for x, z in corners]
    parts += [make("shelf", "box", (0, y, 0), (hx, st, hd), board) for y in ys]
    if a["wheels"] == "yes":
        ww = size * 0.018
        parts += [make("wheel", "cylinder", (x, wr, z), (wr, ww, wr), COLORS["black"], along((1, 0, 0))) for x, z in corners]
    return parts


def infer_shelf_unit(parts):
    g = group(parts)
    return {"shelves": len(g["shelf"]), "posts": "round" if is_round(g["post"][0]) else "square",
            "wheels": "yes" if g["wheel"] else "no"}


SHELF_UNIT = Category(
    space={"shelves": [3, 4, 5], "posts": ["round", "square"], "wheels": ["yes", "no"]},
    build=build_shelf_unit, infer=infer_shelf_unit,
    heldout=[{"shelves": 5, "wheels": "yes"}, {"shelves": 3, "posts": "round"}],
)


# ---- chest ----------------------------------------------------------------------------

def build_chest(rng, a):
    wood = _wood(rng, white=False)
    metal = _hardware(rng)
    hx, hd, bh = rng.uniform(0.4, 0.52), rng.uniform(0.24, 0.32), rng.uniform(0.19, 0.25)
    fh = rng.uniform(0.05, 0.08) if a["feet"] else 0.0
    top = fh + 2 * bh
    parts = [make("body", "box", (0, fh + bh, 0), (hx, bh, hd), wood)]
    o = rng.uniform(0.01, 0.025)
    lid_c = tint(rng, wood, 0.05)
    if a["lid"] == "curved":  # a half-round arch whose lower half sinks into the body
        rv = hd * rng.uniform(0.6, 0.9)
        parts.append(make("lid", "cylinder", (0, top, 0), (rv, hx + o, hd + o), lid_c, along((1, 0, 0))))
    else:
        lt = rng.uniform(0.03, 0.045)
        parts.append(make("lid", rng.choice(["box", "rounded_box"]), (0, top + lt * 0.7, 0), (hx + o, lt, hd + o), lid_c,
                          round=0.2))
    if a["feet"]:
        fr = rng.uniform(0.035, 0.05)
        fprim = rng.choice(["box", "cylinder"])
        x, z = hx - fr - 0.01, hd - fr - 0.01
        for sx, sz in ((-1, 1), (1, 1), (-1, -1), (1, -1)):
            parts.append(make("foot", fprim, (sx * x, (fh + 0.02) / 2, sz * z), (fr, (fh + 0.02) / 2, fr), tint(rng, wood, 0.04)))
    if a["handles"]:  # grips on both ends
        hy, hz = fh + bh * rng.uniform(1.2, 1.5), rng.uniform(0.07, 0.1)
        hprim = rng.choice(["box", "rounded_box"])
        for s in (-1, 1):
            parts.append(make("handle", hprim, (s * (hx + 0.02), hy, 0), (0.03, 0.03, hz), metal, round=0.3))
    return parts


def infer_chest(parts):
    g = group(parts)
    return {"lid": "curved" if is_round(g["lid"][0]) else "flat", "feet": len(g["foot"]), "handles": len(g["handle"])}


CHEST = Category(
    space={"lid": ["flat", "curved"], "feet": [0, 4], "handles": [0, 2]},
    build=build_chest, infer=infer_chest,
    heldout=[{"lid": "curved", "feet": 4}],
)


CATEGORIES = {"cabinet": CABINET, "wardrobe": WARDROBE, "desk": DESK, "shelf unit": SHELF_UNIT, "chest": CHEST}

# Caption tables, as in captions.py
NOUNS = {
    "cabinet": (["cabinet", "storage cabinet"], ["cupboard", "sideboard"]),
    "wardrobe": (["wardrobe", "closet"], ["armoire"]),
    "desk": (["desk", "office desk"], ["writing table", "bureau"]),
    "shelf unit": (["shelf unit", "storage rack"], ["utility shelving", "open rack"]),
    "chest": (["chest", "storage chest"], ["coffer", "blanket box"]),
}
ATTRIBUTE_NOUNS: dict = {}
PARAPHRASE_ATTRIBUTE_NOUNS = {
    ("cabinet", "doors", 2): "double-door cupboard", ("wardrobe", "doors", 2): "double-door closet",
    ("chest", "lid", "curved"): "dome-topped coffer", ("shelf unit", "wheels", "yes"): "rolling cart",
}
PHRASES = {
    "cabinet": {
        "doors": {
            1: (["one door", "a single door"], ["a lone hinged front"]),
            2: (["two doors", "2 doors"], ["a pair of doors"]),
        },
        "drawers": {
            0: (["no drawers", "0 drawers"], ["nothing to pull out"]),
            1: (["one drawer", "a single drawer"], ["a lone pull-out tray"]),
            2: (["two drawers", "2 drawers"], ["a pair of pull-out trays"]),
        },
        "base": {
            "legs": (["short legs", "four legs"], ["raised off the floor on stilts"]),
            "plinth": (["a plinth", "a solid base"], ["a skirting at floor level"]),
        },
    },
    "wardrobe": {
        "doors": {
            2: (["two doors", "2 doors"], ["a pair of doors"]),
            3: (["three doors", "3 doors"], ["a trio of doors"]),
            4: (["four doors", "4 doors"], ["a quartet of doors"]),
        },
        "drawers": {
            0: (["no drawers", "no drawers below"], ["nothing to pull out"]),
            1: (["one drawer", "a drawer below the doors"], ["a lone pull-out tray"]),
            2: (["two drawers", "2 drawers"], ["a pair of pull-out trays"]),
        },
    },
    "desk": {
        "drawers": {
            0: (["no drawers", "0 drawers"], ["nothing to pull out"]),
            2: (["two drawers", "2 drawers"], ["a pair of pull-out trays"]),
            3: (["three drawers", "3 drawers"], ["a trio of pull-out trays"]),
        },
        "sides": {
            "legs": (["legs", "slim legs"], ["slender supports"]),
            "panels": (["side panels", "panel sides"], ["slab ends"]),
        },
    },
    "shelf unit": {
        "shelves": {
            3: (["three shelves", "3 shelves"], ["three levels"]),
            4: (["four shelves", "4 shelves"], ["four levels"]),
            5: (["five shelves", "5 shelves"], ["five levels"]),
        },
        "posts": {
            "round": (["round posts", "tubular posts"], ["cylindrical uprights"]),
            "square": (["square posts", "square uprights"], ["four-sided uprights"]),
        },
        "wheels": {
            "yes": (["wheels", "casters"], ["rolling feet"]),
            "no": (["no wheels", "no casters"], ["nothing to roll on"]),
        },
    },
    "chest": {
        "lid": {
            "flat": (["a flat lid", "a flat top lid"], ["a level cover"]),
            "curved": (["a curved lid", "a domed lid", "a rounded lid"], ["an arched cover"]),
        },
        "feet": {
            0: (["no feet", "a flat bottom"], ["resting directly on the ground"]),
            4: (["four little feet", "4 feet"], ["raised on stubby supports"]),
        },
        "handles": {
            0: (["no handles", "no side handles"], ["nothing to carry it by"]),
            2: (["two handles", "2 side handles"], ["grips at both ends"]),
        },
    },
}

# Default looks, as in appearance.py and appearance_captions.py
PALETTE = {"drawer": (176, 128, 84), "knob": (200, 200, 206), "lid": (150, 100, 60)}
CATEGORY_PALETTE = {
    ("cabinet", "body"): (160, 112, 72), ("cabinet", "base"): (130, 90, 58),
    ("wardrobe", "body"): (150, 104, 66), ("wardrobe", "base"): (120, 84, 54), ("wardrobe", "handle"): (190, 190, 198),
    ("chest", "body"): (130, 86, 50), ("chest", "handle"): (70, 70, 76), ("chest", "foot"): (110, 74, 46),
    ("shelf unit", "post"): (170, 170, 178), ("shelf unit", "wheel"): (40, 40, 44),
}
LABEL_KINDS = {"drawer": "wood", "lid": "wood", "knob": "metal"}
CATEGORY_KINDS = {
    "cabinet": {"body": "wood", "base": "wood"},
    "wardrobe": {"body": "wood", "base": "wood", "handle": "metal"},
    "shelf unit": {"post": "metal"},
    "chest": {"body": "wood", "foot": "wood", "handle": "metal"},
}
PLURALS: dict = {}
