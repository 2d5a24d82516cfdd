"""Evaluate the built-in part model: `python -m backend.parts.evaluate [--weights DIR] [--write-card]`.

Prints attribute accuracy (seen combinations with held-out captions; unseen combinations and
paraphrases), validity, coverage / MMD / 1-NNA by Chamfer distance against held-out procedural
shapes, part-completion accuracy and seconds per shape.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from backend.errors import GenerationFailed

from . import data
from .contact import components
from .decode import drop_fragments, occupancy_grid
from .pipeline import DEFAULT_WEIGHTS, PartDiffusionPipeline, settle_new_shape
from .representation import PartShape
from .train import GridCache, encode_shape


@dataclass
class EvalConfig:
    seed: int = 1234
    n_attribute: int = 240  # prompts per attribute split (120 left a ±2.5% sampling error)
    n_distribution: int = 60  # generated vs reference shapes for coverage / MMD / 1-NNA
    n_completion: int = 40
    n_timing: int = 5
    steps: int = 25
    guidance_scale: float = 1.5
    points: int = 512  # surface samples per shape for Chamfer
    resolution: int = 64  # decode grid for validity and Chamfer (timing uses 128)
    batch: int = 40


def to_data_parts(pipe: PartDiffusionPipeline, shape: PartShape) -> list:
    """Generated parts as data.Part, with a primitive guessed from the nearest training latent."""
    guesses = pipe.guess_primitives(shape.latents) if len(shape) else []
    rot = shape.rotations.double().numpy()
    return [data.Part(name=n, label=l, primitive=prim, params=dict(params),
                      center=shape.centers[i].double().numpy(), rotation=rot[i],
                      half_extents=shape.half_extents[i].double().numpy())
            for i, (n, l, (prim, params)) in enumerate(zip(shape.names, shape.labels, guesses))]


def generate_batch(pipe, prompts: list[str], cfg: EvalConfig, seed: int, attach_parts: bool = True) -> list[PartShape]:
    shapes = []
    for i in range(0, len(prompts), cfg.batch):
        chunk = prompts[i : i + cfg.batch]
        out = pipe(chunk, num_shapes=len(chunk), num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                   generator=torch.Generator().manual_seed(seed + i), attach_parts=attach_parts)
        shapes += out.shapes
    return shapes


def attribute_accuracy(pipe, items: list[tuple[str, str, dict]], cfg: EvalConfig, seed: int) -> dict:
    """items: (prompt, category, attributes the prompt states). Returns per-attribute and per-shape
    accuracy, and the standard error of the per-attribute figure (binomial)."""
    shapes = generate_batch(pipe, [p for p, _, _ in items], cfg, seed)
    hits, total, whole = 0, 0, 0
    for shape, (_, category, wanted) in zip(shapes, items):
        try:
            got = data.infer_attributes(category, to_data_parts(pipe, shape))
        except Exception:  # a generated shape missing a part the reader needs counts as wrong  # noqa: BLE001
            got = {}
        ok = [str(got.get(k)) == str(v) for k, v in wanted.items()]
        hits, total, whole = hits + sum(ok), total + len(ok), whole + all(ok)
    p = hits / max(total, 1)
    return {"attribute": p, "se": (p * (1 - p) / max(total, 1)) ** 0.5, "shape": whole / max(len(items), 1),
            "n": len(items)}


def stated_attributes(shape, caption: str) -> dict:
    """The attributes a caption states: data's first two captions and its paraphrases state them all."""
    return dict(shape.attributes)


def occupancy_components(pipe, shape: PartShape, resolution: int, fragments: bool = False) -> int:
    """Connected solids of the occupancy the decoder meshes (without fragments, as `decode_shape`
    meshes it; `fragments=True` counts them too)."""
    values, owner = occupancy_grid(shape, pipe.autoencoder, resolution)
    return components((values if fragments else drop_fragments(values, owner)).numpy() > 0)[1]


def surface_points(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int) -> np.ndarray:
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts, np.float32)


