"""Buildings and structures: tower, lighthouse, windmill, tent, bridge, well, arch.

Small details (windows, doors, stripes, keystones) come before the solid they sit on, so that
they own their voxels where they overlap it (the earliest part wins in `voxelize`).
"""

import numpy as np

from ..shapes import COLORS, along, group, is_round, make, rot, stick, tint
from . import Category

STONE = [COLORS["grey"], COLORS["cream"], COLORS["brick"], (0.66, 0.62, 0.55)]



def _slab(label, a, b, half_width, half_thick, color):
    """A box from point a to point b in a plane x = const, `half_width` across X."""
    d = np.asarray(b, float) - np.asarray(a, float)
    frame = rot("x", np.arctan2(-d[1], d[2]))  # local Z along a -> b
    return make(label, "box", (np.asarray(a) + np.asarray(b)) / 2, (half_width, half_thick, np.linalg.norm(d) / 2), color, frame)


# ---- tower ----------------------------------------------------------------------------

def build_tower(rng, a):
    stone = tint(rng, STONE[rng.integers(4)])
    r, h = rng.uniform(0.3, 0.38), rng.uniform(1.4, 1.8)
    prim = "cylinder" if a["body"] == "round" else "box"
    n = a["windows"]
    ys = np.linspace(h * 0.42, h * 0.86, n) if n > 1 else [h * rng.uniform(0.55, 0.75)]
    ww, wh = rng.uniform(0.06, 0.08), rng.uniform(0.09, 0.12)
    glass = tint(rng, (0.18, 0.2, 0.26), 0.03)
    parts = [make("window", "box", (0, y, r - 0.02), (ww, wh, 0.06), glass) for y in ys]
    dh = rng.uniform(0.15, 0.18)
    parts.append(make("door", "box", (0, dh, r - 0.02), (rng.uniform(0.09, 0.12), dh, 0.06), tint(rng, COLORS["dark_wood"])))
    parts.append(make("body", prim, (0, h / 2, 0), (r, h / 2, r), stone))
    big = r * (1.0 if prim == "cylinder" else 1.42) + rng.uniform(0.04, 0.07)  # covers a square's corners
    if a["top"] == "roof":
        rh = r * rng.uniform(1.2, 1.6)
        roof_c = tint(rng, [COLORS["red"], COLORS["grey"], COLORS["dark_wood"]][rng.integers(3)])
        parts.append(make("roof", "cone", (0, h + rh - 0.03, 0), (big, rh, big), roof_c))
        return parts
    R = r + rng.uniform(0.04, 0.07)
    dk = rng.uniform(0.05, 0.07)
    parts.append(make("deck", prim, (0, h + dk - 0.02, 0), (R, dk, R), stone))
    bw, bh = rng.uniform(0.055, 0.07), rng.uniform(0.07, 0.1)
    y, s = h - 0.04 + 2 * dk + bh, R - bw
    if prim == "cylinder":
        for q in rng.uniform(0, np.pi / 4) + np.arange(8) * np.pi / 4:
            parts.append(make("battlement", "box", (s * np.cos(q), y, s * np.sin(q)), (bw, bh, bw), stone, rot("y", -q)))
    else:  # corners and mid-sides
        for x, z in [(-s, -s), (0, -s), (s, -s), (-s, 0), (s, 0), (-s, s), (0, s), (s, s)]:
            parts.append(make("battlement", "box", (x, y, z), (bw, bh, bw), stone))
    return parts


def infer_tower(parts):
    g = group(parts)
    return {"body": "round" if is_round(g["body"][0]) else "square",
            "top": "roof" if "roof" in g else "battlements", "windows": len(g["window"])}


TOWER = Category(
    space={"body": ["round", "square"], "top": ["battlements", "roof"], "windows": [1, 2, 3]},
    build=build_tower, infer=infer_tower,
    heldout=[{"body": "square", "top": "roof"}],
)


# ---- lighthouse -----------------------------------------------------------------------

