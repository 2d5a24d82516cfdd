"""The nouns of a prompt that name a category the built-in model knows, from its WordNet-derived
lexicon (lexicon.json, made by lexicon_build.py): "a keg" names a barrel, "a turret" a tower,
"a packing case" a crate, though no training caption says so; and the one-word names of other
physical things ("an elephant"), which name none; the adjectives opposed to the words of the
training attribute phrases ("long" to "short"), for the phrase reader; and the colour and
material each colour or material word names ("crimson": red, "steel": metal).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .shapes import PART_VOCABULARY

PATH = Path(__file__).with_name("lexicon.json")
PARTS = frozenset(PART_VOCABULARY)
LONGEST = 3  # words in the longest noun looked up ("train wagon", "chest of drawers")
WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
ANY_CASE_WORD = re.compile(WORD.pattern, re.IGNORECASE)  # offsets into the text as given (lower() may change its length)


@dataclass(frozen=True)
class Look:
    """Colour or material words found in a prompt: where they are, and what they name."""

    start: int  # character offsets in the prompt
    end: int
    colour: str | None
    kind: str | None


@dataclass(frozen=True)
class Named:
    """A noun found in a prompt: its words as written, the noun they are a form of, its category."""

    words: str
    noun: str
    category: str


class Lexicon:
    """Noun -> category, with irregular plurals and the nouns the training captions use; and the
    adjectives opposed to each word of the training phrases ("short": "long", "extended", ...)."""

    def __init__(self, nouns: dict[str, str], plurals: dict[str, str], training: set[str],
                 kinds: dict[str, list[str]], others: frozenset[str] = frozenset(),
                 opposites: dict[str, frozenset[str]] | None = None, looks: dict[str, tuple] | None = None):
        self.nouns, self.plurals, self.training, self.kinds, self.others = nouns, plurals, training, kinds, others
        self.opposites = opposites or {}
        self.looks = looks or {}  # word(s) -> (colour or None, material kind or None)

    @classmethod
    def load(cls, path: Path = PATH) -> "Lexicon":
        data = json.loads(path.read_text())
        return cls(data["nouns"], data["plurals"], set(data["training"]), data["kinds"], frozenset(data.get("others", ())),
                   {word: frozenset(words) for word, words in data.get("opposites", {}).items()},
                   {word: tuple(look) for word, look in data.get("looks", {}).items()})

    def other_things(self, text: str) -> list[str]:
        """The words of `text` that name a physical thing of no category ("an elephant"), as nouns."""
        found = []
        for word in WORD.findall(text.lower()):
            noun = next((form for form in self._singulars(word) if form in self.others), None)
            if noun is not None:
                found.append(noun)
        return found

    def noun(self, words: str) -> str | None:
        """The lexicon's noun `words` (lower case, maybe plural) is a form of, or None."""
        return next((form for form in self._singulars(words) if form in self.nouns), None)

    def named(self, text: str) -> list[Named]:
        """The nouns of `text` that name a category, left to right: the longest noun wins where
        nouns overlap ("a bar stool" is a stool, not a bar). A colour or material word names its
        category only where no other noun names another: "an oak" is a tree, "an oak table" a table."""
        words = [m.group() for m in WORD.finditer(text.lower())]
        return [Named(" ".join(words[k:k + n]), noun, self.nouns[noun]) for k, n, noun in self._nouns(words)]

    def find_looks(self, text: str) -> list[Look]:
        """The colour and material words of `text`, left to right, the longest first ("jet black"),
        but those that name the object ("an oak")."""
        matches = list(ANY_CASE_WORD.finditer(text))
        words = [m.group().lower() for m in matches]
        inside = {i for k, n, _ in self._nouns(words) for i in range(k, k + n)}
        found, k = [], 0
        while k < len(words):
            for n in range(min(LONGEST, len(words) - k), 0, -1):
                look = self._look(" ".join(words[k:k + n]))
                if n > 1 and look is not None and self._each_says(words[k:k + n]) not in (None, look):
                    continue  # each word says its own: "white metal" is white and metal, not an alloy
                if look is not None and not inside & set(range(k, k + n)):
                    found.append(Look(matches[k].start(), matches[k + n - 1].end(), *look))
                    k += n
                    break
            else:
                k += 1
        return found

    def _each_says(self, words: list[str]) -> tuple | None:
        """What `words` name read one by one (their first colour and kind), or None if one names nothing."""
        looks = [self._look(w) for w in words]
        if None in looks:
            return None
        return next((c for c, _ in looks if c), None), next((k for _, k in looks if k), None)

    def _look(self, words: str) -> tuple | None:
        """What `words` name, or None; a hyphenated word its last part's ("rose-pink": pink)."""
        look = self.looks.get(words.replace("-", " "))
        if look is None and " " not in words and "-" in words:
            look = self.looks.get(words.rpartition("-")[2])
        return look

    def without_looks(self, text: str) -> str:
        """`text` without its colour and material words ("a red elephant" -> "a elephant"): what the
        object is, for telling whether the model knows it."""
        for look in reversed(self.find_looks(text)):
            text = text[:look.start] + text[look.end:]
        return " ".join(text.split())

    def _nouns(self, words: list[str]) -> list[tuple[int, int, str]]:
        """(first word, words, noun) of each category noun; those that are colour or material words
        only where no other noun names another category ("a tree like a pine": both trees), and
        never just before the noun of another thing, which they then say the material of ("a pine
        book rack": "book" is a thing, so "pine" is wood and the object is the book rack)."""
        found, k = [], 0
        while k < len(words):
            for n in range(min(LONGEST, len(words) - k), 0, -1):
                said = " ".join(words[k:k + n])
                noun = self.noun(said)
                if noun is not None and self._look(said) is not None \
                        and k + n < len(words) and self._names_thing(words[k + n]):
                    continue
                if noun is not None:
                    found.append((k, n, noun))
                    k += n
                    break
            else:
                k += 1
        plain = {self.nouns[noun] for k, n, noun in found if " ".join(words[k:k + n]).replace("-", " ") not in self.looks}
        return [f for f in found if not plain or self.nouns[f[2]] in plain]

    def _names_thing(self, word: str) -> bool:
        """Whether `word` (maybe plural) is a category's noun, another physical thing's or a part's."""
        return any(form in self.nouns or form in self.others or form in PARTS for form in self._singulars(word))

    def _singulars(self, words: str):
        yield words
        head, _, last = words.rpartition(" ")
        prefix = f"{head} " if head else ""
        if words in self.plurals:
            yield self.plurals[words]
        if last.endswith("ies"):
            yield f"{prefix}{last[:-3]}y"
        if last.endswith("ves"):
            yield f"{prefix}{last[:-3]}f"
            yield f"{prefix}{last[:-3]}fe"
        if last.endswith("es"):
            yield f"{prefix}{last[:-2]}"
        if last.endswith("s") and not last.endswith("ss"):
            yield f"{prefix}{last[:-1]}"


@lru_cache(maxsize=1)
def shipped() -> Lexicon:
    """The lexicon that ships with the model (read once)."""
    return Lexicon.load()
