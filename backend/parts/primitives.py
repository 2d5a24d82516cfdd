"""Occupancy of the primitive solids that procedural parts are made of.

Every primitive lives in its unit local frame: points are normalised by the part's half
extents, so the solid is inscribed in [-1, 1]^3 and touches all six faces of that box
(the box is the part's explicit "Gaussian"). Axial primitives use local Y as their axis.
"""

import numpy as np


def box(p, params):
    return np.all(np.abs(p) <= 1.0, axis=-1)


def rounded_box(p, params):
    # Rounded in normalised coordinates, so the rounding follows the box's proportions.
    r = params.get("round", 0.2)
    q = np.abs(p) - (1.0 - r)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return outside + inside <= r


def cylinder(p, params):
    return (p[:, 0] ** 2 + p[:, 2] ** 2 <= 1.0) & (np.abs(p[:, 1]) <= 1.0)


def cone(p, params):
    # Frustum: radius 1 at y=-1 shrinking to `top` at y=+1 (top=0 is a pointed cone).
    top = params.get("top", 0.0)
    radius = 1.0 + (top - 1.0) * (p[:, 1] + 1.0) / 2.0
    return (p[:, 0] ** 2 + p[:, 2] ** 2 <= radius**2) & (np.abs(p[:, 1]) <= 1.0)


def cup(p, params):
    # Cylinder hollowed from the top: wall = 1 - `inner` of the radius, floor = `bottom`
    # of the height (mugs, vases).
    inner, bottom = params.get("inner", 0.8), params.get("bottom", 0.15)
    r2 = p[:, 0] ** 2 + p[:, 2] ** 2
    hole = (r2 < inner**2) & (p[:, 1] > -1.0 + 2.0 * bottom)
    return (r2 <= 1.0) & (np.abs(p[:, 1]) <= 1.0) & ~hole


def sphere(p, params):
    return np.sum(p**2, axis=-1) <= 1.0


def dome(p, params):
    # Upper half of an ellipsoid, flat face at y=-1 (lamp shades, mushroom caps).
    return (p[:, 0] ** 2 + p[:, 2] ** 2 + ((p[:, 1] + 1.0) / 2.0) ** 2 <= 1.0) & (p[:, 1] >= -1.0)


def capsule(p, params):
    # Cylinder along Y with rounded ends; `cap` = end radius / half length, which makes the
    # caps hemispherical when the part's radial half extent equals cap * its half length.
    cap = params.get("cap", 0.3)
    dy = np.maximum(np.abs(p[:, 1]) - (1.0 - cap), 0.0) / cap
    return p[:, 0] ** 2 + p[:, 2] ** 2 + dy**2 <= 1.0


def torus(p, params):
    # Ring around Y in the XZ plane; `tube` = tube radius / outer radius. Local Y is
    # scaled so the tube spans y in [-1, 1].
    t = params.get("tube", 0.25)
    ring = np.sqrt(p[:, 0] ** 2 + p[:, 2] ** 2) - (1.0 - t)
    return (ring / t) ** 2 + p[:, 1] ** 2 <= 1.0


def wedge(p, params):
    # Triangular prism, ridge along X at y=+1, full depth at y=-1 (gable roofs, fins).
    return (np.abs(p[:, 0]) <= 1.0) & (np.abs(p[:, 1]) <= 1.0) & (np.abs(p[:, 2]) <= (1.0 - p[:, 1]) / 2.0)


PRIMITIVES = {
    "box": box,
    "rounded_box": rounded_box,
    "cylinder": cylinder,
    "cone": cone,
    "cup": cup,
    "sphere": sphere,
    "dome": dome,
    "capsule": capsule,
    "torus": torus,
    "wedge": wedge,
}

# Primitives with a round cross-section, for "round or square?" attributes: reading
# attributes by family keeps the oracle tolerant of a decoder that confuses a capsule
# with a cylinder.
ROUND_PRIMITIVES = {"cylinder", "cone", "cup", "sphere", "dome", "capsule", "torus"}

# Parameters each primitive reads, with defaults: a fixed-size vector for the model.
PRIMITIVE_PARAMS = {"rounded_box": {"round": 0.2}, "cone": {"top": 0.0}, "cup": {"inner": 0.8, "bottom": 0.15},
                    "capsule": {"cap": 0.3}, "torus": {"tube": 0.25}}


def local_occupancy(primitive: str, p_local: np.ndarray, params: dict) -> np.ndarray:
    """Occupancy of a primitive in its unit frame.

    Args:
        primitive: a key of PRIMITIVES.
        p_local: (N, 3) points normalised by the part's half extents.
        params: the primitive's parameters (see PRIMITIVE_PARAMS).
    Returns:
        (N,) bool, True inside.
    """
    return PRIMITIVES[primitive](np.asarray(p_local, dtype=np.float64).reshape(-1, 3), params)


def classify_primitive(p_local: np.ndarray, occupancy: np.ndarray) -> str:
    """The primitive whose solid best matches an occupancy sampled in the unit frame, e.g.
    a decoded part latent, so that `infer_attributes` can read generated parts.

    Args:
        p_local: (N, 3) points in [-1, 1]^3 (uniform samples work well).
        occupancy: (N,) bool at those points.
    Returns:
        The name of the primitive (over a small grid of its params) with the highest IoU.
    """
    grids = {"rounded_box": [{"round": r} for r in (0.1, 0.3, 0.5)], "cone": [{"top": t} for t in (0.0, 0.3, 0.6)],
             "cup": [{"inner": 0.8, "bottom": b} for b in (0.15, 0.5)], "capsule": [{"cap": c} for c in (0.1, 0.3, 0.6)],
             "torus": [{"tube": t} for t in (0.1, 0.25, 0.4)]}
    occupancy = np.asarray(occupancy, dtype=bool)
    best, best_iou = "box", -1.0
    for name in PRIMITIVES:
        for params in grids.get(name, [{}]):
            occ = local_occupancy(name, p_local, params)
            iou = (occ & occupancy).sum() / max((occ | occupancy).sum(), 1)
            if iou > best_iou:
                best, best_iou = name, iou
    return best