def build_lighthouse(rng, a):
    white = tint(rng, COLORS["white"], 0.03)
    band = tint(rng, [COLORS["red"], COLORS["black"], COLORS["dark_green"]][rng.integers(3)], 0.04)
    dark = tint(rng, [COLORS["black"], COLORS["red"], COLORS["grey"]][rng.integers(3)])
    r0, H, top = rng.uniform(0.3, 0.38), rng.uniform(1.4, 1.8), rng.uniform(0.6, 0.72)
    bh, br = rng.uniform(0.05, 0.08), r0 * rng.uniform(1.2, 1.35)
    y0 = 2 * bh - 0.01

    def radius(y):  # the tower's radius at height y
        return r0 * (1 + (top - 1) * (y - y0) / H)

    dh = rng.uniform(0.13, 0.16)
    parts = [make("door", "box", (0, y0 + dh, radius(y0 + dh) - 0.015), (rng.uniform(0.07, 0.09), dh, 0.05),
                  tint(rng, COLORS["dark_wood"]))]
    n = a["stripes"]
    for i in range(n):  # n bands with equal gaps between them, plain at the top
        ya, yb = y0 + H * (2 * i + 1) / (2 * n + 1), y0 + H * (2 * i + 2) / (2 * n + 1)
        ra = radius(ya) + 0.012
        parts.append(make("stripe", "cone", (0, (ya + yb) / 2, 0), (ra, (yb - ya) / 2, ra), band, top=(radius(yb) + 0.012) / ra))
    parts.append(make("body", "cone", (0, y0 + H / 2, 0), (r0, H / 2, r0), white, top=top))
    parts.append(make("base", "cylinder", (0, bh, 0), (br, bh, br), tint(rng, COLORS["grey"])))
    rt = r0 * top
    gh, rg = rng.uniform(0.05, 0.065), rt + rng.uniform(0.08, 0.12)
    yt = y0 + H
    parts.append(make("gallery", "cylinder", (0, yt + gh - 0.02, 0), (rg, gh, rg), dark))
    yg = yt - 0.02 + 2 * gh
    rl, lh = rt * rng.uniform(0.6, 0.75), rng.uniform(0.14, 0.2)
    parts.append(make("light", "cylinder", (0, yg + lh - 0.01, 0), (rl, lh, rl), tint(rng, COLORS["yellow"], 0.04)))
    yl = yg - 0.01 + 2 * lh
    rr = rl * rng.uniform(1.15, 1.3)
    if a["roof"] == "dome":
        rh = rr * rng.uniform(0.45, 0.6)
        parts.append(make("roof", "dome", (0, yl + rh - 0.02, 0), (rr, rh, rr), dark))
    else:
        rh = rr * rng.uniform(0.9, 1.2)
        parts.append(make("roof", "cone", (0, yl + rh - 0.02, 0), (rr, rh, rr), dark))
    return parts


def infer_lighthouse(parts):
    g = group(parts)
    roof = g["roof"][0].half_extents
    return {"stripes": len(g["stripe"]), "roof": "cone" if roof[1] / max(roof[0], roof[2]) > 0.75 else "dome"}


LIGHTHOUSE = Category(
    space={"stripes": [0, 2, 3], "roof": ["dome", "cone"]},
    build=build_lighthouse, infer=infer_lighthouse,
    heldout=[{"stripes": 3, "roof": "cone"}],
)


# ---- windmill -------------------------------------------------------------------------

