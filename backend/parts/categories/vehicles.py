"""Vehicles: rocket, car, airplane (car and airplane point along +X)."""

import numpy as np

from ..shapes import COLORS, along, group, make, rot, tint
from . import Category


# ---- rocket ---------------------------------------------------------------------------

def build_rocket(rng, a):
    hull = tint(rng, [COLORS["white"], COLORS["metal"], COLORS["red"]][rng.integers(3)])
    accent = tint(rng, [COLORS["red"], COLORS["blue"], COLORS["black"]][rng.integers(3)])
    r = rng.uniform(0.1, 0.14)
    nh = rng.uniform(0.08, 0.12)  # nozzle
    parts = [make("nozzle", "cone", (0, nh, 0), (r * 0.7, nh, r * 0.7), COLORS["grey"], top=0.6)]
    y = 2 * nh * 0.9
    for stage in range(a["stages"]):
        rr = r * (1.0 if stage == 0 else rng.uniform(0.7, 0.8))
        hh = rng.uniform(0.35, 0.45) if stage == 0 else rng.uniform(0.18, 0.25)
        parts.append(make("body", "cylinder", (0, y + hh, 0), (rr, hh, rr), hull))
        y += 2 * hh - 0.01
    parts.append(make("nose", "cone", (0, y + rr * 1.25, 0), (rr, rr * 1.3, rr), accent, top=0.0))
    span, fh = r * rng.uniform(0.9, 1.3), rng.uniform(0.18, 0.26)
    phase = rng.uniform(0, np.pi)
    for k in range(a["fins"]):  # triangular fins around the base; the inner half is buried in the hull
        q = phase + 2 * np.pi * k / a["fins"]
        radial = np.array([np.cos(q), 0, np.sin(q)])
        frame = np.stack([np.cross((0, 1, 0), radial), (0, 1, 0), radial], axis=1)  # local Z = radial
        parts.append(make("fin", "wedge", radial * r + (0, 2 * nh * 0.9 + fh, 0), (0.022, fh, span), accent, frame))
    return parts


def infer_rocket(parts):
    g = group(parts)
    return {"fins": len(g["fin"]), "stages": len(g["body"])}


ROCKET = Category(
    space={"fins": [3, 4, 6], "stages": [1, 2]},
    build=build_rocket, infer=infer_rocket,
    heldout=[{"fins": 6, "stages": 2}],
)


# ---- car ------------------------------------------------------------------------------

def build_car(rng, a):
    paint = tint(rng, [COLORS["red"], COLORS["blue"], COLORS["yellow"], COLORS["white"], COLORS["green"]][rng.integers(5)])
    hl, hw = rng.uniform(0.95, 1.15), rng.uniform(0.42, 0.5)
    wr = rng.uniform(0.16, 0.2)
    bh = rng.uniform(0.14, 0.18)
    by = wr * 0.7 + bh
    parts = [make("body", "rounded_box", (0, by, 0), (hl, bh, hw), paint, round=0.25)]
    if a["body"] == "van":
        cl, ch, cx = hl * rng.uniform(0.8, 0.9), rng.uniform(0.2, 0.26), -hl * 0.05
    else:
        cl, ch, cx = hl * rng.uniform(0.45, 0.55), rng.uniform(0.14, 0.18), -hl * rng.uniform(0.05, 0.15)
    glass = tint(rng, COLORS["glass"], 0.03)
    parts.append(make("cabin", "rounded_box", (cx, by + bh + ch - 0.02, 0), (cl, ch, hw * 0.9), glass, round=0.25))
    ax = hl * rng.uniform(0.6, 0.7)
    xs = {3: [(ax, 0.0), (-ax, 1), (-ax, -1)], 4: [(x, s) for x in (ax, -ax) for s in (1, -1)],
          6: [(x, s) for x in (ax, -ax * 0.35, -ax) for s in (1, -1)]}[a["wheels"]]
    if a["wheels"] == 6:
        xs = [(x if x > 0 else x * 1.05, s) for x, s in xs]
    ww = rng.uniform(0.06, 0.08)
    for x, s in xs:
        axle = along((0, 0, 1))
        parts.append(make("wheel", "cylinder", (x, wr, s * (hw - ww * 0.6)), (wr, ww, wr), COLORS["black"], axle))
    for s in (-1, 1):
        lamp = (hl - 0.02, by + bh * 0.3, s * hw * 0.65)
        parts.append(make("light", "sphere", lamp, (0.04, 0.035, 0.06), COLORS["yellow"]))
    return parts


