"""Build the built-in model's noun lexicon (lexicon.json) from WordNet 3.0: which category each
English noun names, so a prompt in the artist's words ("a keg", "a turret", "a packing case")
reaches the category it means, where the sentence encoder alone knows too few rare nouns.

    python -m backend.parts.lexicon_build [--wordnet /usr/share/wordnet] [--out backend/parts/lexicon.json]

The WordNet database files come with Debian's `wordnet-base` package (or Princeton's own
release). A noun maps to a category when one of its two most frequent senses is a physical
thing (an artifact, an organism or a natural object) and is, or is a kind of (at most
MAX_DEPTH hypernym links up), a sense of one of the category's *training* nouns
(captions.NOUNS[category][0] and the training attribute nouns). No held-out paraphrase noun is
an input: what WordNet says of them is found, not taught, which is why the paraphrase split
stays held out (tests/backend/test_parts_lexicon.py checks the inputs). The lexicon also holds,
for each word of the training attribute phrases, the adjectives WordNet calls its opposites
("short": "long", "extended", ...), which the phrase reader never matches with it; and the
colour and material each colour or material noun names ("crimson": red, "steel": metal,
"mahogany": brown wood), found the same way from the training colour and material words alone.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

MAX_DEPTH = 3  # hypernym links from a noun's sense up to a category's sense
SENSES = 2  # a noun's most frequent senses considered (a rare sense must not decide: "wheel" is a bicycle only in slang)
ANCHOR_SENSES = 3  # a training noun's first physical sense among these anchors its category ("car": the automobile, not the railway car)
PHYSICAL = ("artifact", "organism", "natural object")  # first senses of these: the roots of physical things
# ... and of other things a prompt may ask for that no category is: "a pizza", "a dragon"
OTHER_ROOTS = ("food", "imaginary being")
# A colour or material sense of a word is often not its first ("emerald" the gem, then the colour;
# "pine" the tree, then its wood): a word's LOOK_SENSES most frequent senses are considered.
LOOK_SENSES = 3
OUT = Path(__file__).with_name("lexicon.json")
NOTICE = ("Derived from WordNet 3.0. WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. "
          "THIS SOFTWARE AND DATABASE IS PROVIDED \"AS IS\" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR "
          "WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO "
          "REPRESENTATIONS OR WARRANTIES OF MERCHANTABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF "
          "THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, "
          "TRADEMARKS OR OTHER RIGHTS.")


class WordNetNouns:
    """The noun part of a WordNet database folder: synsets' lemmas and hypernyms, and each
    lemma's senses in WordNet's frequency order (its `data.noun` and `index.noun` formats)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.lemmas: dict[str, list[str]] = {}
        self.hypernyms: dict[str, list[str]] = {}
        for line in (folder / "data.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):  # the licence header
                continue
            fields = line.split(" | ")[0].split()
            offset, count = fields[0], int(fields[3], 16)
            self.lemmas[offset] = [fields[4 + 2 * k].lower().replace("_", " ") for k in range(count)]
            at = 4 + 2 * count
            pointers = int(fields[at])
            self.hypernyms[offset] = [fields[at + 1 + 4 * k + 1] for k in range(pointers)
                                      if fields[at + 1 + 4 * k] in ("@", "@i")]
        self.senses: dict[str, list[str]] = {}
        for line in (folder / "index.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split()
            count = int(fields[2])
            self.senses[fields[0].lower().replace("_", " ")] = fields[-count:]
        self.exceptions: dict[str, str] = {}  # irregular plurals: "knives" -> "knife"
        path = folder / "noun.exc"
        if path.is_file():
            for line in path.read_text(encoding="latin-1").splitlines():
                words = line.split()
                if len(words) >= 2:
                    self.exceptions.setdefault(words[0].replace("_", " "), words[1].replace("_", " "))

    def up(self, offset: str, depth: int) -> dict[str, int]:
        """`offset` and its hypernyms up to `depth` links, each with its distance."""
        seen, frontier = {offset: 0}, [offset]
        for d in range(1, depth + 1):
            frontier = [h for o in frontier for h in self.hypernyms.get(o, ()) if h not in seen]
            for h in frontier:
                seen.setdefault(h, d)
        return seen

    def is_physical(self, offset: str, roots: set[str]) -> bool:
        return any(o in roots for o in self.up(offset, 64))


class WordNetAdjectives:
    """The adjective part of a WordNet database folder (`data.adj`, `index.adj`, `adj.exc`):
    which adjectives are opposites. WordNet pairs head adjectives as antonyms ("long"/"short")
    and hangs similar ones on each head as satellites ("extended", "lengthy" on "long"); two words
    are opposed when, among the heads of each one's SENSES most frequent senses, one is an
    antonym of the other's (a rare sense must not decide: "back" is "overdue" only in "back pay"),
    or an antonym's "see also" head: "low" is opposed to "tall", as "high" is tall's "see also"
    and low's antonym (MiniLM puts "a low cylinder" next to "a tall cylinder")."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.head: dict[str, set[str]] = {}  # synset -> its head synsets (itself for a head)
        self.antonyms: dict[str, set[str]] = defaultdict(set)  # head synset -> its antonym heads
        self.see_also: dict[str, set[str]] = defaultdict(set)  # head synset -> the heads it says "see also" of
        for line in (folder / "data.adj").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            offset, kind, count = fields[0], fields[2], int(fields[3], 16)
            at = 4 + 2 * count
            pointers = [(fields[at + 1 + 4 * k], fields[at + 2 + 4 * k]) for k in range(int(fields[at]))]
            if kind == "a":
                self.head[offset] = {offset}
                self.antonyms[offset] |= {target for symbol, target in pointers if symbol == "!"}
                self.see_also[offset] |= {target for symbol, target in pointers if symbol == "^"}
            else:  # a satellite: its head is the synset it is similar to
                self.head[offset] = {target for symbol, target in pointers if symbol == "&"}
        self.heads: dict[str, set[str]] = {}  # word -> the heads of its most frequent senses
        for line in (folder / "index.adj").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split()
            senses = fields[-int(fields[2]):][:SENSES]
            self.heads[fields[0].replace("_", " ")] = {h for o in senses for h in self.head.get(o, ())}
        self.forms: dict[str, set[str]] = defaultdict(set)  # base -> irregular forms ("far": "farther")
        path = folder / "adj.exc"
        if path.is_file():
            for line in path.read_text(encoding="latin-1").splitlines():
                words = line.split()
                if len(words) >= 2:
                    self.forms[words[1]].add(words[0])

    def opposites(self, word: str) -> set[str]:
        """Every adjective (with its irregular forms) opposed to `word`."""
        against = {a for head in self.heads.get(word, ()) for a in self.antonyms.get(head, ())}
        against |= {s for a in against for s in self.see_also.get(a, ())}
        words = {w for w, heads in self.heads.items() if heads & against}
        return words | {form for w in words for form in self.forms.get(w, ())}


def opposites(adjectives: WordNetAdjectives, phrase_words: set[str]) -> dict[str, list[str]]:
    """{word of a training phrase: the adjectives opposed to it} ("short": "long", "extended", ...),
    for the words that have any."""
    table = {word: sorted(adjectives.opposites(word)) for word in sorted(phrase_words)}
    return {word: words for word, words in table.items() if words}


def build(wordnet: WordNetNouns, training_nouns: dict[str, list[str]]) -> dict[str, object]:
    """The lexicon: {"nouns": {noun: category}, "plurals": {irregular plural: noun}, "training":
    [the training nouns], "kinds": {category: [the categories that are kinds of it]} ("tower":
    a lighthouse is one), "others": [one-word nouns whose first sense is a physical thing of no
    category, or food or an imaginary being (OTHER_ROOTS)]}.

    Args:
        wordnet: The database.
        training_nouns: Category -> the nouns its training captions use (the only anchors).
    """
    roots = {wordnet.senses[word][0] for word in PHYSICAL if word in wordnet.senses}
    anchors: dict[str, set[str]] = defaultdict(set)  # sense -> categories it is a sense of
    for category, nouns in training_nouns.items():
        for noun in nouns:
            physical = [o for o in wordnet.senses.get(noun, [])[:ANCHOR_SENSES] if wordnet.is_physical(o, roots)]
            if physical:
                anchors[physical[0]].add(category)
    kinds: dict[str, set[str]] = defaultdict(set)  # category -> the categories that are kinds of it
    for offset, categories in anchors.items():
        for up in wordnet.up(offset, MAX_DEPTH):
            for general in anchors.get(up, ()):
                kinds[general] |= categories - {general}
    nouns: dict[str, str] = {}
    for lemma, offsets in wordnet.senses.items():
        best = None  # (sense rank, distance) -> categories
        for rank, offset in enumerate(offsets[:SENSES]):
            if not wordnet.is_physical(offset, roots):
                continue
            for up, distance in wordnet.up(offset, MAX_DEPTH).items():
                for category in anchors.get(up, ()):
                    key = (rank, distance)
                    if best is None or key < best[0]:
                        best = (key, {category})
                    elif key == best[0]:
                        best[1].add(category)
        if best is not None and len(best[1]) == 1:  # two categories equally near: say nothing
            nouns[lemma] = next(iter(best[1]))
    for category, own in training_nouns.items():  # a category's own words are always its own
        for noun in own:
            nouns[noun] = category
    # one-word names of other physical things (an elephant, a piano): a prompt naming one and no
    # category must be nearer a training caption to pass for known
    other_roots = roots | {wordnet.senses[word][0] for word in OTHER_ROOTS if word in wordnet.senses}
    others = sorted(lemma for lemma, offsets in wordnet.senses.items()
                    if lemma not in nouns and " " not in lemma and "-" not in lemma
                    and wordnet.is_physical(offsets[0], other_roots))
    plurals = {plural: noun for plural, noun in wordnet.exceptions.items() if noun in nouns or noun in others}
    training = sorted({noun for own in training_nouns.values() for noun in own})
    return {"notice": NOTICE, "nouns": dict(sorted(nouns.items())), "plurals": dict(sorted(plurals.items())),
            "training": training, "kinds": {c: sorted(k) for c, k in sorted(kinds.items()) if k}, "others": others}


def looks(wordnet: WordNetNouns, colour_words: dict[str, list[str]], material_words: dict[str, list[str]],
          excluded: set[str]) -> dict[str, list]:
    """{noun: [colour or None, material kind or None]}: the colour a noun names when one of its
    LOOK_SENSES senses is a training colour word's colour sense or a kind of it (at most MAX_DEPTH
    links up: "crimson" is a red), and likewise the material kind, anchored on the training
    material nouns' senses that are matter ("steel" is an alloy, a sense of "metal") or, where that
    sense comes first, an artifact ("velvet" is a fabric). Two classes equally near: say nothing.
    `excluded` words (part and object names: "canopy", "rock") and words of two letters or fewer
    (WordNet's element symbols: "in" is indium) are never looks.

    Args:
        colour_words: Colour class -> its training words.
        material_words: Material kind -> its training nouns.
    """
    matter = next(o for o in wordnet.senses["matter"] if o in wordnet.up(wordnet.senses["solid"][0], 64))
    colour_root, artifact = wordnet.senses["color"][0], wordnet.senses["artifact"][0]

    def anchors(words: dict[str, list[str]], keep) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for name, nouns in words.items():
            for noun in nouns:
                for rank, offset in enumerate(wordnet.senses.get(noun, [])[:LOOK_SENSES]):
                    if keep(rank, wordnet.up(offset, 64)):
                        found[offset].add(name)
        return found

    def nearest(lemma: str, anchored: dict[str, set[str]]):
        best = None  # (distance, names)
        for offset in wordnet.senses[lemma][:LOOK_SENSES]:
            for up, distance in wordnet.up(offset, MAX_DEPTH).items():
                for name in anchored.get(up, ()):
                    if best is None or distance < best[0]:
                        best = (distance, {name})
                    elif distance == best[0]:
                        best[1].add(name)
        return next(iter(best[1])) if best is not None and len(best[1]) == 1 else None

    colours = anchors(colour_words, lambda rank, ups: colour_root in ups)
    kinds = anchors(material_words, lambda rank, ups: matter in ups or (rank == 0 and artifact in ups))
    table = {}
    for lemma in wordnet.senses:
        if lemma not in excluded and len(lemma) > 2:
            found = [nearest(lemma, colours), nearest(lemma, kinds)]
            if found != [None, None]:
                table[lemma] = found
    return dict(sorted(table.items()))


def with_training_looks(table: dict[str, list], colour_words: dict[str, list[str]],
                        material_forms: dict[str, list[str]]) -> dict[str, list]:
    """`table` with every training colour and material word (adjectives too: "wooden") as itself."""
    table = dict(table)
    table.update({w: [colour, None] for colour, words in colour_words.items() for w in words})
    table.update({w: [None, kind] for kind, words in material_forms.items() for w in words})
    return dict(sorted(table.items()))


def not_looks() -> set[str]:
    """Words that name a part or a training object ("canopy", "rock"): never read as a colour or material."""
    from .data import PART_VOCABULARY

    return set(PART_VOCABULARY) | {noun for nouns in training_nouns().values() for noun in nouns}


def training_nouns() -> dict[str, list[str]]:
    """Each category's training nouns: the captions' plain nouns and their attribute nouns."""
    from .captions import ATTRIBUTE_NOUNS, NOUNS

    nouns = {category: list(pair[0]) for category, pair in NOUNS.items()}
    for (category, _key, _value), noun in ATTRIBUTE_NOUNS.items():
        nouns[category].append(noun)
    return nouns


def training_phrase_words() -> set[str]:
    """The words of every training attribute phrase and attribute noun (no held-out wording), but
    number words: counts are compared as counts (prompt_counts), not as adjectives."""
    from .captions import ATTRIBUTE_NOUNS, PHRASES
    from .phrase_reader import WORD
    from .prompt_counts import COUNT_WORDS

    phrases = [p for values in PHRASES.values() for options in values.values()
               for training, _ in options.values() for p in training]
    return {w for p in [*phrases, *ATTRIBUTE_NOUNS.values()] for w in WORD.findall(p.lower())
            if not w.isdigit() and w not in COUNT_WORDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet 3.0's dict folder")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    from .appearance_captions import training_looks

    wordnet = WordNetNouns(args.wordnet)
    lexicon = build(wordnet, training_nouns())
    lexicon["opposites"] = opposites(WordNetAdjectives(args.wordnet), training_phrase_words())
    colour_words, material_nouns, material_forms = training_looks()
    found = looks(wordnet, colour_words, material_nouns, not_looks())
    lexicon["looks"] = with_training_looks(found, colour_words, material_forms)
    Path(args.out).write_text(json.dumps(lexicon, indent=0, sort_keys=False) + "\n")
    print(f"{len(lexicon['nouns'])} nouns, {len(lexicon['others'])} other things, {len(lexicon['plurals'])} "
          f"irregular plurals, opposites of {len(lexicon['opposites'])} phrase words, {len(lexicon['looks'])} "
          f"colour and material nouns -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