def build_windmill(rng, a):
    wall = tint(rng, [COLORS["cream"], COLORS["white"], COLORS["brick"], COLORS["light_wood"]][rng.integers(4)])
    wood = tint(rng, [COLORS["dark_wood"], COLORS["wood"], COLORS["grey"]][rng.integers(3)])
    sail = tint(rng, [COLORS["cream"], COLORS["white"], COLORS["light_wood"], COLORS["brown"]][rng.integers(4)])
    r0, H = rng.uniform(0.34, 0.42), rng.uniform(1.0, 1.3)
    dh = rng.uniform(0.14, 0.17)
    if a["body"] == "round":
        top = rng.uniform(0.62, 0.75)
        front = r0
        body = make("body", "cone", (0, H / 2, 0), (r0, H / 2, r0), wall, top=top)
        rr = r0 * top + 0.05
        rh = rr * rng.uniform(0.5, 0.65)
        roof = make("roof", "dome", (0, H + rh - 0.03, 0), (rr, rh, rr), wood)
    else:
        front = r0 * rng.uniform(0.8, 0.88)
        body = make("body", "box", (0, H / 2, 0), (front, H / 2, front), wall)
        rh = rng.uniform(0.2, 0.28)
        rr = front + 0.05
        roof = make("roof", "wedge", (0, H + rh - 0.03, 0), (rr, rh, rr), wood, rot("y", np.pi / 2))  # ridge along Z
    door = make("door", "box", (0, dh, front - 0.02), (rng.uniform(0.08, 0.1), dh, 0.05), tint(rng, COLORS["dark_wood"]))
    parts = [door, body, roof]
    # A hub on an axle out of the roof's front; the sails turn in a plane clear of the body.
    yh, zf = H + rh * 0.6, r0 + 0.12
    rb = rng.uniform(0.13, 0.15)
    parts.append(make("hub", "cylinder", (0, yh, zf / 2), (rb, zf / 2, rb), wood, along((0, 0, 1))))
    n = a["blades"]
    rin, L, bt = rb - 0.025, rng.uniform(0.32, 0.38), 0.04
    w = min(0.085, rin * np.tan(np.pi / n) * 0.9) * rng.uniform(0.85, 1.0)  # sails clear of each other at the hub
    for q in rng.uniform(0, 2 * np.pi / n) + np.arange(n) * 2 * np.pi / n:
        d = np.array([np.cos(q), np.sin(q), 0])
        parts.append(make("blade", "box", np.array([0, yh, zf - 0.05]) + d * (rin + L), (w, L, bt), sail, rot("z", q - np.pi / 2)))
    return parts


def infer_windmill(parts):
    g = group(parts)
    return {"blades": len(g["blade"]), "body": "round" if is_round(g["body"][0]) else "square"}


WINDMILL = Category(
    space={"blades": [4, 5, 6], "body": ["round", "square"]},
    build=build_windmill, infer=infer_windmill,
    heldout=[{"blades": 6, "body": "square"}],
)


# ---- tent -----------------------------------------------------------------------------

def build_tent(rng, a):
    cloth = tint(rng, [COLORS["green"], COLORS["orange"], COLORS["blue"], COLORS["yellow"], COLORS["red_fabric"]][rng.integers(5)])
    flap = tuple(np.asarray(cloth) * 0.45)
    pole_c = tint(rng, [COLORS["metal"], COLORS["wood"]][rng.integers(2)])
    gable = rot("y", np.pi / 2)  # a wedge with its ridge along Z: triangular faces front and back
    parts = []
    if a["shape"] == "ridge":
        hl, hw, h = rng.uniform(0.75, 0.95), rng.uniform(0.5, 0.65), rng.uniform(0.65, 0.85)
        dhh = h * rng.uniform(0.35, 0.4)
        parts.append(make("door", "wedge", (0, dhh, hl - 0.02), (0.05, dhh, hw * 0.45), flap, gable))
        parts.append(make("body", "wedge", (0, h / 2, 0), (hl, h / 2, hw), cloth, gable))
        y0, z0, aw = h - 0.05, hl - 0.06, hw * 0.65
    elif a["shape"] == "dome":
        r = rng.uniform(0.7, 0.9)
        hh = r * rng.uniform(0.35, 0.45)
        dw, dh = r * 0.3, hh * 0.55
        parts.append(make("door", "dome", (0, dh, r - 0.06), (dw, dh, 0.12), flap))
        parts.append(make("body", "dome", (0, hh, 0), (r, hh, r), cloth))
        y0 = 2 * hh * 0.7
        z0, aw = r * np.sqrt(1 - 0.7**2) - 0.05, r * 0.45
    else:  # cone: a tipi with its poles crossing out of the top
        r = rng.uniform(0.55, 0.7)
        hh = r * rng.uniform(1.05, 1.3)
        slope = np.arctan2(r, 2 * hh)
        frame = rot("x", -slope) @ gable  # the door leans back with the cloth
        ym = 2 * hh * 0.22
        center = np.array([0, ym, r * (1 - ym / (2 * hh))]) + 0.02 * np.array([0, np.sin(slope), np.cos(slope)])
        parts.append(make("door", "wedge", center, (0.05, ym / np.cos(slope), r * 0.35), flap, frame))
        parts.append(make("body", "cone", (0, hh, 0), (r, hh, r), cloth))
        apex = np.array([0, 2 * hh, 0])
        for q in rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3:
            d = np.array([0.35 * np.cos(q), 1, 0.35 * np.sin(q)])
            d /= np.linalg.norm(d)
            parts.append(stick("pole", apex - d * 0.25, apex + d * 0.22, 0.045, pole_c))
        y0 = 2 * hh * 0.4
        z0, aw = r * 0.6 - 0.05, r * 0.5
    if a["awning"] == "yes":  # a sloping flat sheet out of the entrance, on two poles
        al, t, pr = rng.uniform(0.4, 0.55), 0.045, 0.045
        y1 = max(y0 - al * rng.uniform(0.2, 0.45), 0.28)
        parts.append(_slab("canopy", (0, y0, z0), (0, y1, z0 + al), aw, t, cloth))
        for s in (-1, 1):
            parts.append(stick("pole", (s * (aw - 0.05), 0, z0 + al - 0.05), (s * (aw - 0.05), y1, z0 + al - 0.05), pr, pole_c))
    return parts


