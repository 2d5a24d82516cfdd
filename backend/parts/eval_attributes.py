"""Attribute accuracy of the built-in model, read from the meshes it delivers, per wording split.

Splits (each from shapes never trained on, each reported with its n and standard error):
- "verbatim-seen": training shapes prompted with their own training captions (a ceiling, not a
  result: these exact strings were trained on);
- "unseen-wording": held-out shapes of seen attribute combinations, captioned with sentence frames
  never used in training (captions.HELDOUT_TEMPLATES);
- "paraphrase": held-out shapes of seen combinations, captioned with held-out frames, nouns and
  phrases (captions.PARAPHRASE_TEMPLATES, the paraphrase phrases);
- "unseen-combination": attribute combinations excluded from training, in training wording;
- "with-colours": held-out shapes in unseen wordings that also state colours and materials in
  held-out appearance frames (appearance_captions.dress): the shapes must not suffer from them.
`heldout_items` refuses any caption outside "verbatim-seen" that a training caption equals.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from backend.errors import GenerationFailed

from . import data
from .appearance_captions import dress
from .captions import caption_shape
from .representation import PartShape

SPLITS = ("verbatim-seen", "unseen-wording", "paraphrase", "unseen-combination", "with-colours")


@dataclass(frozen=True)
class Item:
    prompt: str
    category: str
    stated: dict  # the attributes the prompt states, all of the shape's


def training_captions(n_shapes: int, seed: int) -> set[str]:
    """Every caption the model was trained on (train.py trains on data.dataset(n, seed)'s captions)."""
    return {c for s in data.dataset(n_shapes, seed, split="train") for c in s.captions}


def heldout_items(split: str, n: int, seed: int, trained: set[str]) -> list[Item]:
    """`n` prompts of a split, cycling through the categories, stating every attribute.

    Raises:
        ValueError: a prompt of a held-out split is a training caption (the split would not be held out).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    if split == "verbatim-seen":
        shapes = data.dataset(n, 0, split="train")  # the first training shapes, with a training caption
        full = data.CAPTION_KINDS.count("all")  # the first captions state every attribute
        return [Item(s.captions[int(rng.integers(full))], s.category, dict(s.attributes)) for s in shapes]
    shapes = data.dataset(n, seed, split="unseen" if split == "unseen-combination" else "val")
    wording = {"unseen-wording": "heldout", "paraphrase": "paraphrase", "unseen-combination": "train",
               "with-colours": "heldout"}[split]
    looks = [dress([p.label for p in s.parts], rng, "heldout") if split == "with-colours" else None for s in shapes]
    items = [Item(caption_shape(s, rng, wording, look=look), s.category, dict(s.attributes))
             for s, look in zip(shapes, looks)]
    seen = [i.prompt for i in items if i.prompt in trained]
    if seen:
        raise ValueError(f"{len(seen)} {split} prompt(s) are training captions, e.g. {seen[0]!r}")
    return items


def delivered_parts(pipe, shape: PartShape, resolution: int) -> list:
    """The parts the delivered mesh shows, as data.Part: a part with no faces in the mesh is gone;
    a shown part's centre and half extents are its faces' box in the part's own frame, so a part
    decoded thinner or shorter than its layout reads as it looks. Primitives are guessed from the
    part latents (the attribute readers tell round from square by them)."""
    try:
        meshes = {m.name: m for m in pipe.decode(shape, resolution)}
    except GenerationFailed:
        return []
    guesses = pipe.guess_primitives(shape.latents) if len(shape) else []
    origin = shape.origin.double().numpy()
    parts = []
    for i, (name, label) in enumerate(zip(shape.names, shape.labels)):
        if name not in meshes:
            continue
        rotation = shape.rotations[i].double().numpy()  # columns: the part's axes
        center = shape.centers[i].double().numpy()
        local = (meshes[name].vertices.astype(np.float64) + origin - center) @ rotation
        lo, hi = local.min(0), local.max(0)
        primitive, params = guesses[i]
        parts.append(data.Part(name=name, label=label, primitive=primitive, params=dict(params),
                               center=center + rotation @ ((lo + hi) / 2), rotation=rotation,
                               half_extents=np.maximum((hi - lo) / 2, 1e-4)))
    return parts


def score(items: list[Item], read: list[dict]) -> dict:
    """Per-attribute and per-shape accuracy with binomial standard errors, and the misses counted
    by (category, attribute) so a reader sees where the model fails."""
    hits, total, whole, misses = 0, 0, 0, Counter()
    for item, got in zip(items, read):
        ok = {k: str(got.get(k)) == str(v) for k, v in item.stated.items()}
        hits, total, whole = hits + sum(ok.values()), total + len(ok), whole + all(ok.values())
        misses.update(f"{item.category}.{k}" for k, right in ok.items() if not right)
    p, q = hits / max(total, 1), whole / max(len(items), 1)
    return {"attribute": p, "attribute_se": (p * (1 - p) / max(total, 1)) ** 0.5, "shape": q,
            "shape_se": (q * (1 - q) / max(len(items), 1)) ** 0.5, "n": len(items), "attributes": total,
            "worst": dict(misses.most_common(5))}


def attribute_accuracy(pipe, items: list[Item], resolution: int, seed: int, steps: int, guidance_scale: float,
                       batch: int = 40) -> dict:
    """Generate a shape per item, decode it and read its attributes from the delivered mesh."""
    read = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        shapes = pipe([i.prompt for i in chunk], num_shapes=len(chunk), num_inference_steps=steps,
                      guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(seed + start)).shapes
        for item, shape in zip(chunk, shapes):
            read.append(data.infer_attributes(item.category, delivered_parts(pipe, shape, resolution)))
    return score(items, read)


def ideal_baseline(pipe, items: list[Item], resolution: int, seed: int) -> dict:
    """What a perfect generator scores on the same reader: for each item a procedural shape with
    exactly its stated attributes, through the model's own autoencoder and decoder. The ceiling
    of the figures above (a part the decoder makes too thin to mesh costs it here too)."""
    from .train import GridCache, encode_shape

    grids = GridCache()
    shapes = [encode_shape(data.sample_shape(seed + k, item.category, item.stated), pipe.autoencoder, grids)
              for k, item in enumerate(items)]
    return score(items, [data.infer_attributes(item.category, delivered_parts(pipe, shape, resolution))
                         for item, shape in zip(items, shapes)])


def random_attribute_baseline(items: list[Item], seed: int) -> dict:
    """What a system that ignores the attributes scores on the same reader: procedural shapes of
    the right category with attributes drawn at random. The model must sit well above it."""
    return score(items, [data.infer_attributes(item.category, data.sample_shape(seed + k, item.category).parts)
                         for k, item in enumerate(items)])
