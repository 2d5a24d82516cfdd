"""Furniture: chair, table, stool, bench, sofa, bed, bookshelf (metres, Y up, front +Z)."""

import numpy as np

from ..shapes import COLORS, along, extent, group, is_round, make, rot, tint
from . import Category


def _legs_at(rng, xz, top, color, thick, prim=None):
    """Vertical legs from the floor up to `top` at the given (x, z) positions."""
    prim = prim or rng.choice(["box", "cylinder"])
    return [make("leg", prim, (x, top / 2, z), (thick, top / 2, thick), color) for x, z in xz]


# ---- chair ----------------------------------------------------------------------------

def _chair_back(rng, kind, w, seat_y, z0, height, color):
    """Back parts in a frame tilted back about the seat's rear edge."""
    tilt = rng.uniform(0.0, 0.15)
    frame = rot("x", -tilt)  # local +Y leans towards -Z
    origin = np.array([0.0, seat_y, z0])
    th = rng.uniform(0.02, 0.03)

    def board(label, prim, u, v0, v1, hu, depth=th, **kw):
        center = origin + frame @ np.array([u, (v0 + v1) / 2, 0])
        return make(label, prim, center, (hu, (v1 - v0) / 2, depth), color, frame, **kw)

    if kind == "solid":
        return [board("back", rng.choice(["box", "rounded_box"]), 0, 0, height, w * rng.uniform(0.42, 0.5), round=0.15)]
    post = rng.uniform(0.018, 0.025)
    side = w / 2 - post
    parts = [board("post", "box", -side, 0, height, post), board("post", "box", side, 0, height, post)]
    if kind == "slatted":  # vertical slats under a top rail
        rail_h = rng.uniform(0.04, 0.07)
        parts.append(board("back", "box", 0, height - 2 * rail_h, height, side + post))
        n = int(rng.integers(3, 5))
        for u in np.linspace(-side, side, n + 2)[1:-1]:
            parts.append(board("slat", "box", u, 0, height - rail_h, rng.uniform(0.014, 0.02), th * 0.8))
    else:  # "gaps": horizontal rails with open gaps between them and above the seat
        n = 2 if height < 0.45 else 3
        v = np.linspace(0.3 * height, height, 2 * n)  # alternating rail / gap bands
        for i in range(n):
            parts.append(board("rail", "box", 0, v[2 * i], v[2 * i + 1] + (0.01 if i == n - 1 else 0), side + post))
    return parts