def infer_tent(parts):
    g = group(parts)
    body = g["body"][0]
    tall = body.half_extents[1] / max(body.half_extents[0], body.half_extents[2]) > 0.75
    return {"shape": ("cone" if tall else "dome") if is_round(body) else "ridge",
            "awning": "yes" if "canopy" in g else "no"}


TENT = Category(
    space={"shape": ["ridge", "dome", "cone"], "awning": ["yes", "no"]},
    build=build_tent, infer=infer_tent,
    heldout=[{"shape": "cone", "awning": "yes"}],
)


# ---- bridge ---------------------------------------------------------------------------

def build_bridge(rng, a):
    """Along X: a level deck on pillars, with a ramp down to the ground at each end."""
    stone = tint(rng, STONE[rng.integers(4)])
    wood = tint(rng, [COLORS["wood"], COLORS["dark_wood"], COLORS["grey"], COLORS["light_wood"]][rng.integers(4)])
    hl, hw = rng.uniform(0.8, 1.0), rng.uniform(0.2, 0.28)
    dt, yc, rl = rng.uniform(0.06, 0.075), rng.uniform(0.45, 0.6), rng.uniform(0.45, 0.6)
    parts = [make("deck", "box", (0, yc, 0), (hl, dt, hw), wood)]
    for s in (-1, 1):
        p, q = np.array([s * (hl - 0.04), yc]), np.array([s * (hl + rl), dt * 0.7])
        d = q - p
        parts.append(make("deck", "box", (*(p + q) / 2, 0), (np.linalg.norm(d) / 2, dt, hw), wood, rot("z", np.arctan2(d[1], d[0]))))
    pr = rng.uniform(0.07, 0.1)
    for x in np.linspace(-hl, hl, a["pillars"] + 2)[1:-1]:
        if a["shape"] == "round":
            parts.append(make("pillar", "cylinder", (x, yc / 2, 0), (pr, yc / 2, pr), stone))
        else:
            parts.append(make("pillar", "box", (x, yc / 2, 0), (pr, yc / 2, min(hw * 0.9, pr * 1.5)), stone))
    if a["rails"] == "yes":  # low parapets along both edges of the level part
        rh, rt = rng.uniform(0.07, 0.1), 0.06
        for s in (-1, 1):
            parts.append(make("rail", "box", (0, yc + dt + rh - 0.02, s * (hw - rt)), (hl, rh, rt), wood))
    return parts


def infer_bridge(parts):
    g = group(parts)
    return {"pillars": len(g["pillar"]), "shape": "round" if is_round(g["pillar"][0]) else "square",
            "rails": "yes" if "rail" in g else "no"}


BRIDGE = Category(
    space={"pillars": [1, 2, 3], "shape": ["round", "square"], "rails": ["yes", "no"]},
    build=build_bridge, infer=infer_bridge,
    heldout=[{"pillars": 3, "rails": "no"}, {"pillars": 1, "shape": "round"}],
)


# ---- well -----------------------------------------------------------------------------

