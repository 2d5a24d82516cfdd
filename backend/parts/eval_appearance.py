"""How well the appearance reader binds colours and materials to parts, per wording.

Prompts state every attribute of held-out shapes (the "val" split) and dress them with
appearance_captions.dress in three wordings:
"train" (training phrases and frames), "heldout" (clause frames never trained on) and
"paraphrase" (also words never trained on: "crimson", "steel", "tabletop"). A part label is right
when both its colour and its material class are. Beside the reader, on the same prompts:
- "prompt ignored": every part keeps its defaults (what the model did before it read colours);
- "keywords, no binding": the first colour and material word of the training vocabulary
  anywhere in the prompt, given to every part ("a red chair with black legs": all red);
- "lexicon keywords, no binding": the same with every colour and material word the lexicon
  knows ("crimson", "steel"), so the reader's gain from binding shows apart from the lexicon's.
`appearance_items` refuses a prompt that the reader was trained on.
"""

from __future__ import annotations

import re

import numpy as np

from . import data
from .appearance_captions import COLOUR_WORDS, MATERIAL_WORDS, dress
from .appearance_reader import reader_examples
from .captions import caption_shape

WORDINGS = ("train", "heldout", "paraphrase")


def appearance_items(wording: str, n: int, seed: int, trained: set[str]) -> list[tuple[str, dict]]:
    """`n` (prompt, targets) pairs on held-out shapes, every prompt dressed.

    Raises:
        ValueError: a prompt is one the reader was trained on.
    """
    if wording not in WORDINGS:
        raise ValueError(f"wording must be one of {WORDINGS}, got {wording!r}")
    rng = np.random.default_rng([seed, WORDINGS.index(wording), 11])
    items = []
    for shape in data.dataset(n, seed, split="val"):
        look = dress([p.label for p in shape.parts], rng, wording)
        items.append((caption_shape(shape, rng, "train" if wording == "train" else wording, look=look), look.targets))
    seen = [p for p, _ in items if p in trained]
    if seen:
        raise ValueError(f"{len(seen)} {wording} prompt(s) are reader training captions, e.g. {seen[0]!r}")
    return items


def reader_training_prompts(shapes, seed: int) -> set[str]:
    """Every caption the reader trains on, given the training shapes (train.py: data.dataset(n, seed))."""
    return set(reader_examples(shapes, seed)[0])


def keyword_looks(prompt: str, labels) -> dict:
    """The no-binding baseline: the first training colour and material word, on every part."""
    words = re.findall(r"[a-z]+", prompt.lower())

    def first(vocabulary):
        found = [(words.index(w), name) for name, w in vocabulary if w in words]
        return min(found)[1] if found else None

    colour = first([(name, w) for name, (train, _) in COLOUR_WORDS.items() for w in train])
    kind = first([(name, w) for name, (train, _) in MATERIAL_WORDS.items() for forms in train for w in forms])
    return {label: (colour, kind) for label in labels}


def lexicon_keyword_looks(prompt: str, labels, lexicon) -> dict:
    """The no-binding baseline with the lexicon's words: its first colour and material, on every part."""
    found = lexicon.find_looks(prompt)
    colour = next((look.colour for look in found if look.colour), None)
    kind = next((look.kind for look in found if look.kind), None)
    return {label: (colour, kind) for label in labels}


def score(items: list[tuple[str, dict]], read: list[dict]) -> dict:
    """Share of part labels with the right colour, material and both; share of prompts all right."""
    colour = kind = both = labels = whole = 0
    for (_, targets), got in zip(items, read):
        right = [(got.get(label, (None, None))[0] == c, got.get(label, (None, None))[1] == k)
                 for label, (c, k) in targets.items()]
        colour += sum(a for a, _ in right)
        kind += sum(b for _, b in right)
        both += sum(a and b for a, b in right)
        labels += len(right)
        whole += all(a and b for a, b in right)
    p = both / max(labels, 1)
    return {"part": p, "part_se": (p * (1 - p) / max(labels, 1)) ** 0.5, "colour": colour / max(labels, 1),
            "material": kind / max(labels, 1), "prompt": whole / max(len(items), 1), "n": len(items), "parts": labels}


def appearance_accuracy(pipe, n: int, seed: int, log=print) -> dict:
    """The reader and both baselines on each wording; {} for weights without a reader."""
    if pipe.appearance is None:
        return {}
    train = pipe.config["train"]
    trained = reader_training_prompts(data.dataset(train["n_shapes"], train["seed"], split="train"), train["seed"])
    metrics = {}
    for wording in WORDINGS:
        items = appearance_items(wording, n, seed, trained)
        systems = {
            "reader": pipe.read_looks_of([p for p, _ in items], [list(t) for _, t in items]),
            "prompt ignored": [{label: (None, None) for label in t} for _, t in items],
            "keywords, no binding": [keyword_looks(p, t) for p, t in items],
            "lexicon keywords, no binding": [lexicon_keyword_looks(p, t, pipe.lexicon) for p, t in items],
        }
        for name, read in systems.items():
            m = metrics[f"appearance.{wording}.{name}"] = score(items, read)
            log(f"  {wording:>10} {name:>29}: parts {m['part']:.3f} ± {m['part_se']:.3f} (colour {m['colour']:.3f}, "
                f"material {m['material']:.3f}), whole prompt {m['prompt']:.3f} (n={m['n']}, {m['parts']} labels)")
    return metrics
