"""Colour and material phrases for captions, with what each part should look like.

A `Look` dresses a shape caption: adjectives before the object noun ("a red wooden chair ...")
and clauses about parts (", with black metal legs", "; the top is glass"). Its `targets` say,
for every part label of the shape, the (colour, material kind) the caption states for it: what
a part's own phrase states wins, the rest comes from the whole object's ("a black wooden chair
with red legs": red wooden legs), and what no phrase states is None.

Like captions.py, three wordings: "train" phrases are the only ones trained on; "heldout" uses
new clause frames around the training words; "paraphrase" adds words never trained on
("crimson", "steel", "tabletop").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from .appearance import COLOURS, MATERIALS
from .captions import fix_articles
from .categories import GROUPS

# colour -> (training words, paraphrase words)
COLOUR_WORDS = {
    "red": (["red"], ["crimson", "scarlet"]), "orange": (["orange"], ["tangerine"]),
    "yellow": (["yellow"], ["mustard"]), "green": (["green"], ["emerald"]), "blue": (["blue"], ["navy", "azure"]),
    "purple": (["purple"], ["violet"]), "pink": (["pink"], ["rose-pink"]), "brown": (["brown"], ["chocolate"]),
    "black": (["black"], ["jet-black", "ebony"]), "white": (["white"], ["snow-white", "ivory"]),
    "grey": (["grey", "gray"], ["charcoal"]),
}
# kind -> (training (adjective, noun) forms, paraphrase forms)
MATERIAL_WORDS = {
    "wood": ([("wooden", "wood")], [("oak", "oak"), ("pine", "pine")]),
    "metal": ([("metal", "metal"), ("metallic", "metal")], [("steel", "steel"), ("iron", "iron")]),
    "plastic": ([("plastic", "plastic")], [("acrylic", "acrylic")]),
    "glass": ([("glass", "glass")], [("crystal", "crystal")]),
    "fabric": ([("fabric", "fabric"), ("cloth", "cloth")], [("velvet", "velvet"), ("linen", "linen")]),
    "stone": ([("stone", "stone")], [("marble", "marble"), ("granite", "granite")]),
    "ceramic": ([("ceramic", "ceramic")], [("porcelain", "porcelain")]),
}


def training_looks() -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """The training captions' colour words, material nouns and material words (adjectives too),
    per class: no paraphrase word."""
    return ({colour: list(train) for colour, (train, _) in COLOUR_WORDS.items()},
            {kind: sorted({noun for _, noun in train}) for kind, (train, _) in MATERIAL_WORDS.items()},
            {kind: sorted({w for forms in train for w in forms}) for kind, (train, _) in MATERIAL_WORDS.items()})


# label -> paraphrase (singular, plural) nouns; every label's training nouns are itself and its plural
PART_PARAPHRASES = {"top": ("tabletop", "tabletops"), "shade": ("lampshade", "lampshades"), "back": ("backrest", "backrests"),
                    "wheel": ("tyre", "tyres"), "seat": ("seat cushion", "seat cushions"), "roof": ("rooftop", "rooftops"),
                    "canopy": ("foliage", "foliage"), "leg": ("leg", "legs"), "shelf": ("shelf board", "shelf boards")}
PLURALS = {"shelf": "shelves", "canopy": "canopies", "body": "bodies", "foot": "feet", "leaf": "leaves"}
for _group in GROUPS:
    PLURALS.update(_group.PLURALS)

# Whole-object clauses: {noun} is the material noun form with its colour, {colour} a colour alone.
WHOLE_FRAMES = {
    "train": {"noun": [", made of {noun}", ", in {noun}", " made entirely of {noun}", ", {noun} throughout"],
              "colour": [", painted {colour}", ", all {colour}", ", {colour} all over", " in a {colour} finish"]},
    "heldout": {"noun": [", built from {noun}", ", done in {noun}", " crafted from {noun}"],
                "colour": [", coloured {colour}", ", finished in {colour}", " with a {colour} paint job"]},
}
# Part clauses: {adj} the adjective form, {noun} the noun form, {part} the part noun, {be} is/are,
# {a} "a " before a single part.
PART_FRAMES = {
    "train": [" with {a}{adj} {part}", ", with {a}{adj} {part}", " and {a}{adj} {part}", "; the {part} {be} {noun}",
              ", {a}{adj} {part}", ", where the {part} {be} {noun}", " that has {a}{adj} {part}"],
    "heldout": [", whose {part} {be} {noun}", ", the {part} in {noun}", " complete with {a}{adj} {part}",
                " - {part}: {noun}"],
}


@dataclass
class Look:
    adjectives: str = ""  # before the object noun
    clause: str = ""  # after the caption
    targets: dict = field(default_factory=dict)  # label -> (colour or None, kind or None)


def _words(rng, colour: Optional[str], kind: Optional[str], which: int) -> tuple[str, str]:
    """(adjective form, noun form) of a colour and/or material, e.g. ("black metal", "black metal")."""
    c = ""
    if colour:
        options = COLOUR_WORDS[colour][which]
        c = options[rng.integers(len(options))]
    adj = noun = ""
    if kind:
        forms = MATERIAL_WORDS[kind][which]
        adj, noun = forms[rng.integers(len(forms))]
    return " ".join(w for w in (c, adj) if w), " ".join(w for w in (c, noun) if w)


def _statement(rng) -> tuple[Optional[str], Optional[str]]:
    """A random (colour, kind): a colour alone, a material alone, or both."""
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    kind = list(MATERIALS)[rng.integers(len(MATERIALS))]
    r = rng.random()
    return (colour, None) if r < 0.4 else (None, kind) if r < 0.7 else (colour, kind)


def _part_noun(label: str, count: int, which: int) -> str:
    if which and label in PART_PARAPHRASES:
        return PART_PARAPHRASES[label][count > 1]
    return PLURALS.get(label, label + "s") if count > 1 else label


def dress(labels: list[str], rng, wording: str = "train") -> Look:
    """A random Look for a shape whose parts carry `labels` (one entry per part)."""
    if wording not in ("train", "heldout", "paraphrase"):
        raise ValueError(f"wording must be train, heldout or paraphrase, got {wording!r}")
    which = int(wording == "paraphrase")
    frames = "train" if wording == "train" else "heldout"
    counts = Counter(labels)
    look = Look(targets={label: (None, None) for label in counts})
    r = rng.random()
    whole, part_count = (r < 0.7), (0 if r < 0.4 else 1 + int(rng.random() < 0.25))
    if whole:
        colour, kind = _statement(rng)
        adj, noun = _words(rng, colour, kind, which)
        look.targets = {label: (colour, kind) for label in counts}
        if rng.random() < 0.7:
            look.adjectives = adj
        else:
            options = WHOLE_FRAMES[frames]["noun" if kind else "colour"]
            look.clause += options[rng.integers(len(options))].format(noun=noun, colour=adj)
    chosen = [list(counts)[i] for i in rng.permutation(len(counts))[:part_count]]
    for label in chosen:
        colour, kind = _statement(rng)
        adj, noun = _words(rng, colour, kind, which)
        options = PART_FRAMES[frames]
        look.clause += fix_articles(options[rng.integers(len(options))].format(
            adj=adj, noun=noun, part=_part_noun(label, counts[label], which), be="are" if counts[label] > 1 else "is",
            a="" if counts[label] > 1 else "a "))
        whole_colour, whole_kind = look.targets[label]
        look.targets[label] = (colour or whole_colour, kind or whole_kind)
    return look
