"""The nouns of a prompt that name a category the built-in model knows, from its WordNet-derived
lexicon (lexicon.json, made by lexicon_build.py): "a keg" names a barrel, "a turret" a tower,
"a packing case" a crate, though no training caption says so; and the one-word names of other
physical things ("an elephant"), which name none; and the adjectives opposed to the words of the
training attribute phrases ("long" to "short"), for the phrase reader.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).with_name("lexicon.json")
LONGEST = 3  # words in the longest noun looked up ("train wagon", "chest of drawers")
WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


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
                 opposites: dict[str, frozenset[str]] | None = None):
        self.nouns, self.plurals, self.training, self.kinds, self.others = nouns, plurals, training, kinds, others
        self.opposites = opposites or {}

    @classmethod
    def load(cls, path: Path = PATH) -> "Lexicon":
        data = json.loads(path.read_text())
        return cls(data["nouns"], data["plurals"], set(data["training"]), data["kinds"], frozenset(data.get("others", ())),
                   {word: frozenset(words) for word, words in data.get("opposites", {}).items()})

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
        nouns overlap ("a bar stool" is a stool, not a bar)."""
        words = WORD.findall(text.lower())
        found, k = [], 0
        while k < len(words):
            for n in range(min(LONGEST, len(words) - k), 0, -1):
                noun = self.noun(" ".join(words[k:k + n]))
                if noun is not None:
                    found.append(Named(" ".join(words[k:k + n]), noun, self.nouns[noun]))
                    k += n
                    break
            else:
                k += 1
        return found

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