def build_well(rng, a):
    stone = tint(rng, STONE[rng.integers(4)])
    wood = tint(rng, [COLORS["wood"], COLORS["dark_wood"], COLORS["brown"]][rng.integers(3)])
    R, wh = rng.uniform(0.42, 0.52), rng.uniform(0.2, 0.26)
    t = R * rng.uniform(0.18, 0.24)  # wall thickness
    if a["shape"] == "round":
        parts = [make("wall", "cup", (0, wh, 0), (R, wh, R), stone, inner=1 - t / R, bottom=0.25)]
    else:  # four walls around an open square
        parts = [make("wall", "box", (0, wh, s * (R - t / 2)), (R, wh, t / 2), stone) for s in (-1, 1)]
        parts += [make("wall", "box", (s * (R - t / 2), wh, 0), (t / 2, wh, R - t + 0.02), stone) for s in (-1, 1)]
    top = 2 * wh
    pt, ph, px = rng.uniform(0.045, 0.06), top + rng.uniform(0.75, 0.95), R - t / 2
    parts += [make("post", "box", (s * px, (top + ph) / 2 - 0.02, 0), (pt, (ph - top) / 2 + 0.02, pt), wood) for s in (-1, 1)]
    yc, cr = ph - rng.uniform(0.12, 0.18), rng.uniform(0.05, 0.065)
    parts.append(make("crank", "cylinder", (0, yc, 0), (cr, px + pt * 0.8, cr), wood, along((1, 0, 0))))
    if a["bucket"] == "yes":  # hangs above the opening; the rope reaches down to the bucket's floor
        br, bh = rng.uniform(0.1, 0.13), rng.uniform(0.09, 0.12)
        bx, yb = R * rng.uniform(-0.15, 0.15), top + rng.uniform(0.04, 0.1) + bh
        parts.append(make("bucket", "cup", (bx, yb, 0), (br, bh, br), tint(rng, COLORS["brown"]), inner=0.65, bottom=0.25))
        parts.append(stick("cable", (bx, yb - 0.6 * bh, 0), (bx, yc, 0), rng.uniform(0.035, 0.04), tint(rng, COLORS["light_wood"])))
    if a["roof"] == "yes":
        rh = rng.uniform(0.18, 0.26)
        roof_c = tint(rng, [COLORS["red"], COLORS["dark_wood"], COLORS["grey"]][rng.integers(3)])
        parts.append(make("roof", "wedge", (0, ph + rh - 0.03, 0), (px + pt + 0.08, rh, R * rng.uniform(0.7, 0.85)), roof_c))
    return parts


def infer_well(parts):
    g = group(parts)
    return {"shape": "round" if is_round(g["wall"][0]) else "square", "roof": "yes" if "roof" in g else "no",
            "bucket": "yes" if "bucket" in g else "no"}


WELL = Category(
    space={"shape": ["round", "square"], "roof": ["yes", "no"], "bucket": ["yes", "no"]},
    build=build_well, infer=infer_well,
    heldout=[{"shape": "square", "roof": "no"}],
)


# ---- arch -----------------------------------------------------------------------------

def build_arch(rng, a):
    """A row of openings between pillars under a top beam, along X; round openings get an
    arc of three blocks (two haunches and a keystone) under the beam."""
    stone = tint(rng, STONE[rng.integers(4)])
    n = a["openings"]
    ow, pw = rng.uniform(0.26, 0.34), rng.uniform(0.1, 0.13)  # half widths of an opening and a pillar
    dz, ph, bh, ov = pw * rng.uniform(1.2, 1.5), rng.uniform(0.95, 1.2), rng.uniform(0.05, 0.07), rng.uniform(0.03, 0.06)
    W = n * ow + (n + 1) * pw
    xs = -W + pw + np.arange(n + 1) * 2 * (ow + pw)
    y0 = 2 * bh - 0.02
    yt = y0 + ph
    parts = []
    if a["top"] == "round":
        e = rng.uniform(0.06, 0.07)  # how far the keystone hangs below the beam
        ys = yt - ow - e  # the arc's centre; the keystone and haunches are tangent to it at 90, 30 and 150 degrees
        for xc in (xs[:-1] + xs[1:]) / 2:
            parts.append(make("block", "box", (xc, yt + 0.025 - e / 2, 0), (0.6 * ow, (e + 0.05) / 2, dz * 0.95), stone))
            for s in (1, -1):  # haunches filling the corners, running from the pillar up to the keystone
                ang = np.pi / 2 - s * np.pi / 3
                k, up = 0.2 * ow + 0.3 * e, s * np.array([-np.sin(ang), np.cos(ang), 0])
                c = np.array([xc + (ow + k) * np.cos(ang), ys + (ow + k) * np.sin(ang), 0]) + up * 0.225 * ow
                parts.append(make("block", "box", c, (k, 0.525 * ow, dz * 0.95), stone, rot("z", ang)))
    tb = rng.uniform(0.08, 0.11)
    parts.append(make("top", "box", (0, yt + tb - 0.02, 0), (W + ov, tb, dz + ov), stone))
    for x in xs:
        if a["pillars"] == "round":
            parts.append(make("pillar", "cylinder", (x, y0 + ph / 2, 0), (pw, ph / 2 + 0.01, pw), stone))
        else:
            parts.append(make("pillar", "box", (x, y0 + ph / 2, 0), (pw, ph / 2 + 0.01, dz), stone))
    parts.append(make("base", "box", (0, bh, 0), (W + ov, bh, dz + ov), stone))
    return parts


