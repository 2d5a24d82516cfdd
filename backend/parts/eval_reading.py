"""How well the phrase reader reads prompts, text only (no shapes), beside a reader without its rules.

- "stated right": of the attributes a prompt states, the share read as the value it states;
- "invented": of the attributes a prompt does not state, the share read as some value anyway
  (prompts that state a random subset of a held-out shape's attributes).
The reader's constants were chosen on the paraphrases of the even-numbered categories (in
captions.PHRASES order): the odd-numbered ones are reported apart as never looked at.
"""

from __future__ import annotations

import numpy as np

from . import data
from .appearance_captions import dress
from .captions import PHRASES, caption_shape
from .eval_attributes import Item
from .phrase_reader import Phrase, PhraseReader

TUNED = [c for k, c in enumerate(PHRASES) if k % 2 == 0]


class NearestValueReader:
    """The baseline: every attribute read as the value whose training phrases are nearest the
    whole prompt (plain nearest neighbour, no stretches, counts, margins or thresholds)."""

    def __init__(self, reader: PhraseReader):
        self.reader = reader

    def read(self, prompt: str, category: str) -> list[Phrase]:
        table = self.reader.table(category)
        sims = self.reader.encoder.encode([prompt], cache=False)[0] @ table.embeddings.T
        out = {}
        for r in sims.argsort(descending=True).tolist():
            a = table.attributes[r]
            if a is not None and a not in out:
                out[a] = Phrase(a, table.values[r], prompt, table.phrases[r], table.phrases[r])
        return list(out.values())


def stated_right(reader, items: list[Item]) -> tuple[float, int]:
    hits = total = 0
    for item in items:
        got = {p.attribute: str(p.value) for p in reader.read(item.prompt, item.category)}
        hits += sum(got.get(k) == str(v) for k, v in item.stated.items())
        total += len(item.stated)
    return hits / max(total, 1), total


def partial_items(n: int, seed: int, wording: str) -> list[tuple[str, str, dict, list]]:
    """(prompt, category, attributes, the keys it states) for held-out shapes stating about 40% of
    their attributes; wording "colours" is "heldout" with colours and materials dressed on."""
    rng = np.random.default_rng([seed, 7])
    out = []
    for s in data.dataset(n, seed, split="val"):
        keys = [k for k in s.attributes if rng.random() < 0.4]
        look = dress([p.label for p in s.parts], rng, "heldout") if wording == "colours" else None
        words = "heldout" if wording == "colours" else wording
        out.append((caption_shape(s, rng, words, keys=keys, look=look), s.category, dict(s.attributes), keys))
    return out


def invented(reader, items) -> tuple[float, float, int]:
    """(stated right, invented, unstated attributes) over partial prompts."""
    stated = right = unstated = read_anyway = 0
    for prompt, category, attributes, keys in items:
        got = {p.attribute: str(p.value) for p in reader.read(prompt, category)}
        for k, v in attributes.items():
            if k in keys:
                stated, right = stated + 1, right + (got.get(k) == str(v))
            else:
                unstated, read_anyway = unstated + 1, read_anyway + (k in got)
    return right / max(stated, 1), read_anyway / max(unstated, 1), unstated


def reading_accuracy(reader: PhraseReader, splits: dict[str, list[Item]], n: int, seed: int, log=print) -> dict:
    """The reader and the baseline on full prompts of `splits` (paraphrases apart by tuned and
    untouched categories) and on partial prompts."""
    out = {}
    systems = {"reader": reader, "nearest value (baseline)": NearestValueReader(reader)}
    groups = {name: items for name, items in splits.items() if name != "paraphrase"}
    para = splits.get("paraphrase", [])
    groups["paraphrase, tuned categories"] = [i for i in para if i.category in TUNED]
    groups["paraphrase, other categories"] = [i for i in para if i.category not in TUNED]
    partial = {w: partial_items(n, seed, w) for w in ("heldout", "paraphrase", "colours")}
    for system, r in systems.items():
        for name, items in groups.items():
            acc, total = stated_right(r, items)
            out[f"reading.{system}.{name}"] = {"stated": acc, "n": total}
        for wording, items in partial.items():
            acc, inv, un = invented(r, items)
            out[f"reading.{system}.partial {wording}"] = {"stated": acc, "invented": inv, "n": un}
    for key, m in out.items():
        log(f"  {key}: stated right {m['stated']:.3f}" + (f", invented {m['invented']:.3f}" if "invented" in m else "")
            + f" (n={m['n']})")
    return out