def generated_points(pipe, shape: PartShape, cfg: EvalConfig, seed: int) -> np.ndarray:
    parts = pipe.decode(shape, cfg.resolution)
    offset, verts, faces = 0, [], []
    for p in parts:
        verts.append(p.vertices + shape.origin.numpy())  # back to the shape frame
        faces.append(p.faces + offset)
        offset += len(p.vertices)
    return surface_points(np.concatenate(verts), np.concatenate(faces), cfg.points, seed)


def chamfer_matrix(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Symmetric Chamfer distance (mean squared nearest-neighbour distance, both ways). Returns (len(a), len(b))."""
    out = np.zeros((len(a), len(b)))
    tb = [torch.from_numpy(x) for x in b]
    for i, x in enumerate(a):
        tx = torch.from_numpy(x)
        for j, y in enumerate(tb):
            d = torch.cdist(tx, y).pow(2)
            out[i, j] = float(d.min(1).values.mean() + d.min(0).values.mean())
    return out


def distribution_metrics(gen: list[np.ndarray], ref: list[np.ndarray]) -> dict:
    """Coverage, MMD (Achlioptas et al. 2018) and 1-NNA (Yang et al. 2019) by Chamfer distance."""
    gr = chamfer_matrix(gen, ref)
    gg, rr = chamfer_matrix(gen, gen), chamfer_matrix(ref, ref)
    np.fill_diagonal(gg, np.inf)
    np.fill_diagonal(rr, np.inf)
    coverage = len(set(gr.argmin(1))) / len(ref)
    mmd = float(gr.min(0).mean())
    # 1-NNA: each shape's nearest neighbour in the union should come from the other set half the time
    gen_right = (gg.min(1) < gr.min(1)).sum()
    ref_right = (rr.min(1) < gr.min(0)).sum()
    nna = (gen_right + ref_right) / (len(gen) + len(ref))
    return {"coverage": coverage, "mmd": mmd, "1-nna": float(nna)}


def completion_accuracy(pipe, shapes, cfg: EvalConfig, tol: float = 0.1) -> float:
    """Remove one part of a held-out shape, complete it (RePaint); success when a part with the same
    label comes back with its centre within `tol` and its half extents within 30%."""
    grids, ok = GridCache(), 0
    rng = np.random.default_rng(cfg.seed)
    for k, s in enumerate(shapes):
        full = encode_shape(s, pipe.autoencoder, grids)
        drop = int(rng.integers(len(full)))
        keep = [n for i, n in enumerate(full.names) if i != drop]
        out = pipe.complete(full, keep, prompt=s.captions[0], seed=k, steps=cfg.steps, guidance_scale=cfg.guidance_scale)
        target_c, target_h = full.centers[drop], full.half_extents[drop]
        for i in range(len(keep), len(out)):
            if out.labels[i] == full.labels[drop] and float((out.centers[i] - target_c).norm()) < tol and \
                    bool(((out.half_extents[i] - target_h).abs() <= 0.3 * target_h + 0.01).all()):
                ok += 1
                break
    return ok / max(len(shapes), 1)


def seconds_per_shape(pipe, cfg: EvalConfig) -> float:
    prompts = ["a chair with four legs", "a round table", "a rocket with four fins", "a tree", "a floor lamp"]
    pipe("warm up", num_inference_steps=2)
    t = time.perf_counter()
    for i in range(cfg.n_timing):
        pipe(prompts[i % len(prompts)], num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
             generator=torch.Generator().manual_seed(i), output_type="mesh", resolution=128)
    return (time.perf_counter() - t) / cfg.n_timing


def evaluate(pipe: PartDiffusionPipeline, cfg: EvalConfig = EvalConfig(), log=print) -> dict:
    rng = np.random.default_rng(cfg.seed)
    metrics = {}
    val = data.dataset(max(cfg.n_attribute, cfg.n_distribution, cfg.n_completion), cfg.seed, split="val")
    unseen = data.dataset(cfg.n_attribute // 2, cfg.seed, split="unseen")

    # 1. Attribute accuracy: held-out captions of seen combinations
    seen_items = []
    for s in val[: cfg.n_attribute]:
        cap = s.captions[int(rng.integers(2))]
        seen_items.append((cap, s.category, stated_attributes(s, cap)))
    metrics["attribute_accuracy_seen"] = attribute_accuracy(pipe, seen_items, cfg, cfg.seed)
    log(f"attribute accuracy, seen combinations: {metrics['attribute_accuracy_seen']}")
    # ... and unseen combinations + paraphrases
    hard_items = []
    for s in unseen:
        cap = s.captions[int(rng.integers(2))]
        hard_items.append((cap, s.category, stated_attributes(s, cap)))
    for s in val[: cfg.n_attribute - len(hard_items)]:
        pool = s.paraphrases or s.captions[:2]
        cap = pool[int(rng.integers(len(pool)))]
        hard_items.append((cap, s.category, stated_attributes(s, cap)))
    metrics["attribute_accuracy_unseen_paraphrase"] = attribute_accuracy(pipe, hard_items, cfg, cfg.seed + 1)
    log(f"attribute accuracy, unseen combinations + paraphrases: {metrics['attribute_accuracy_unseen_paraphrase']}")

    # 2. Validity and distribution metrics against held-out procedural shapes
    ref_shapes = val[: cfg.n_distribution]
    raw = generate_batch(pipe, [s.captions[0] for s in ref_shapes], cfg, cfg.seed + 2, attach_parts=False)
    metrics["validity_before_attaching"] = float(np.mean([len(g) and occupancy_components(pipe, g, cfg.resolution) == 1
                                                          for g in raw]))
    gen = [settle_new_shape(g, pipe.autoencoder)[0] if len(g) else g for g in raw]  # what the pipeline returns
    metrics["validity"] = float(np.mean([len(g) and occupancy_components(pipe, g, cfg.resolution) == 1 for g in gen]))
    metrics["validity_with_fragments"] = float(np.mean([len(g) and occupancy_components(pipe, g, cfg.resolution, True) == 1
                                                        for g in gen]))
    log(f"validity (one connected shape): {metrics['validity']:.3f} "
        f"({metrics['validity_before_attaching']:.3f} before floating parts are attached, "
        f"{metrics['validity_with_fragments']:.3f} counting the fragments the mesh leaves out)")
    gen_pts = []
    for i, g in enumerate(gen):
        try:
            gen_pts.append(generated_points(pipe, g, cfg, i))
        except GenerationFailed:  # no surface: already counted as invalid, and it covers nothing
            pass
    ref_pts = []
    for i, s in enumerate(ref_shapes):
        v, f, _ = data.shape_to_mesh(s, cfg.resolution)
        ref_pts.append(surface_points(np.asarray(v), np.asarray(f), cfg.points, i))
    metrics.update(distribution_metrics(gen_pts, ref_pts))
    log(f"coverage {metrics['coverage']:.3f}  MMD {metrics['mmd']:.5f}  1-NNA {metrics['1-nna']:.3f}")

    # 3. Part completion
    metrics["completion_accuracy"] = completion_accuracy(pipe, val[: cfg.n_completion], cfg)
    log(f"part completion accuracy: {metrics['completion_accuracy']:.3f}")

    # 4. Speed
    metrics["seconds_per_shape_128"] = seconds_per_shape(pipe, cfg)
    log(f"seconds per shape (prompt → mesh at 128^3, {cfg.steps} steps, {torch.get_num_threads()} threads): "
        f"{metrics['seconds_per_shape_128']:.2f}")
    return metrics


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a few shapes only (smoke test)")
    parser.add_argument("--write-card", action="store_true", help="store the figures in config.json and MODEL_CARD.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = PartDiffusionPipeline.from_pretrained(args.weights)
    cfg = EvalConfig(n_attribute=8, n_distribution=6, n_completion=3, n_timing=1, batch=8) if args.quick else EvalConfig()
    metrics = evaluate(pipe, cfg)
    if args.write_card:
        from .model_card import update_metrics

        rounded = {k: ({kk: round(vv, 4) for kk, vv in v.items()} if isinstance(v, dict) else round(float(v), 4))
                   for k, v in metrics.items()}
        update_metrics(args.weights, rounded)


if __name__ == "__main__":
    main()
