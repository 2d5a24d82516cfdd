"""Evaluate the built-in part model: `python -m backend.parts.evaluate [--weights DIR] [--write-card]`.

Prints attribute accuracy per wording split, read from the delivered meshes (eval_attributes.py),
beside the ideal (procedural shapes through the same decoder and reader), a bare-prompt and a
random-attribute baseline; colours and materials per part beside a
prompt-ignoring and a keyword baseline (eval_appearance.py); validity; coverage / MMD / 1-NNA on unpaired
sets beside reference systems (eval_distribution.py); part-completion accuracy; seconds per shape.
`--write-card` stores exactly these figures in config.json and MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import data
from .contact import components
from .decode import drop_fragments, occupancy_grid
from .eval_appearance import appearance_accuracy
from .eval_attributes import (
    SPLITS, Item, attribute_accuracy, heldout_items, ideal_baseline, random_attribute_baseline, training_captions,
)
from .eval_distribution import distribution
from .eval_reading import reading_accuracy
from .pipeline import DEFAULT_WEIGHTS, PartDiffusionPipeline, category_prompt, settle_new_shape
from .representation import PartShape
from .train import GridCache, encode_shape


@dataclass
class EvalConfig:
    seed: int = 1234
    n_attribute: int = 240  # prompts per attribute split (120 left a ±2.5% sampling error)
    n_distribution: int = 318  # generated and reference shapes for coverage / MMD / 1-NNA, 6 per category
    n_validity: int = 212  # 4 per category
    n_completion: int = 40
    n_appearance: int = 240  # dressed prompts per wording
    n_timing: int = 5
    steps: int = 25
    guidance_scale: float = 1.5
    points: int = 1024  # surface samples per shape for Chamfer
    resolution: int = 64  # decode grid for validity and Chamfer (timing uses 128)
    batch: int = 40


def occupancy_components(pipe, shape: PartShape, resolution: int, fragments: bool = False) -> int:
    """Connected solids of the occupancy the decoder meshes (without fragments, as `decode_shape`
    meshes it; `fragments=True` counts them too)."""
    values, owner = occupancy_grid(shape, pipe.autoencoder, resolution)
    return components((values if fragments else drop_fragments(values, owner)).numpy() > 0)[1]


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


def evaluate(pipe: PartDiffusionPipeline, cfg: EvalConfig = EvalConfig(), log=print, attributes_only: bool = False) -> dict:
    metrics = {"config": asdict(cfg)}

    # 1. Attribute accuracy per wording split, read from the delivered meshes, beside baselines
    trained = training_captions(pipe.config["train"]["n_shapes"], pipe.config["train"]["seed"])
    log(f"attribute accuracy (n prompts per split, every attribute stated; read from the {cfg.resolution}³ mesh):")
    split_items = {}
    for k, split in enumerate(SPLITS):
        items = split_items[split] = heldout_items(split, cfg.n_attribute, cfg.seed, trained)
        m = attribute_accuracy(pipe, items, cfg.resolution, cfg.seed + k, cfg.steps, cfg.guidance_scale, cfg.batch)
        metrics[f"attributes.{split}"] = m
        log(f"  {split:>22}: {_accuracy_line(m)}")
        pipe.hold_counts = False  # the ablation: the stated counts only in the text, as before slot_constraints.py
        try:
            m = attribute_accuracy(pipe, items, cfg.resolution, cfg.seed + k, cfg.steps, cfg.guidance_scale, cfg.batch)
        finally:
            pipe.hold_counts = True
        metrics[f"attributes.counts not held.{split}"] = m
        log(f"  {'counts not held':>22}: {_accuracy_line(m)}")
        if split == "unseen-wording":
            bare = [Item(category_prompt(i.category), i.category, i.stated) for i in items]
            base = {"procedural shapes (ideal)": ideal_baseline(pipe, items, cfg.resolution, cfg.seed),
                    "bare-category prompt": attribute_accuracy(pipe, bare, cfg.resolution, cfg.seed + k, cfg.steps,
                                                              cfg.guidance_scale, cfg.batch),
                    "random attributes": random_attribute_baseline(items, cfg.seed)}
            for name, b in base.items():
                metrics[f"attributes.baseline.{name}"] = b
                log(f"  {'baseline: ' + name:>22}: {_accuracy_line(b)}")

    # 1b. The phrase reader alone, text only, beside a reader without its rules
    log("phrase reading (text only):")
    metrics.update(reading_accuracy(pipe.reader, split_items, cfg.n_attribute, cfg.seed, log))

    # 1c. Colours and materials per part, beside a prompt-ignoring and a keyword baseline
    log(f"colours and materials ({cfg.n_appearance} held-out prompts per wording):")
    metrics.update(appearance_accuracy(pipe, cfg.n_appearance, cfg.seed, log))

    if attributes_only:
        return metrics

    # 2. Validity of the shapes the pipeline returns, and the distribution against held-out shapes
    prompts = [category_prompt(c) for c in list(data.CATEGORIES) * (cfg.n_validity // len(data.CATEGORIES))]
    raw = pipe(prompts, num_shapes=len(prompts), num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
               generator=torch.Generator().manual_seed(cfg.seed + 2), attach_parts=False).shapes
    metrics["validity_before_attaching"] = _validity(pipe, raw, cfg.resolution)
    settled = [settle_new_shape(g, pipe.autoencoder)[0] if len(g) else g for g in raw]  # what the pipeline returns
    metrics["validity"] = _validity(pipe, settled, cfg.resolution)
    metrics["validity_with_fragments"] = _validity(pipe, settled, cfg.resolution, fragments=True)
    log(f"validity (one connected solid, n={len(prompts)}): {metrics['validity']:.3f} "
        f"({metrics['validity_before_attaching']:.3f} before floating parts are attached, "
        f"{metrics['validity_with_fragments']:.3f} counting the fragments the mesh leaves out)")
    log(f"distribution against {cfg.n_distribution} held-out shapes, category-level prompts, unpaired "
        "(1-NNA 0.5 = indistinguishable):")
    metrics["distribution"] = distribution(pipe, cfg.n_distribution, cfg.seed + 3, cfg.steps, cfg.guidance_scale,
                                           cfg.points, cfg.resolution, cfg.batch, log)

    # 3. Part completion
    metrics["completion_accuracy"] = completion_accuracy(pipe, data.dataset(cfg.n_completion, cfg.seed, "val"), cfg)
    log(f"part completion accuracy (n={cfg.n_completion}): {metrics['completion_accuracy']:.3f}")

    # 4. Speed
    metrics["seconds_per_shape_128"] = seconds_per_shape(pipe, cfg)
    log(f"seconds per shape (prompt → mesh at 128^3, {cfg.steps} steps, {torch.get_num_threads()} threads): "
        f"{metrics['seconds_per_shape_128']:.2f}")
    return metrics


def _accuracy_line(m: dict) -> str:
    return (f"attributes {m['attribute']:.3f} ± {m['attribute_se']:.3f}, whole shape {m['shape']:.3f} ± "
            f"{m['shape_se']:.3f} (n={m['n']}); most missed: {m['worst']}")


def _validity(pipe, shapes: list[PartShape], resolution: int, fragments: bool = False) -> float:
    return float(np.mean([bool(len(g)) and occupancy_components(pipe, g, resolution, fragments) == 1 for g in shapes]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a few shapes only (smoke test)")
    parser.add_argument("--write-card", action="store_true", help="store the figures in config.json and MODEL_CARD.md")
    parser.add_argument("--attributes-only", action="store_true", help="only the attribute splits (an ablation)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = PartDiffusionPipeline.from_pretrained(args.weights)
    cfg = EvalConfig(n_attribute=20, n_distribution=20, n_validity=20, n_completion=3, n_timing=1, batch=20,
                     n_appearance=20) \
        if args.quick else EvalConfig()
    if args.attributes_only and args.write_card:
        parser.error("--write-card needs the whole evaluation")
    metrics = evaluate(pipe, cfg, attributes_only=args.attributes_only)
    if args.write_card:
        from .model_card import update_metrics

        update_metrics(args.weights, _rounded(metrics))


def _rounded(value):
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value


if __name__ == "__main__":
    main()
