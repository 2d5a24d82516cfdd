"""Procedural, part-annotated shapes: the built-in model's training data.

Each category is a small part grammar (categories/*.py) with an attribute space; a
shape is sampled deterministically from a seed, normalised into [-0.95, 0.95]^3 and
captioned. `infer_attributes` reads the attributes back from a part list, the oracle
for "attribute accuracy" of generated shapes.
"""

import functools

import numpy as np

from .appearance_captions import dress
from .captions import caption_shape
from .categories import CATEGORIES
from .meshing import count_components, shape_to_mesh, surface_points, voxelize  # noqa: F401
from .shapes import BOUND, MAX_PARTS, PART_VOCABULARY, Part, Shape, name_parts, normalize  # noqa: F401

SPLITS = ("train", "val", "unseen")
CAPTION_KINDS = ("all", "all", "some", "none")  # a shape's training captions: the attributes each states
LOOK_RATE = 0.35  # share of training captions that also state colours or materials


def attribute_space(category: str) -> dict:
    """Attribute name -> list of allowed values for a category."""
    return {k: list(v) for k, v in CATEGORIES[category].space.items()}


def heldout_combinations(category: str) -> list:
    """Attribute combinations (partial dicts) excluded from training, for the
    "unseen combinations" evaluation; any shape whose attributes include one is held out."""
    return [dict(h) for h in CATEGORIES[category].heldout]


def is_heldout(category: str, attributes: dict) -> bool:
    """True when the attributes contain one of the category's held-out combinations."""
    return any(all(attributes.get(k) == v for k, v in h.items()) for h in CATEGORIES[category].heldout)


def _sample_attributes(rng, category, fixed, split):
    space = CATEGORIES[category].space
    for k, v in fixed.items():
        if k not in space or v not in space[k]:
            raise ValueError(f"{category}: unknown attribute {k}={v!r}; allowed: {space}")
    if split == "unseen":  # complete one held-out combination that agrees with `fixed`
        combos = [h for h in CATEGORIES[category].heldout if all(fixed.get(k, v) == v for k, v in h.items())]
        if not combos:
            raise ValueError(f"{category}: no held-out combination agrees with {fixed}")
        fixed = {**combos[rng.integers(len(combos))], **fixed}
    for _ in range(100):
        a = {k: fixed[k] if k in fixed else vals[rng.integers(len(vals))] for k, vals in space.items()}
        if split not in ("train", "val") or not is_heldout(category, a):
            return a
    raise ValueError(f"{category}: {fixed} is a held-out combination, not in split {split!r}")


def sample_shape(seed: int, category: str | None = None, attributes: dict | None = None, split: str | None = None) -> Shape:
    """Sample one procedural shape, deterministically from `seed`.

    Args:
        seed: the random seed; the same arguments always give the same shape.
        category: a key of CATEGORIES, or None for a random one.
        attributes: attribute values to fix (any subset); the rest are sampled.
        split: "train"/"val" never produce held-out combinations, "unseen" only produces
            them, None samples the whole attribute space.
    Returns:
        A Shape with named, normalised parts, its attributes and captions.
    """
    if split not in (None, *SPLITS):
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    rng = np.random.default_rng(seed)
    names = list(CATEGORIES)
    category = names[rng.integers(len(names))] if category is None else category
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {names}")
    attrs = _sample_attributes(rng, category, dict(attributes or {}), split)
    parts = normalize(name_parts(CATEGORIES[category].build(rng, attrs)))
    assert len(parts) <= MAX_PARTS, (category, len(parts))
    shape = Shape(category, attrs, parts, seed=seed)
    # Captions draw from their own stream so that wording never changes geometry.
    crng = np.random.default_rng([seed, 1])
    keys = list(attrs)
    subset = [k for k in keys if crng.random() < 0.5] or [keys[crng.integers(len(keys))]]
    said = {"all": None, "some": subset, "none": []}
    # Colours and materials from a third stream: the captions without them stay as they were.
    arng = np.random.default_rng([seed, 2])
    labels = [p.label for p in parts]
    looks = [dress(labels, arng) if arng.random() < LOOK_RATE else None for _ in CAPTION_KINDS]
    shape.captions = [caption_shape(shape, crng, keys=said[kind], look=look) for kind, look in zip(CAPTION_KINDS, looks)]
    shape.looks = [look.targets if look else {label: (None, None) for label in labels} for look in looks]
    shape.paraphrases = [caption_shape(shape, crng, "paraphrase"), caption_shape(shape, crng, "paraphrase")]
    return shape


def part_labels(category: str, fixed: dict, seed: int) -> list[str]:
    """The part labels of a training-split shape of `category` with the `fixed` attributes (the
    rest sampled from `seed`): the parts alone, without the captions sample_shape also writes."""
    rng = np.random.default_rng([seed, 5])
    return [p.label for p in CATEGORIES[category].build(rng, _sample_attributes(rng, category, dict(fixed), "train"))]


@functools.lru_cache(maxsize=32)
def category_shapes(category: str, count: int = 200) -> tuple:
    """The first `count` shapes of a category (seeds 0, 1, ...), cached: what the model's runtime
    helpers compare generated or fitted parts with."""
    return tuple(sample_shape(seed, category) for seed in range(count))


def infer_attributes(category: str, parts: list) -> dict:
    """Read a category's attributes back from a part list (counts of named parts, primitive
    kinds, proportions). Inverse of sample_shape for every sampled shape; on generated
    shapes a value may be out of the space (e.g. 2 legs), and every value is None when a
    part the reading needs (e.g. the seat) is missing.
    """
    try:
        return CATEGORIES[category].infer(parts)
    except (IndexError, KeyError, ValueError, ZeroDivisionError, FloatingPointError):  # a part the reading needs is missing
        return {k: None for k in CATEGORIES[category].space}


def dataset(n: int, seed: int = 0, split: str = "train") -> list:
    """`n` shapes cycling through the categories in order, deterministic from (seed, split).

    Train and val never contain held-out combinations; "unseen" contains only them.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    names = list(CATEGORIES)
    seeds = np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(n)
    return [sample_shape(int(s), names[i % len(names)], split=split) for i, s in enumerate(seeds)]