def infer_arch(parts):
    g = group(parts)
    return {"openings": len(g["pillar"]) - 1, "top": "round" if "block" in g else "flat",
            "pillars": "round" if is_round(g["pillar"][0]) else "square"}


ARCH = Category(
    space={"openings": [1, 2, 3], "top": ["round", "flat"], "pillars": ["round", "square"]},
    build=build_arch, infer=infer_arch,
    heldout=[{"openings": 3, "top": "flat"}],
)


CATEGORIES = {"tower": TOWER, "lighthouse": LIGHTHOUSE, "windmill": WINDMILL, "tent": TENT, "bridge": BRIDGE,
              "well": WELL, "arch": ARCH}

# ---- caption tables, as in captions.py --------------------------------------------------

NOUNS = {
    "tower": (["tower"], ["turret"]),
    "lighthouse": (["lighthouse"], ["beacon tower"]),
    "windmill": (["windmill"], ["grain mill"]),
    "tent": (["tent"], ["camping shelter"]),
    "bridge": (["bridge", "footbridge"], ["viaduct"]),
    "well": (["well", "wishing well"], ["draw well"]),
    "arch": (["arch", "archway"], ["gateway"]),
}
ATTRIBUTE_NOUNS = {("tower", "top", "battlements"): "castle tower", ("tent", "shape", "cone"): "bell tent",
                   ("tent", "shape", "dome"): "dome tent"}