def infer_car(parts):
    g = group(parts)
    ratio = g["cabin"][0].half_extents[0] / g["body"][0].half_extents[0]
    return {"wheels": len(g["wheel"]), "body": "van" if ratio > 0.67 else "sedan"}


CAR = Category(
    space={"wheels": [3, 4, 6], "body": ["sedan", "van"]},
    build=build_car, infer=infer_car,
    heldout=[{"wheels": 3, "body": "van"}, {"wheels": 6, "body": "sedan"}],
)


# ---- airplane -------------------------------------------------------------------------

def build_airplane(rng, a):
    hull = tint(rng, [COLORS["white"], COLORS["metal"], COLORS["grey"]][rng.integers(3)])
    accent = tint(rng, [COLORS["red"], COLORS["blue"], COLORS["orange"]][rng.integers(3)])
    hl, r = rng.uniform(0.9, 1.1), rng.uniform(0.09, 0.12)
    parts = [make("body", "capsule", (0, 0, 0), (r, hl, r), hull, along((1, 0, 0)), cap=r / hl)]
    parts.append(make("nose", "dome", (hl - r * 0.55, 0, 0), (r * 0.85, r * 0.7, r * 0.85), accent, along((1, 0, 0))))
    sweep = rng.uniform(0.0, 0.08) if a["wings"] == "straight" else rng.uniform(0.45, 0.6)
    span, chord, t = rng.uniform(0.75, 0.95), rng.uniform(0.15, 0.22), rng.uniform(0.025, 0.03)
    root = np.array([hl * rng.uniform(0.05, 0.2), -r * 0.3, 0])
    for s in (1, -1):
        tip_dir = np.array([-np.sin(sweep), 0, s * np.cos(sweep)])
        parts.append(make("wing", "box", root + tip_dir * span / 2, (chord, t, span / 2), hull, rot("y", -s * sweep)))
    tail_h = rng.uniform(0.2, 0.28)
    lean = rot("z", 0.35)  # the fin leans back
    parts.append(make("tail", "box", (-hl + 0.12, r * 0.5 + tail_h / 2, 0), (0.11, tail_h / 2, 0.025), accent, lean))
    for s in (1, -1):
        parts.append(make("fin", "box", (-hl + 0.12, 0, s * 0.17), (0.07, 0.025, 0.17), hull, rot("y", -s * sweep * 0.6)))
    for k in range(a["engines"] // 2):  # pods hanging under each wing
        f = 0.35 if k == 0 else 0.65
        for s in (1, -1):
            tip_dir = np.array([-np.sin(sweep), 0, s * np.cos(sweep)])
            c = root + tip_dir * span * f + np.array([0.05, -t - 0.02, 0])
            parts.append(make("engine", "cylinder", c, (0.055, 0.12, 0.055), COLORS["grey"], along((1, 0, 0))))
    return parts


def infer_airplane(parts):
    g = group(parts)
    sweep = abs(np.arcsin(np.clip(g["wing"][0].rotation[0, 2], -1, 1)))  # X component of the span axis
    return {"wings": "swept" if sweep > 0.25 else "straight", "engines": len(g.get("engine", []))}


AIRPLANE = Category(
    space={"wings": ["straight", "swept"], "engines": [0, 2, 4]},
    build=build_airplane, infer=infer_airplane,
    heldout=[{"wings": "straight", "engines": 4}],
)
