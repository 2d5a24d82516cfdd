"""The part counts a prompt states, held in the layout while it is sampled.

Each slot of a category's template means one part ("leg" ×5: the first three filled is three
legs), so a stated count is a statement about which slots exist. Conditioned on text alone, the
layout denoiser follows counts it saw together in training but drops some in combinations it
never saw ("a single bed with a footboard": every single bed it learned from had none). When the
phrase reader has read the attribute values, the existence and label features of the slots those
values decide are held: at every step the denoiser's clean estimate takes them before the DDIM
step (`PartDiffusionPipeline._denoise`), and everything else (where each part goes, its size, the
other parts) is denoised as before. Replacing them by freshly noised values after each step
instead (RePaint's way, which part completion uses for the parts it keeps) scored the same but
lost a wheel of an office chair inside another part more often (5 of 20 shapes against 3 of 20).
An edit or a completion holds them in the slots it regenerates ("three legs" for the legs of a
four-legged chair); the parts it keeps stay as they are, and a mix (SDEdit from two shapes)
holds none.

Which counts a value decides is learned from the procedural training shapes, never from a
held-out combination: a label's count is decided by an attribute when every value of that
attribute fixes it and the values do not all fix the same count ("legs: 3" → three legs; a
double bed has a footboard or not, so "size" decides nothing about footboards). The table ships
as decided_counts.json (a category's first prompt would otherwise spend up to 0.4 s counting);
`python -m backend.parts.slot_constraints` writes it again after the categories change.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import torch

from . import data
from .diffusion import SlotCodec

PATH = Path(__file__).with_name("decided_counts.json")
# training-split shapes per attribute value: a count that varies is seen to vary (24 and 96 gave
# the same table for every category)
SAMPLES = 64


def decided_counts(category: str) -> dict[tuple[str, object], dict[str, int]]:
    """{(attribute, value): {label: count}} for the labels whose count the attribute decides,
    from the shipped table (counted here for a category it does not hold)."""
    table = _shipped()
    return table[category] if category in table else _counted(category)


@functools.lru_cache(maxsize=None)  # only categories the shipped table lacks: bounded by the categories
def _counted(category: str) -> dict[tuple[str, object], dict[str, int]]:
    return count_decided(category)


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, dict[tuple[str, object], dict[str, int]]]:
    if not PATH.is_file():
        return {}
    rows = json.loads(PATH.read_text())
    return {category: {(attribute, value): counts for attribute, value, counts in entries}
            for category, entries in rows.items()}


def count_decided(category: str, samples: int = SAMPLES) -> dict[tuple[str, object], dict[str, int]]:
    """`decided_counts` counted from `samples` training-split shapes per attribute value."""
    out: dict[tuple[str, object], dict[str, int]] = {}
    for attribute, values in data.attribute_space(category).items():
        seen = {v: [Counter(data.part_labels(category, {attribute: v}, seed)) for seed in range(samples)] for v in values}
        labels = set().union(*(c for counts in seen.values() for c in counts))
        decided = [label for label in sorted(labels)
                   if all(len({c[label] for c in counts}) == 1 for counts in seen.values())
                   and len({counts[0][label] for counts in seen.values()}) > 1]
        for value, counts in seen.items():
            out[(attribute, value)] = {label: counts[0][label] for label in decided}
    return out


def slot_constraints(codec: SlotCodec, category: str, values: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Known layout features (S, 13+V) and their mask for the slots whose count `values`
    (attribute -> value, as read) decide: filled slots get existence and label, empty ones are
    empty through and through, as in training. None when the values decide no count. A label
    two values give different counts, or more parts than its run has slots, is left free."""
    template = codec.templates.get(category, [])
    if category not in data.CATEGORIES or not template:
        return None
    decided = decided_counts(category)
    said: dict[str, set[int]] = {}
    for attribute, value in values.items():
        for label, count in decided.get((attribute, value), {}).items():
            said.setdefault(label, set()).add(count)
    S, D = codec.max_parts, codec.layout_dim
    known, mask = torch.zeros(S, D), torch.zeros(S, D)
    for label, counts in said.items():
        run = [slot for slot, name in enumerate(template) if name == label]
        if len(counts) != 1 or next(iter(counts)) > len(run) or label not in codec.vocabulary:
            continue
        count = next(iter(counts))
        for k, slot in enumerate(run):
            if k < count:  # a part: it exists and is a `label`, its place and size are sampled
                mask[slot, 12:] = 1.0
                known[slot, 12:] = -1.0
                known[slot, 12] = known[slot, 13 + codec.vocabulary.index(label)] = 1.0
            else:  # no part: weight and labels -1, geometry zero, as `SlotCodec.encode` writes it
                mask[slot] = 1.0
                known[slot, 12:] = -1.0
    return (known, mask) if mask.any() else None


def main() -> None:
    """Write decided_counts.json for every category."""
    rows = {category: [[attribute, value, counts] for (attribute, value), counts in count_decided(category).items()]
            for category in data.CATEGORIES}
    PATH.write_text("{\n" + ",\n".join(f"{json.dumps(c)}: {json.dumps(rows[c])}" for c in sorted(rows)) + "\n}\n")
    print(f"decided counts of {len(rows)} categories -> {PATH}")


if __name__ == "__main__":
    main()