PARAPHRASE_ATTRIBUTE_NOUNS = {
    ("tower", "top", "battlements"): "crenellated turret", ("tent", "shape", "cone"): "wigwam",
    ("tent", "shape", "ridge"): "pup tent", ("well", "roof", "yes"): "covered draw well",
    ("bridge", "pillars", 1): "single-pier crossing",
}
PHRASES = {
    "tower": {
        "body": {
            "round": (["a round body", "a cylindrical body"], ["a circular plan"]),
            "square": (["a square body", "a square plan"], ["a four-sided plan"]),
        },
        "top": {
            "battlements": (["battlements", "a crenellated top"], ["a notched parapet"]),
            "roof": (["a pointed roof", "a conical roof"], ["a spire on top"]),
        },
        "windows": {
            1: (["one window", "1 window"], ["a single arrow slit"]),
            2: (["two windows", "2 windows"], ["two arrow slits"]),
            3: (["three windows", "3 windows"], ["three arrow slits"]),
        },
    },
    "lighthouse": {
        "stripes": {
            0: (["no stripes", "a plain tower"], ["a shaft without bands"]),
            2: (["two stripes", "2 stripes"], ["two horizontal bands"]),
            3: (["three stripes", "3 stripes"], ["three horizontal bands"]),
        },
        "roof": {
            "dome": (["a dome roof", "a domed roof"], ["a rounded cupola"]),
            "cone": (["a cone roof", "a pointed roof"], ["a tapering cap over the lamp"]),
        },
    },
    "windmill": {
        "blades": {
            4: (["four blades", "4 sails"], ["four vanes"]),
            5: (["five blades", "5 sails"], ["five vanes"]),
            6: (["six blades", "6 sails"], ["six vanes"]),
        },
        "body": {
            "round": (["a round tower", "a round body"], ["a tapering circular shaft"]),
            "square": (["a square tower", "a square body"], ["a boxy four-sided shaft"]),
        },
    },
    "tent": {
        "shape": {
            "ridge": (["a ridge shape", "a triangular ridge"], ["an A-frame"]),
            "dome": (["a dome shape", "a rounded dome"], ["an igloo-like profile"]),
            "cone": (["a cone shape", "a conical shape"], ["a tipi profile"]),
        },
        "awning": {
            "yes": (["an awning", "a porch awning"], ["a front canopy on poles"]),
            "no": (["no awning", "no porch"], ["nothing over the entrance"]),
        },
    },
    "bridge": {
        "pillars": {
            1: (["one pillar", "a single pillar"], ["one support column"]),
            2: (["two pillars", "2 pillars"], ["two support columns"]),
            3: (["three pillars", "3 pillars"], ["three support columns"]),
        },
        "shape": {
            "round": (["round supports", "cylindrical supports"], ["circular piers"]),
            "square": (["square supports", "box-shaped supports"], ["rectangular piers"]),
        },
        "rails": {
            "yes": (["railings", "side rails"], ["parapets along the edges"]),
            "no": (["no railings", "no side rails"], ["unguarded edges"]),
        },
    },
    "well": {
        "shape": {
            "round": (["a round wall", "a circular wall"], ["a ring of masonry"]),
            "square": (["a square wall", "a square rim"], ["a four-sided surround"]),
        },
        "roof": {
            "yes": (["a roof", "a little roof"], ["a canopy overhead"]),
            "no": (["no roof", "an open top"], ["nothing overhead"]),
        },
        "bucket": {
            "yes": (["a bucket", "a hanging bucket"], ["a pail on a rope"]),
            "no": (["no bucket", "no hanging bucket"], ["nothing dangling from the winch"]),
        },
    },
    "arch": {
        "openings": {
            1: (["one opening", "a single arch"], ["one passage"]),
            2: (["two openings", "two arches"], ["two passages"]),
            3: (["three openings", "three arches"], ["three passages"]),
        },
        "top": {
            "round": (["a rounded arch", "curved tops"], ["semicircular heads"]),
            "flat": (["a flat lintel", "flat tops"], ["straight beams over the passages"]),
        },
        "pillars": {
            "round": (["round pillars", "round columns"], ["cylindrical posts"]),
            "square": (["square pillars", "square columns"], ["blocky piers"]),
        },
    },
}

# ---- default looks, as in appearance.py and appearance_captions.py -------------------------

PALETTE = {
    "deck": (150, 110, 74), "pillar": (160, 156, 148), "block": (176, 170, 156), "gallery": (60, 62, 68),
    "battlement": (140, 138, 132), "bucket": (130, 92, 60), "crank": (110, 78, 50), "cable": (200, 180, 130),
    "hub": (90, 66, 46),
}
CATEGORY_PALETTE = {
    ("tower", "body"): (150, 148, 140), ("tower", "window"): (46, 50, 62),
    ("lighthouse", "body"): (240, 240, 236), ("lighthouse", "stripe"): (200, 40, 36), ("lighthouse", "roof"): (60, 62, 68),
    ("windmill", "body"): (226, 214, 190), ("windmill", "roof"): (110, 78, 50), ("windmill", "blade"): (236, 228, 210),
    ("tent", "body"): (70, 130, 90), ("tent", "canopy"): (90, 150, 110), ("tent", "door"): (40, 64, 50),
    ("well", "wall"): (150, 146, 138), ("arch", "top"): (170, 164, 150), ("arch", "base"): (150, 146, 138),
}
LABEL_KINDS = {"deck": "wood", "pillar": "stone", "block": "stone", "battlement": "stone", "gallery": "metal",
               "bucket": "wood", "crank": "wood", "cable": "fabric", "hub": "wood"}
CATEGORY_KINDS = {
    "tower": {"body": "stone", "deck": "stone", "roof": "ceramic", "window": None},
    "lighthouse": {"base": "stone", "roof": "metal"},
    "windmill": {"body": "stone", "roof": "wood", "blade": "fabric"},
    "tent": {"body": "fabric", "canopy": "fabric", "door": "fabric"},
    "well": {"wall": "stone", "roof": "wood"},
    "arch": "stone",
}
PLURALS: dict = {}
