"""Coverage, MMD and 1-NNA of the built-in model on unpaired sets, beside reference systems.

The generated set comes from category-level prompts ("a chair"), as many per category as the
reference set has; the reference set is held-out procedural shapes (the "val" split). Nothing
pairs a generated shape with a reference, so 1-NNA means what it should: 0.5 when the two sets
cannot be told apart, 1.0 when every shape's nearest neighbour is from its own set.

Every shape is meshed the same way: procedural shapes (references and reference systems) are
encoded by the model's own part autoencoder and decoded as generated shapes are, so the
decoder's surfaces (rounded edges, a 64³ grid) are not what tells the sets apart.

Every metric is computed within a category (what "a chair" gave against the reference chairs)
and averaged over categories. Over the pooled set a system that answers every prompt with the
wrong category scores like the ideal one: its tables, offered for "a chair", sit beside the
reference tables (tests/backend/test_parts_evaluation.py shows it on three categories).

The same code scores reference systems, printed beside the model so a reader sees the scale:
- "ideal": fresh procedural shapes (other seeds) — the best any model can do;
- "wrong-category": procedural shapes of the next category in place of each one;
- "one-per-category": one procedural shape per category repeated (a collapsed model).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from backend.errors import GenerationFailed

from . import data
from .pipeline import category_prompt

SYSTEMS = ("ideal", "wrong-category", "one-per-category")


def surface_points(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int) -> np.ndarray:
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts, np.float32)


def shape_points(shape, points: int, resolution: int, seed: int) -> np.ndarray:
    """Surface samples of a procedural data.Shape meshed from its exact occupancy (the evaluation
    meshes them through the model instead: see `distribution`)."""
    v, f, _ = data.shape_to_mesh(shape, resolution)
    return surface_points(np.asarray(v), np.asarray(f), points, seed)


def delivered_mesh(pipe, shape, resolution: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A generated shape's delivered mesh (vertices, faces) in the shape frame; None when it is empty."""
    try:
        parts = pipe.decode(shape, resolution)
    except GenerationFailed:
        return None
    origin = shape.origin.numpy()
    verts = np.concatenate([p.vertices + origin for p in parts])
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return verts, np.concatenate([p.faces + o for p, o in zip(parts, offsets)])


def generated_points(pipe, shape, points: int, resolution: int, seed: int) -> np.ndarray | None:
    """Surface samples of a generated shape's delivered mesh, in the shape frame; None when it is empty."""
    mesh = delivered_mesh(pipe, shape, resolution)
    return None if mesh is None else surface_points(*mesh, points, seed)


def chamfer_matrix(a: list[np.ndarray], b: list[np.ndarray], chunk: int = 16) -> np.ndarray:
    """Symmetric Chamfer distance (mean squared nearest-neighbour distance, both ways), batched.
    Returns (len(a), len(b))."""
    A, B = torch.from_numpy(np.stack(a)), torch.from_numpy(np.stack(b))  # (Na, P, 3), (Nb, P, 3)
    out = torch.empty(len(a), len(b))
    for i in range(0, len(a), chunk):
        x = A[i : i + chunk, None]  # (c, 1, P, 3)
        for j in range(0, len(b), chunk):
            d = torch.cdist(x, B[None, j : j + chunk]).pow(2)  # (c, c', P, P)
            out[i : i + chunk, j : j + chunk] = d.min(-1).values.mean(-1) + d.min(-2).values.mean(-1)
    return out.double().numpy()


def metrics_from(gr: np.ndarray, gg: np.ndarray, rr: np.ndarray) -> dict:
    """Coverage, MMD (Achlioptas et al. 2018) and 1-NNA (Yang et al. 2019) from the generated ×
    reference, generated × generated and reference × reference distance matrices."""
    gg, rr = gg.copy(), rr.copy()
    np.fill_diagonal(gg, np.inf)
    np.fill_diagonal(rr, np.inf)
    coverage = len(set(gr.argmin(1))) / gr.shape[1]
    mmd = float(gr.min(0).mean())
    gen_right = (gg.min(1) < gr.min(1)).sum()  # nearest neighbour in the union is from its own set
    ref_right = (rr.min(1) < gr.min(0)).sum()
    return {"coverage": coverage, "mmd": mmd, "1-nna": float((gen_right + ref_right) / sum(gr.shape))}