def build_chair(rng, a):
    wood = tint(rng, COLORS["wood"] if rng.random() < 0.7 else COLORS["black"])
    cloth = tint(rng, [COLORS["fabric"], COLORS["red_fabric"], COLORS["light_wood"]][rng.integers(3)])
    w, d, t = rng.uniform(0.42, 0.52), rng.uniform(0.4, 0.5), rng.uniform(0.04, 0.07)
    seat_top = rng.uniform(0.42, 0.5)
    sy = seat_top - t / 2
    parts = [make("seat", rng.choice(["box", "rounded_box"]), (0, sy, 0), (w / 2, t / 2, d / 2), cloth, round=0.2)]
    ratio = rng.uniform(1.15, 1.45) if a["height"] == "tall" else rng.uniform(0.55, 0.75)
    back_z = -d / 2 + 0.025
    parts += _chair_back(rng, a["back"], w, sy, back_z, ratio * w + t / 2, wood)
    if a["arms"] != "none":
        ah = seat_top + rng.uniform(0.18, 0.24)
        r = rng.uniform(0.025, 0.035)
        x, z0, z1 = w / 2 - r, back_z, d / 2 - 0.01
        front = z1 - 0.04
        round_ = a["arms"] == "round"  # capsule rests on cylinders, or box rests on box posts
        hl = (z1 - z0) / 2
        for sx in (-x, x):
            if round_:
                parts.append(make("arm", "capsule", (sx, ah, z0 + hl), (r, hl, r), wood, along((0, 0, 1)), cap=r / hl))
            else:
                parts.append(make("arm", "box", (sx, ah, z0 + hl), (r, r, hl), wood))
        for sx in (-x, x):
            post = (r * 0.7, (ah - sy) / 2, r * 0.7)
            parts.append(make("support", "cylinder" if round_ else "box", (sx, (sy + ah) / 2, front), post, wood))
    if a["legs"] == "wheels":  # gas-lift column on a five-spoke star base with casters
        metal = tint(rng, COLORS["black"] if rng.random() < 0.6 else COLORS["metal"])
        rw, spoke = rng.uniform(0.03, 0.04), rng.uniform(0.27, 0.32)
        yb = 2 * rw
        parts.append(make("pedestal", "cylinder", (0, (yb + sy) / 2, 0), (0.035, (sy - yb) / 2 + 0.02, 0.035), metal))
        angles = rng.uniform(0, 2 * np.pi / 5) + 2 * np.pi * np.arange(5) / 5
        dirs = [np.array([np.cos(q), 0, np.sin(q)]) for q in angles]
        for q, dirn in zip(angles, dirs):
            parts.append(make("leg", "box", dirn * spoke / 2 + (0, yb, 0), (spoke / 2, 0.022, 0.025), metal, rot("y", -q)))
        for q, dirn in zip(angles, dirs):
            frame = rot("y", -q) @ along((1, 0, 0))  # axle across the spoke
            center = dirn * (spoke - rw) + (0, rw, 0)
            parts.append(make("wheel", "cylinder", center, (rw, 0.015, rw), COLORS["black"], frame))
        return parts
    lt = rng.uniform(0.018, 0.03)
    x, z = w / 2 - lt - rng.uniform(0, 0.03), d / 2 - lt - rng.uniform(0, 0.03)
    xz = [(-x, z), (x, z), (-x, -z), (x, -z)] if a["legs"] == 4 else [(-x, z), (x, z), (0, -z)]
    return parts + _legs_at(rng, xz, sy, wood, lt)


def infer_chair(parts):
    g = group(parts)
    seat = g["seat"][0]
    back_top = extent([p for p in parts if p.label in ("back", "post", "slat", "rail")])[1][1]
    ratio = (back_top - seat.bounds()[1][1]) / (2 * seat.half_extents[0])
    return {
        "legs": "wheels" if "wheel" in g else len(g["leg"]),
        "arms": "none" if "arm" not in g else ("round" if is_round(g["arm"][0]) else "square"),
        "back": "slatted" if "slat" in g else ("gaps" if "rail" in g else "solid"),
        "height": "tall" if ratio > 0.95 else "short",
    }


CHAIR = Category(
    space={"legs": [3, 4, "wheels"], "arms": ["none", "square", "round"], "back": ["solid", "slatted", "gaps"],
           "height": ["tall", "short"]},
    build=build_chair, infer=infer_chair,
    heldout=[{"legs": "wheels", "arms": "round"}, {"legs": 3, "back": "gaps"}],
)


# ---- table ----------------------------------------------------------------------------

