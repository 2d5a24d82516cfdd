"""More vehicles: truck, bicycle, boat, helicopter, train wagon (all point along +X)."""

import numpy as np

from ..shapes import COLORS, along, group, is_round, make, rot, stick, tint
from . import Category

X, Z = (1, 0, 0), (0, 0, 1)


def _rod(label, prim, p0, p1, r, color, **params):
    """A round part from point p0 to point p1, radius r."""
    return stick(label, p0, p1, r, color, prim, **params)


# ---- truck ----------------------------------------------------------------------------

def build_truck(rng, a):
    paint = tint(rng, [COLORS["red"], COLORS["blue"], COLORS["white"], COLORS["yellow"]][rng.integers(4)])
    L, hw = rng.uniform(1.0, 1.2), rng.uniform(0.38, 0.45)
    wr, ww = rng.uniform(0.16, 0.2), rng.uniform(0.06, 0.08)
    ct = wr + 0.08  # chassis top
    parts = [make("body", "box", (0, wr + 0.02, 0), (L, 0.06, hw - ww), COLORS["black"])]
    cl, ch = rng.uniform(0.28, 0.34), rng.uniform(0.3, 0.36)
    cx = L - cl
    # The windscreen comes before the cabin so that it owns the voxels where they overlap.
    parts.append(make("window", "box", (L, ct + ch * 1.35, 0), (0.05, ch * 0.45, hw * 0.8), tint(rng, COLORS["glass"], 0.03)))
    parts.append(make("cabin", "rounded_box", (cx, ct + ch - 0.02, 0), (cl, ch, hw), paint, round=0.15))
    x1, x0 = cx - cl - rng.uniform(0.04, 0.08), -L  # cargo spans x0..x1, behind the cabin
    load = tint(rng, [COLORS["white"], COLORS["metal"], COLORS["grey"]][rng.integers(3)])
    if a["cargo"] == "tank":
        r = hw * rng.uniform(0.8, 0.95)
        half = (x1 - x0) / 2
        parts.append(make("cargo", "capsule", ((x0 + x1) / 2, ct + r - 0.03, 0), (r, half, r), load, along(X), cap=r / half))
    else:
        h = ch * rng.uniform(1.05, 1.25)
        parts.append(make("cargo", "box", ((x0 + x1) / 2, ct + h - 0.02, 0), ((x1 - x0) / 2, h, hw), load))
    xs = [cx] + [-L + wr * 1.3 + k * wr * 2.4 for k in range(a["wheels"] // 2 - 1)]
    for x in xs:
        for s in (-1, 1):
            parts.append(make("wheel", "cylinder", (x, wr, s * (hw - ww)), (wr, ww, wr), COLORS["black"], along(Z)))
    return parts


def infer_truck(parts):
    g = group(parts)
    return {"wheels": len(g["wheel"]), "cargo": "tank" if is_round(g["cargo"][0]) else "box"}


TRUCK = Category(
    space={"wheels": [4, 6, 8], "cargo": ["box", "tank"]},
    build=build_truck, infer=infer_truck,
    heldout=[{"wheels": 4, "cargo": "tank"}],
)


# ---- bicycle --------------------------------------------------------------------------

def build_bicycle(rng, a):
    paint = tint(rng, [COLORS["red"], COLORS["blue"], COLORS["green"], COLORS["black"], COLORS["orange"]][rng.integers(5)])
    R, wb = rng.uniform(0.31, 0.35), rng.uniform(1.0, 1.1)
    rear, front = np.array([-wb / 2, R, 0]), np.array([wb / 2, R, 0])
    t = rng.uniform(0.035, 0.04)  # tyre tube radius
    parts = [make("wheel", "torus", c, (R, t, R), COLORS["black"], rot("x", np.pi / 2), tube=t / R) for c in (rear, front)]
    rt = rng.uniform(0.032, 0.036)  # frame tube radius
    bb = rear + (rng.uniform(0.4, 0.45), -0.03, 0)  # bottom bracket
    seat_top = bb + (-rng.uniform(0.12, 0.16), rng.uniform(0.5, 0.56), 0)
    head = front + (-rng.uniform(0.18, 0.22), rng.uniform(0.58, 0.64), 0)  # top of the fork
    on_fork = lambda f: front + f * (head - front)  # noqa: E731
    up = (head - front) / np.linalg.norm(head - front)
    parts += [_rod("frame", "cylinder", front, head + up * 0.06, rt, paint),  # fork and stem
              _rod("frame", "cylinder", on_fork(0.62), bb, rt, paint),  # down tube
              _rod("frame", "cylinder", on_fork(0.88), seat_top, rt, paint),  # top tube
              _rod("frame", "cylinder", bb, seat_top + (0, 0.05, 0), rt, paint),  # seat tube and post
              _rod("frame", "cylinder", bb, rear, rt, paint),  # chain stay
              _rod("frame", "cylinder", seat_top, rear, rt, paint)]  # seat stay
    parts.append(make("seat", "rounded_box", seat_top + (0, 0.07, 0), (0.12, 0.035, 0.06), COLORS["black"], round=0.4))
    bar = head + up * 0.06
    parts.append(make("handlebar", "cylinder", bar, (0.032, rng.uniform(0.2, 0.24), 0.032), COLORS["black"], along(Z)))
    parts.append(make("pedal", "cylinder", bb, (0.07, 0.12, 0.07), COLORS["grey"], along(Z)))
    if a["basket"] == "yes":
        bw = rng.uniform(0.12, 0.15)
        c = head + (bw - 0.02, -0.08, 0)
        parts.append(make("basket", rng.choice(["box", "cup"]), c, (bw, rng.uniform(0.09, 0.11), 0.15),
                          tint(rng, COLORS["light_wood"]), inner=0.75, bottom=0.25))
    if a["wheels"] == 4:  # training wheels on struts from the rear axle
        r, z = rng.uniform(0.1, 0.12), rng.uniform(0.24, 0.28)
        for s in (-1, 1):
            hub = rear + (-0.08, r - R, s * z)
            parts.append(make("wheel", "cylinder", hub + (0, 0, s * 0.01), (r, 0.04, r), COLORS["black"], along(Z)))
            parts.append(_rod("support", "cylinder", rear, hub, 0.032, COLORS["metal"]))
    return parts


def infer_bicycle(parts):
    g = group(parts)
    return {"wheels": len(g["wheel"]), "basket": "yes" if g["basket"] else "no"}


BICYCLE = Category(
    space={"wheels": [2, 4], "basket": ["yes", "no"]},
    build=build_bicycle, infer=infer_bicycle,
    heldout=[{"wheels": 4, "basket": "yes"}],
)


# ---- boat -----------------------------------------------------------------------------

def build_boat(rng, a):
    L, W, depth = rng.uniform(0.8, 1.0), rng.uniform(0.24, 0.3), rng.uniform(0.24, 0.3)
    paint = tint(rng, [COLORS["white"], COLORS["wood"], COLORS["blue"], COLORS["red"]][rng.integers(4)])
    # An upside-down half ellipsoid: flat deck on top, round keel below.
    parts = [make("hull", "dome", (0, depth / 2, 0), (L, depth / 2, W), paint, rot("z", np.pi))]
    deck = depth
    if a["cabin"] == "yes":
        cl, ch = L * rng.uniform(0.2, 0.25), rng.uniform(0.1, 0.13)
        cx = -L * rng.uniform(0.3, 0.4)
        parts.append(make("cabin", "rounded_box", (cx, deck + ch - 0.02, 0), (cl, ch, W * 0.6), tint(rng, COLORS["cream"]),
                          round=0.2))
    n = a["masts"]
    xs = {0: [], 1: [L * rng.uniform(0.15, 0.25)], 2: [L * rng.uniform(0.4, 0.45), -L * rng.uniform(0.15, 0.2)]}[n]
    c = L * (rng.uniform(0.3, 0.34) if n == 1 else rng.uniform(0.22, 0.25))  # half chord of a sail
    wood = tint(rng, COLORS["dark_wood"])
    cloth = tint(rng, [COLORS["white"], COLORS["cream"], COLORS["red"]][rng.integers(3)], 0.03)
    for i, x in enumerate(xs):
        h = rng.uniform(0.95, 1.1) * (1.0 if i == 0 else 0.85)
        parts.append(make("mast", "cylinder", (x, deck + h / 2 - 0.04, 0), (0.036, h / 2, 0.036), wood))
        y0 = deck + 0.3  # the boom clears the cabin
        sh = (h - 0.34) / 2  # half height of the sail
        # A triangular sail aft of the mast, in the XY plane (the wedge's local Z along X).
        parts.append(make("sail", "wedge", (x - c * 0.8, y0 + sh, 0), (0.035, sh, c), cloth, rot("y", np.pi / 2)))
    if n == 0:  # an outboard motor at the stern
        parts.append(make("engine", "box", (-L * 0.95, deck + 0.03, 0), (0.07, 0.13, 0.05), COLORS["black"]))
    return parts


def infer_boat(parts):
    g = group(parts)
    return {"masts": len(g["mast"]), "cabin": "yes" if g["cabin"] else "no"}


BOAT = Category(
    space={"masts": [0, 1, 2], "cabin": ["yes", "no"]},
    build=build_boat, infer=infer_boat,
    heldout=[{"masts": 2, "cabin": "yes"}],
)


# ---- helicopter -----------------------------------------------------------------------

def build_helicopter(rng, a):
    paint = tint(rng, [COLORS["red"], COLORS["yellow"], COLORS["dark_green"], COLORS["blue"]][rng.integers(4)])
    bl, bh, bw = rng.uniform(0.45, 0.55), rng.uniform(0.25, 0.3), rng.uniform(0.22, 0.26)
    skids = a["gear"] == "skids"
    wr = rng.uniform(0.11, 0.12)
    yb = bh + 0.25 if skids else 0.72 * bh + 2 * wr - 0.06
    window = make("window", "sphere", (bl * 0.5, yb + bh * 0.15, 0), (bl * 0.55, bh * 0.75, bw * 0.85),
                  tint(rng, COLORS["glass"], 0.03))
    parts = [window, make("body", "sphere", (0, yb, 0), (bl, bh, bw), paint)]
    tl = rng.uniform(0.8, 0.95)
    parts.append(_rod("tail", "cone", (-bl * 0.6, yb + bh * 0.2, 0), (-bl * 0.6 - tl, yb + bh * 0.45, 0), 0.07, paint,
                      top=0.55))
    parts.append(make("fin", "box", (-bl * 0.6 - tl + 0.06, yb + bh * 0.45 + 0.1, 0), (0.09, 0.15, 0.042), paint,
                      rot("z", 0.3)))
    rh = rng.uniform(0.085, 0.095)  # the hub is wider than a blade, so blades meet only inside it
    top = yb + bh + 0.1
    parts.append(make("mast", "cylinder", (0, (yb + bh * 0.8 + top + 0.04) / 2, 0), (rh, (top + 0.04 - yb - bh * 0.8) / 2, rh),
                      COLORS["grey"]))
    span, phase = rng.uniform(0.8, 0.9), rng.uniform(0, np.pi)
    for k in range(a["blades"]):
        q = phase + 2 * np.pi * k / a["blades"]
        d = np.array([np.cos(q), 0, np.sin(q)])
        parts.append(make("rotor", "box", d * (rh * 0.8 + span / 2) + (0, top, 0), (span / 2, 0.042, 0.055),
                          COLORS["black"], rot("y", -q)))
    if skids:
        for s in (-1, 1):
            z = s * (bw + 0.04)
            parts.append(make("skid", "capsule", (0, 0.042, z), (0.042, bl * 1.05, 0.042), COLORS["grey"], along(X), cap=0.06))
            for x in (bl * 0.45, -bl * 0.45):  # struts from the skid up into the body
                parts.append(_rod("support", "cylinder", (x, 0.04, z), (x, yb - 0.6 * bh, s * bw * 0.45), 0.042, COLORS["grey"]))
    else:
        for x, z in ((bl * 0.6, 0), (-bl * 0.2, bw * 0.6), (-bl * 0.2, -bw * 0.6)):
            parts.append(make("wheel", "cylinder", (x, wr, z), (wr, 0.055, wr), COLORS["black"], along(Z)))
    return parts


def infer_helicopter(parts):
    g = group(parts)
    return {"blades": len(g["rotor"]), "gear": "skids" if len(g["skid"]) >= len(g["wheel"]) else "wheels"}


HELICOPTER = Category(
    space={"blades": [2, 3, 4], "gear": ["skids", "wheels"]},
    build=build_helicopter, infer=infer_helicopter,
    heldout=[{"blades": 2, "gear": "wheels"}],
)


# ---- train wagon ----------------------------------------------------------------------

def build_train_wagon(rng, a):
    paint = tint(rng, [COLORS["red"], COLORS["green"], COLORS["blue"], COLORS["brown"]][rng.integers(4)])
    L, W, hb = rng.uniform(0.9, 1.1), rng.uniform(0.3, 0.36), rng.uniform(0.24, 0.3)
    wr, ww = rng.uniform(0.1, 0.12), rng.uniform(0.04, 0.05)
    base_y = wr + 0.06
    parts = [make("base", "box", (0, base_y, 0), (L * 0.95, 0.05, W * 0.8), COLORS["black"])]
    by = base_y + 0.02 + hb
    n, pitch = a["windows"], 2 * L / a["windows"]
    wh = hb * rng.uniform(0.3, 0.38)
    glass = tint(rng, COLORS["glass"], 0.03)
    # Each window is one box through the body, showing on both sides; windows come before the
    # body so that they own the voxels they share with it.
    for i in range(n):
        x = -L + (i + 0.5) * pitch
        parts.append(make("window", "box", (x, by + hb * 0.25, 0), (pitch * rng.uniform(0.28, 0.32), wh, W + 0.035), glass))
    parts.append(make("body", "box", (0, by, 0), (L, hb, W), paint))
    top = by + hb
    roof_c = tint(rng, [COLORS["grey"], COLORS["black"], COLORS["white"]][rng.integers(3)])
    if a["roof"] == "round":
        # Half an elliptic cylinder shows above the body (along(X) puts local X on world -Y).
        parts.append(make("roof", "cylinder", (0, top - 0.02, 0), (W * rng.uniform(0.5, 0.6), L + 0.02, W * 1.02), roof_c,
                          along(X)))
    else:
        parts.append(make("roof", "box", (0, top + 0.02, 0), (L + 0.03, 0.045, W + 0.03), roof_c))
    if a["wheels"] == 4:
        xs = [L * 0.65, -L * 0.65]
    else:  # two bogies of two axles
        xs = [b * L * 0.7 + s * (wr + 0.04) for b in (1, -1) for s in (1, -1)]
    for x in xs:
        for s in (-1, 1):
            parts.append(make("wheel", "cylinder", (x, wr, s * W * 0.7), (wr, ww, wr), COLORS["metal"], along(Z)))
    return parts


def infer_train_wagon(parts):
    g = group(parts)
    return {"windows": len(g["window"]), "wheels": len(g["wheel"]), "roof": "round" if is_round(g["roof"][0]) else "flat"}


TRAIN_WAGON = Category(
    space={"windows": [3, 4, 5], "wheels": [4, 8], "roof": ["flat", "round"]},
    build=build_train_wagon, infer=infer_train_wagon,
    heldout=[{"windows": 5, "wheels": 4}, {"roof": "round", "wheels": 8}],
)


CATEGORIES = {"truck": TRUCK, "bicycle": BICYCLE, "boat": BOAT, "helicopter": HELICOPTER, "train wagon": TRAIN_WAGON}

# Caption tables, as in captions.py
NOUNS = {
    "truck": (["truck", "lorry"], ["big rig", "freight hauler"]),
    "bicycle": (["bicycle", "bike"], ["pedal bike", "push bike"]),
    "boat": (["boat"], ["vessel", "small ship"]),
    "helicopter": (["helicopter"], ["chopper", "rotorcraft"]),
    "train wagon": (["train wagon", "railway wagon"], ["railcar", "rail carriage"]),
}
ATTRIBUTE_NOUNS = {("truck", "cargo", "tank"): "tanker truck", ("truck", "cargo", "box"): "box truck",
                   ("boat", "masts", 0): "motorboat", ("boat", "masts", 1): "sailboat", ("boat", "masts", 2): "sailboat"}
PARAPHRASE_ATTRIBUTE_NOUNS = {
    ("truck", "cargo", "tank"): "fuel tanker", ("truck", "cargo", "box"): "delivery lorry",
    ("bicycle", "wheels", 2): "two-wheeler", ("boat", "masts", 0): "speedboat", ("boat", "masts", 1): "sloop",
    ("boat", "masts", 2): "schooner",
}
PHRASES = {
    "truck": {
        "wheels": {
            4: (["four wheels", "4 wheels"], ["two axles"]),
            6: (["six wheels", "6 wheels"], ["three axles"]),
            8: (["eight wheels", "8 wheels"], ["four axles"]),
        },
        "cargo": {
            "box": (["a box body", "a cargo box"], ["an enclosed container"]),
            "tank": (["a tank", "a cylindrical tank"], ["a round vessel for liquids"]),
        },
    },
    "bicycle": {
        "wheels": {
            2: (["two wheels", "2 wheels"], ["a pair of tyres"]),
            4: (["training wheels", "small training wheels"], ["stabilisers"]),
        },
        "basket": {
            "yes": (["a basket", "a front basket"], ["a carrier up front"]),
            "no": (["no basket", "no front basket"], ["nothing on the handlebars"]),
        },
    },
    "boat": {
        "masts": {
            0: (["no mast", "no sails"], ["powered by a motor only"]),
            1: (["one mast", "a single mast"], ["a solitary mast"]),
            2: (["two masts", "2 masts"], ["two sails"]),
        },
        "cabin": {
            "yes": (["a cabin", "a deckhouse"], ["a wheelhouse"]),
            "no": (["no cabin", "an open deck"], ["nothing on deck"]),
        },
    },
    "helicopter": {
        "blades": {
            2: (["two rotor blades", "2 blades"], ["a twin-blade rotor"]),
            3: (["three rotor blades", "3 blades"], ["a three-blade rotor"]),
            4: (["four rotor blades", "4 blades"], ["a four-blade rotor"]),
        },
        "gear": {
            "skids": (["landing skids", "skids"], ["runners underneath"]),
            "wheels": (["wheels", "landing wheels"], ["a tricycle undercarriage"]),
        },
    },
    "train wagon": {
        "windows": {
            3: (["three windows", "3 windows"], ["three panes per side"]),
            4: (["four windows", "4 windows"], ["four panes per side"]),
            5: (["five windows", "5 windows"], ["five panes per side"]),
        },
        "wheels": {
            4: (["four wheels", "4 wheels"], ["two axles"]),
            8: (["eight wheels", "two bogies"], ["four axles"]),
        },
        "roof": {
            "flat": (["a flat roof", "a level roof"], ["a horizontal rooftop"]),
            "round": (["a round roof", "a curved roof"], ["an arched top"]),
        },
    },
}

# Default looks, as in appearance.py and appearance_captions.py
PALETTE = {"hull": (236, 236, 240), "mast": (120, 86, 56), "sail": (246, 242, 228), "rotor": (54, 54, 60),
           "skid": (80, 80, 88), "pedal": (70, 70, 76), "handlebar": (50, 50, 56), "cargo": (210, 210, 214),
           "basket": (196, 156, 100)}
CATEGORY_PALETTE = {
    ("truck", "body"): (50, 50, 56), ("truck", "cabin"): (196, 40, 36),
    ("bicycle", "frame"): (36, 100, 180), ("bicycle", "seat"): (40, 40, 44), ("bicycle", "support"): (170, 170, 178),
    ("boat", "cabin"): (240, 232, 210),
    ("helicopter", "body"): (220, 180, 40), ("helicopter", "tail"): (220, 180, 40), ("helicopter", "fin"): (220, 180, 40),
    ("helicopter", "mast"): (90, 90, 98), ("helicopter", "support"): (80, 80, 88),
    ("train wagon", "body"): (40, 110, 64), ("train wagon", "roof"): (96, 96, 102), ("train wagon", "base"): (50, 50, 54),
    ("train wagon", "wheel"): (120, 120, 128),
}
LABEL_KINDS = {"hull": "wood", "mast": "wood", "sail": "fabric", "rotor": "metal", "skid": "metal", "pedal": "metal",
               "handlebar": "metal", "cargo": "metal"}
CATEGORY_KINDS = {
    "truck": {"body": "metal", "cabin": "metal"},
    "bicycle": {"frame": "metal", "seat": "plastic", "support": "metal", "basket": None},
    "boat": {"hull": None, "cabin": "wood"},
    "helicopter": {"body": "metal", "tail": "metal", "fin": "metal", "mast": "metal", "support": "metal"},
    "train wagon": {"body": "metal", "roof": "metal", "wheel": "metal"},
}
PLURALS: dict = {}