def per_category(points: list[np.ndarray], asked: list[str], ref_points: list[np.ndarray],
                 ref_cats: list[str]) -> dict:
    """metrics_from within each category: the shapes offered when asked for it against its references."""
    out = {}
    for c in dict.fromkeys(ref_cats):
        gen = [p for p, a in zip(points, asked) if a == c]
        ref = [p for p, r in zip(ref_points, ref_cats) if r == c]
        if len(gen) < 2:  # no 1-NNA without two shapes; what is missing covers nothing
            out[c] = {"coverage": 0.0, "mmd": float("nan"), "1-nna": 1.0, "n": len(gen)}
            continue
        out[c] = {**metrics_from(chamfer_matrix(gen, ref), chamfer_matrix(gen, gen), chamfer_matrix(ref, ref)),
                  "n": len(gen)}
    return out


def averaged(per: dict) -> dict:
    """The mean of each metric over categories (MMD over the categories that have one)."""
    mmd = [m["mmd"] for m in per.values() if m["mmd"] == m["mmd"]]
    return {"coverage": float(np.mean([m["coverage"] for m in per.values()])),
            "mmd": float(np.mean(mmd)) if mmd else float("nan"),
            "1-nna": float(np.mean([m["1-nna"] for m in per.values()]))}


def reference_system(name: str, references: list, seed: int) -> list:
    """The procedural shapes a reference system offers for each reference shape's category."""
    names = list(data.CATEGORIES)
    if name == "ideal":
        return [data.sample_shape(seed + k, r.category, split="val") for k, r in enumerate(references)]
    if name == "wrong-category":
        return [data.sample_shape(seed + k, names[(names.index(r.category) + 1) % len(names)], split="val")
                for k, r in enumerate(references)]
    if name == "one-per-category":
        first = {c: data.sample_shape(seed + names.index(c), c, split="val") for c in names}
        return [first[r.category] for r in references]
    raise ValueError(f"unknown reference system {name!r}; known: {SYSTEMS}")


def distribution(pipe, n: int, seed: int, steps: int, guidance_scale: float, points: int = 1024,
                 resolution: int = 64, batch: int = 40, log=print) -> dict:
    """The model and the reference systems against `n` held-out references (n / 20 per category).

    Returns: {system: {"coverage", "mmd", "1-nna" (category means), "per_category", "n", "empty"}}."""
    from .train import GridCache, encode_shape

    grids = GridCache()

    def procedural_points(shapes: list, first_seed: int) -> list[np.ndarray]:
        """Each shape meshed through the model; a shape offered more than once (the collapsed
        system) is meshed once, its points sampled anew each time."""
        repeats = Counter(id(s) for s in shapes)  # ids are stable while `shapes` holds them
        kept, out = {}, []
        for k, shape in enumerate(shapes):
            mesh = kept.get(id(shape)) or delivered_mesh(pipe, encode_shape(shape, pipe.autoencoder, grids), resolution)
            if repeats[id(shape)] > 1:
                kept[id(shape)] = mesh
            out.append(surface_points(*mesh, points, first_seed + k))
        return out

    references = data.dataset(n, seed, split="val")
    ref_cats = [r.category for r in references]
    ref_pts = procedural_points(references, 0)
    results = {}

    def add(name: str, pts: list, asked: list[str], empty: int):
        per = per_category(pts, asked, ref_pts, ref_cats)
        results[name] = {**averaged(per), "per_category": per, "n": len(pts), "empty": empty}
        m = results[name]
        log(f"  {name:>18}: coverage {m['coverage']:.3f}  MMD {m['mmd']:.5f}  1-NNA {m['1-nna']:.3f}  "
            f"(n={len(pts)}, means over {len(per)} categories)")

    gen_pts, asked, empty = [], [], 0
    for start in range(0, n, batch):
        cats = ref_cats[start : start + batch]
        shapes = pipe([category_prompt(c) for c in cats], num_shapes=len(cats), num_inference_steps=steps,
                      guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(seed + 7 + start)).shapes
        for k, (c, s) in enumerate(zip(cats, shapes)):
            pts = generated_points(pipe, s, points, resolution, start + k) if len(s) else None
            if pts is None:
                empty += 1  # an empty result covers nothing; it is counted, not scored
            else:
                gen_pts.append(pts)
                asked.append(c)
    add("model", gen_pts, asked, empty)
    for k, name in enumerate(SYSTEMS):
        shapes = reference_system(name, references, seed + 1000 * (k + 1))
        add(name, procedural_points(shapes, 10_000), ref_cats, 0)
    return results