def build_table(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"]][rng.integers(3)])
    h, t = rng.uniform(0.68, 0.78), rng.uniform(0.03, 0.05)
    ty = h - t / 2
    if a["top"] == "round":
        r = rng.uniform(0.4, 0.65)
        hx = hz = r
        parts = [make("top", "cylinder", (0, ty, 0), (r, t / 2, r), wood)]
    else:
        hx = rng.uniform(0.4, 0.8)
        hz = hx * rng.uniform(0.55, 1.0)
        parts = [make("top", rng.choice(["box", "rounded_box"]), (0, ty, 0), (hx, t / 2, hz), wood, round=0.1)]
    if a["legs"] == 1:  # central pedestal on a flat foot
        pr = rng.uniform(0.04, 0.07)
        br = min(hx, hz) * rng.uniform(0.45, 0.6)
        bh = rng.uniform(0.025, 0.05)
        parts.append(make("pedestal", "cylinder", (0, ty / 2, 0), (pr, ty / 2, pr), wood))
        parts.append(make("base", rng.choice(["cylinder", "cone"]), (0, bh, 0), (br, bh, br), wood, top=0.4))
        return parts
    lt = rng.uniform(0.02, 0.035)
    if a["legs"] == 4 and a["top"] == "square":
        x, z = hx - lt - rng.uniform(0.02, 0.08), hz - lt - rng.uniform(0.02, 0.08)
        xz = [(-x, z), (x, z), (-x, -z), (x, -z)]
    else:
        rr = min(hx, hz) * rng.uniform(0.6, 0.75)
        ang = (np.arange(a["legs"]) + 0.5) * 2 * np.pi / a["legs"] + np.pi / 2
        xz = [(rr * np.cos(q), rr * np.sin(q)) for q in ang]
    return parts + _legs_at(rng, xz, ty, wood, lt)


def infer_table(parts):
    g = group(parts)
    return {"top": "round" if is_round(g["top"][0]) else "square", "legs": 1 if "pedestal" in g else len(g["leg"])}


TABLE = Category(
    space={"top": ["round", "square"], "legs": [1, 3, 4]},
    build=build_table, infer=infer_table,
    heldout=[{"top": "round", "legs": 4}, {"top": "square", "legs": 1}],
)


# ---- stool ----------------------------------------------------------------------------

def build_stool(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["light_wood"], COLORS["metal"]][rng.integers(3)])
    seat_c = tint(rng, [COLORS["wood"], COLORS["black"], COLORS["red_fabric"]][rng.integers(3)])
    hw, t = rng.uniform(0.15, 0.2), rng.uniform(0.04, 0.06)
    h = 2 * hw * (rng.uniform(2.0, 2.6) if a["height"] == "tall" else rng.uniform(1.0, 1.4))
    sy = h - t / 2
    prim = "cylinder" if a["seat"] == "round" else rng.choice(["box", "rounded_box"])
    parts = [make("seat", prim, (0, sy, 0), (hw, t / 2, hw), seat_c, round=0.2)]
    lt = rng.uniform(0.018, 0.028)
    splay = rng.uniform(1.0, 1.25)  # feet further out than the tops
    n = a["legs"]
    ang = np.arange(n) * 2 * np.pi / n + (np.pi / 4 if n == 4 else np.pi / 2)
    r_top = hw * (0.62 if a["seat"] == "square" else 0.68)
    for q in ang:
        d = np.array([np.cos(q), 0, np.sin(q)])
        top, foot = d * r_top + (0, sy, 0), d * r_top * splay
        axis = top - foot
        parts.append(make("leg", "cylinder", (top + foot) / 2, (lt, np.linalg.norm(axis) / 2, lt), wood, along(axis)))
    if a["height"] == "tall":  # footrest ring where the legs pass through it
        y = sy * rng.uniform(0.3, 0.4)
        ring_r = r_top * (splay + (1 - splay) * y / sy)
        outer = ring_r + lt
        parts.append(make("rail", "torus", (0, y, 0), (outer, lt, outer), wood, tube=lt / outer))
    return parts


def infer_stool(parts):
    g = group(parts)
    seat = g["seat"][0]
    ratio = (seat.bounds()[1][1] - extent(parts)[0][1]) / (2 * seat.half_extents[0])
    return {"legs": len(g["leg"]), "seat": "round" if is_round(seat) else "square",
            "height": "tall" if ratio > 1.7 else "short"}


STOOL = Category(
    space={"legs": [3, 4], "seat": ["round", "square"], "height": ["tall", "short"]},
    build=build_stool, infer=infer_stool,
    heldout=[{"legs": 3, "seat": "square"}],
)


# ---- bench ----------------------------------------------------------------------------

def build_bench(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"]][rng.integers(3)])
    hl, hd, t = rng.uniform(0.55, 0.8), rng.uniform(0.17, 0.23), rng.uniform(0.04, 0.06)
    sy = rng.uniform(0.42, 0.48) - t / 2
    parts = [make("seat", "box", (0, sy, 0), (hl, t / 2, hd), wood)]
    if a["back"] == "backrest":
        bh = rng.uniform(0.3, 0.4)
        board = rng.uniform(0.08, 0.12)
        z = -hd + 0.02
        for x in (-hl + 0.04, hl - 0.04):
            parts.append(make("post", "box", (x, sy + bh / 2, z), (0.025, bh / 2, 0.02), wood))
        parts.append(make("back", "box", (0, sy + bh - board, z), (hl, board, 0.02), wood))
    lt = rng.uniform(0.025, 0.035)
    xs = np.linspace(-hl + lt + 0.05, hl - lt - 0.05, a["legs"] // 2)
    z = hd - lt - 0.02
    return parts + _legs_at(rng, [(x, s * z) for x in xs for s in (1, -1)], sy, wood, lt)


def infer_bench(parts):
    g = group(parts)
    return {"back": "backrest" if "back" in g else "none", "legs": len(g["leg"])}


BENCH = Category(
    space={"back": ["none", "backrest"], "legs": [4, 6]},
    build=build_bench, infer=infer_bench,
    heldout=[{"back": "backrest", "legs": 6}],
)


# ---- sofa -----------------------------------------------------------------------------

def build_sofa(rng, a):
    cloth = tint(rng, [COLORS["fabric"], COLORS["red_fabric"], COLORS["grey"], COLORS["cream"]][rng.integers(4)])
    n = a["seats"]
    arm_w = rng.uniform(0.08, 0.12)
    cw = rng.uniform(0.26, 0.32)  # half width of one seat cushion
    hl = n * cw + 2 * arm_w
    hd = rng.uniform(0.4, 0.5)
    feet = rng.uniform(0.05, 0.1)
    base_h = rng.uniform(0.14, 0.2)
    by = feet + base_h
    parts = [make("base", "box", (0, by, 0), (hl, base_h, hd), cloth)]
    back_t = rng.uniform(0.09, 0.13)
    back_h = rng.uniform(0.3, 0.4)
    back = (hl, back_h + base_h * 0.5, back_t)
    parts.append(make("back", "rounded_box", (0, by + back_h, -hd + back_t), back, cloth, round=0.3))
    top = by + base_h
    for s in (-1, 1):
        x = s * (hl - arm_w)
        if a["arms"] == "round":  # rolled arm along the depth
            r = arm_w * 1.1
            roll = (x, top + rng.uniform(0.1, 0.15), 0.02)
            parts.append(make("arm", "capsule", roll, (r, hd - 0.02, r), cloth, along((0, 0, 1)), cap=r / (hd - 0.02)))
            parts.append(make("support", "box", (x, top, 0.02), (arm_w, base_h * 0.5 + 0.06, hd - 0.02), cloth))
        else:
            ah = rng.uniform(0.14, 0.2)
            parts.append(make("arm", "box", (x, by + ah / 2, 0.0), (arm_w, base_h + ah / 2, hd), cloth))
    ch = rng.uniform(0.06, 0.09)
    inner = hl - 2 * arm_w
    z0 = -hd + 2 * back_t
    for i in range(n):
        x = -inner + (2 * i + 1) * inner / n
        half = (inner / n - 0.008, ch, (hd - z0) / 2)  # small seams between cushions
        parts.append(make("cushion", "rounded_box", (x, top + ch * 0.8, (z0 + hd) / 2), half, tint(rng, cloth, 0.03), round=0.4))
    wood = COLORS["dark_wood"]
    xz = [(-hl + 0.06, hd - 0.06), (hl - 0.06, hd - 0.06), (-hl + 0.06, -hd + 0.06), (hl - 0.06, -hd + 0.06)]
    return parts + _legs_at(rng, xz, feet + 0.03, wood, 0.03, "cylinder")


def infer_sofa(parts):
    g = group(parts)
    return {"seats": len(g["cushion"]), "arms": "round" if is_round(g["arm"][0]) else "square"}


SOFA = Category(
    space={"seats": [2, 3], "arms": ["square", "round"]},
    build=build_sofa, infer=infer_sofa,
    heldout=[{"seats": 3, "arms": "round"}],
)


# ---- bed ------------------------------------------------------------------------------

def build_bed(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["dark_wood"], COLORS["light_wood"]][rng.integers(3)])
    hz = rng.uniform(0.95, 1.05)
    hx = hz * (rng.uniform(0.45, 0.52) if a["size"] == "single" else rng.uniform(0.75, 0.9))
    feet, fh = rng.uniform(0.08, 0.15), rng.uniform(0.08, 0.12)
    fy = feet + fh
    parts = [make("frame", "box", (0, fy, 0), (hx, fh, hz), wood)]
    mh = rng.uniform(0.09, 0.13)
    my = fy + fh + mh * 0.9
    sheet = tint(rng, COLORS["white"], 0.04)
    parts.append(make("mattress", "rounded_box", (0, my, 0.01), (hx - 0.02, mh, hz - 0.04), sheet, round=0.3))
    hb = rng.uniform(0.45, 0.7)
    board = rng.choice(["box", "rounded_box"])
    parts.append(make("headboard", board, (0, hb, -hz - 0.02), (hx + 0.02, hb, 0.035), wood, round=0.1))
    if a["footboard"] == "yes":
        fb = rng.uniform(0.3, 0.4)
        parts.append(make("footboard", "box", (0, fb, hz + 0.02), (hx + 0.02, fb, 0.03), wood))
    n = 1 if a["size"] == "single" else 2
    slot = (hx - 0.04) / n  # half width of each pillow's slot across the bed
    pillow = tint(rng, COLORS["cream"], 0.04)
    for i in range(n):
        center = (-hx + 0.04 + (2 * i + 1) * slot, my + mh + 0.04, -hz + 0.22)
        parts.append(make("pillow", "rounded_box", center, (slot - 0.04, 0.06, 0.14), pillow, round=0.6))
    xz = [(-hx + 0.05, hz - 0.05), (hx - 0.05, hz - 0.05), (-hx + 0.05, -hz + 0.05), (hx - 0.05, -hz + 0.05)]
    return parts + _legs_at(rng, xz, feet + 0.04, wood, 0.035, "box")


def infer_bed(parts):
    g = group(parts)
    f = g["frame"][0].half_extents
    return {"size": "single" if f[0] / f[2] < 0.63 else "double", "footboard": "yes" if "footboard" in g else "no"}


BED = Category(
    space={"size": ["single", "double"], "footboard": ["yes", "no"]},
    build=build_bed, infer=infer_bed,
    heldout=[{"size": "single", "footboard": "yes"}],
)


# ---- bookshelf ------------------------------------------------------------------------

def build_bookshelf(rng, a):
    wood = tint(rng, [COLORS["wood"], COLORS["light_wood"], COLORS["dark_wood"], COLORS["white"]][rng.integers(4)])
    n = a["shelves"]
    gap = rng.uniform(0.26, 0.34)
    t = rng.uniform(0.018, 0.028)
    plinth = rng.uniform(0.05, 0.1)
    h = plinth + n * gap + t
    hx, hd = rng.uniform(0.3, 0.5), rng.uniform(0.13, 0.18)
    parts = [make("side", "box", (s * (hx - t), h / 2, 0), (t, h / 2, hd), wood) for s in (-1, 1)]
    parts.append(make("top", "box", (0, h - t / 2, 0), (hx, t, hd), wood))
    parts.append(make("base", "box", (0, plinth / 2, hd - 0.03), (hx - t, plinth / 2, 0.02), wood))
    for i in range(n):  # boards books stand on, the lowest just above the plinth
        parts.append(make("shelf", "box", (0, plinth + i * gap, 0), (hx - t, t, hd - 0.005), wood))
    if a["back"] == "closed":
        parts.append(make("back", "box", (0, h / 2, -hd + 0.016), (hx - t, h / 2, 0.016), tint(rng, wood, 0.04)))
    return parts


def infer_bookshelf(parts):
    g = group(parts)
    return {"shelves": len(g["shelf"]), "back": "closed" if "back" in g else "open"}


BOOKSHELF = Category(
    space={"shelves": [2, 3, 4, 5], "back": ["open", "closed"]},
    build=build_bookshelf, infer=infer_bookshelf,
    heldout=[{"shelves": 5, "back": "open"}, {"shelves": 2, "back": "closed"}],
)
