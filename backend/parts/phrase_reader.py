"""Reads what a prompt says about a category's attributes, in the training captions' own words.

The built-in model was trained on a few phrasings per attribute value ("three legs", "no arms").
Asked in other words ("three feet", "nothing to rest the arms on"), its sentence encoder moves the
prompt only a little, and the model made the stated attribute half the time. This reader finds,
for each attribute, the stretch of the prompt that says it: every run of up to MAX_SPAN words is
embedded with the model's own MiniLM and compared with every training phrase of the category;
the best-matching (stretch, phrase) pairs are taken greedily, each word once.

- A stretch is compared with the count said just before it ("one" + "glowing ring"), never spans
  a clause's joint ("curvy armrests and space for two": no training phrase does) and is never a
  number alone; it begins and ends with words that can say something (not "make me a").
- A stretch whose count, wherever it stands ("space for two"), differs from the phrase's cannot
  match it ("three feet" is not "four legs"; "casters" after "no" is not "casters"). The number of
  an adjective counts only what the category's phrases name: "three-legged" three legs,
  "four-cornered" nothing.
- Nor can a stretch with a word WordNet calls the opposite of a word of the phrase (the
  lexicon's opposites: "long legs" is not "short legs", though MiniLM puts them side by side).
- A value must lead the attribute's other values by MARGIN, and a lone word needs SINGLE_WORD;
  the category's own nouns take the stretches that only name the object; a stretch of only a
  part's name ("the top") or with colour and material words ("black metal legs") says no value
  unless it is a training phrase word for word.
- A clause ("nothing overhead") none of whose words were read may still say one value as a whole:
  it is read as the value whose caption ("a flower with eight petals") it is nearer than the bare
  object ("a flower") by CLAUSE_LEAD, and nearer than the attribute's other values' captions; one
  value per clause.

The shape model is then conditioned on a training-form caption of what was read ("a chair with
three legs and no arms"); the reading is told to the artist where it was not word for word.

Only training phrases are anchors: no held-out or paraphrase wording is an input here, so the
evaluation's paraphrase split stays held out (tests/backend/test_parts_phrase_reader.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import torch

from .captions import ATTRIBUTE_NOUNS, NOUNS, PHRASES, TEMPLATES, fix_articles, join_phrases
from .data import PART_VOCABULARY
from .lexicon import Lexicon
from .lexicon import shipped as shipped_lexicon
from .prompt_counts import COUNT_WORDS, any_count, first_count

WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
MAX_WORDS = 40  # a prompt's words read (prompts come from users: the work grows with words × MAX_SPAN)
MAX_SPAN = 7  # the longest stretch compared: the longest training phrases have 6 words
# Below this cosine similarity a stretch says nothing the category's phrases say. This and the
# next two were chosen on the paraphrases of half the categories; eval_reading.py reports the
# other half apart.
THRESHOLD = 0.3
MARGIN = 0.03  # ... and this much nearer the value than the attribute's other values
# (0.02 read 3 points more of the tuned half's paraphrases, none more of the other half's)
# One word alone needs more: a part named in a colour clause ("whose top is green") is near some
# value of many attributes. (At 0.5 the paraphrases lose 2 points, invented attributes halve.)
SINGLE_WORD = 0.5
# A clause read whole must be this much nearer the value's caption than the bare object (chosen
# with THRESHOLD on the same half of the categories).
CLAUSE_LEAD = 0.02
# Where a prompt's clauses part: punctuation, a spaced dash, and the words that join attributes.
CLAUSE = re.compile(r"[,;:.!?()]|\s-\s|\b(?:and|with|having|showing|featuring|but|plus)\b")
ADJECTIVE_COUNT = re.compile(r"\b([a-z]+|\d+)-([a-z]+)ed\b")  # "four-cornered", "three-legged"
TIE = 1e-4  # similarities this close are equal (stretch order decides, not a CPU's float rounding)
OWN_WEIGHT = 0.97  # the category's nouns yield to an attribute noun on the same words ("bar stool")
# Words that say nothing of a shape's attributes: English function words, requests, and words
# for the model's style (the evaluation's held-out frames use some: "make me a", "a low-poly").
# A stretch never begins or ends with one.
FILLER = frozenset(
    "a an the of with and or to me my i it its is are be would like make give generate create please some kind "
    "this that has have having which where on in at for by from as one whose who whom what there their them "
    "they we you your our each every also very just so than then was were been being can could should will do "
    "does did get got want need model 3d mesh asset low-poly lowpoly stylized realistic render game-ready".split())


@dataclass(frozen=True)
class Phrase:
    """One attribute value read from a prompt."""

    attribute: str
    value: Any
    words: str  # the prompt's words that say it
    matched: str  # the training phrase they matched
    phrase: str  # the value's own phrase, as the caption says it


@dataclass
class PhraseTable:
    attributes: list[Optional[str]]  # None: one of the category's own nouns
    values: list[Any]
    phrases: list[str]
    counts: list[Optional[int]]
    embeddings: torch.Tensor  # (R, D)
    shared: dict[str, set[str]]  # attribute -> the words each of its values' phrases has
    opposed: list[frozenset[str]]  # per row: the adjectives opposed to a word of its phrase
    captions: torch.Tensor  # (R, D) per row, its phrase in a caption: "a bench with a backrest"
    bare: torch.Tensor  # (D,) the category's bare caption: "a bench"
    noun: str  # the category's first training noun, the one its captions put phrases after

    def __post_init__(self):
        a, v = self.attributes, [str(x) for x in self.values]
        # rival[r, q]: row q says another value of row r's attribute
        self.rival = torch.tensor([[a[r] is not None and a[q] == a[r] and v[q] != v[r] for q in range(len(a))]
                                   for r in range(len(a))])
        self.own = [r for r, x in enumerate(a) if x is None]
        self.words = {w for p in self.phrases for w in re.findall(r"[a-z]+", p.lower())}  # "double-headed": head too


class PhraseReader:
    """Reads attribute phrases with `encoder` (a TextEncoder), one category at a time.

    Args:
        encoder: embeds texts to unit vectors (`encode(texts, cache=...)`).
        threshold: the least similarity a stretch needs to be read (THRESHOLD).
        margin: how much nearer its value than the attribute's other values (MARGIN).
        opposites: word -> the words opposed to it (default: the lexicon's).
        lexicon: names the object in a prompt ("a packing case") and holds the opposites
            (default: the shipped one).
    """

    def __init__(self, encoder, threshold: float = THRESHOLD, margin: float = MARGIN,
                 opposites: Optional[dict[str, frozenset[str]]] = None, lexicon: Optional[Lexicon] = None):
        self.encoder, self.threshold, self.margin = encoder, threshold, margin
        self.lexicon = shipped_lexicon() if lexicon is None else lexicon
        self.opposites = self.lexicon.opposites if opposites is None else opposites
        self._tables: dict[str, PhraseTable] = {}  # one per category: bounded by PHRASES, not by prompts

    def read(self, prompt: str, category: str) -> list[Phrase]:
        """The attribute values `prompt` states for `category`, in the prompt's order."""
        table = self.table(category)
        text = prompt.lower()
        matches = list(WORD.finditer(text))[:MAX_WORDS]
        words = [m.group() for m in matches]
        looks = self.lexicon.find_looks(text)  # read in the whole prompt: "a stone canopy" is not a rock
        is_look = [any(look.start < m.end() and m.start() < look.end for look in looks) for m in matches]
        # no training phrase says its value across a clause's joint ("curved arm rests and room for
        # two"), and a number alone says nothing of what it counts ("eight"; "ring of eight" may)
        joints = [m.start() for m in CLAUSE.finditer(text)]
        spans = [(i, j) for i in range(len(words)) for j in range(i + 1, min(len(words), i + MAX_SPAN) + 1)
                 if words[i] not in FILLER and words[j - 1] not in FILLER
                 and not any(matches[i].end() <= at < matches[j - 1].start() for at in joints)
                 and not all(w in COUNT_WORDS or w.isdigit() for w in words[i:j])]
        if table is None or not spans:
            return []
        texts = [" ".join(words[i:j]) for i, j in spans]
        # a count said just before a stretch belongs to it: "no" + "casters", "one" + "reflective ring"
        counted = [f"{words[i - 1]} {t}" if i and words[i - 1] in COUNT_WORDS else t for (i, _), t in zip(spans, texts)]
        sims = self.encoder.encode(counted, cache=False) @ table.embeddings.T  # (spans, rows)
        counts = [any_count(_counting(t, table.words)) for t in counted]
        sims = _leading(sims.masked_fill(_disagree(table, counts, [words[i:j] for i, j in spans]), -1.0), table,
                        self.margin)
        sims[:, table.own] *= OWN_WEIGHT
        found: dict[str, Phrase] = {}
        order: dict[str, int] = {}
        taken: list[tuple[int, int]] = []
        for flat in _best_first(sims, [j - i for i, j in spans]).tolist():
            s, r = divmod(flat, sims.shape[1])
            if float(sims[s, r]) < self.threshold:
                break
            (i, j), attribute = spans[s], table.attributes[r]
            if j - i == 1 and float(sims[s, r]) < SINGLE_WORD:
                continue
            if any(i < hi and lo < j for lo, hi in taken) or attribute in found:
                continue
            exact = _content(counted[s]) == _content(table.phrases[r])
            if attribute is not None and not exact and set(words[i:j]) <= table.shared[attribute]:
                continue  # only words every value of it uses ("the top"), and not a value's own phrase
            if not exact and any(is_look[i:j]):
                continue  # colours and materials ("black metal legs") say no shape, unless in a phrase ("pine tree")
            taken.append((i - (counted[s] != texts[s]), j))  # with the count said before it
            if attribute is not None:
                value = table.values[r]
                found[attribute] = Phrase(attribute, value, counted[s], table.phrases[r],
                                          PHRASES[category][attribute][value][0][0])
                order[attribute] = i
        for attribute, (at, phrase) in self._read_clauses(prompt, category, table, taken + [
                (k, k + 1) for k, look in enumerate(is_look) if look], found).items():
            found[attribute], order[attribute] = phrase, at
        return sorted(found.values(), key=lambda p: order[p.attribute])

    def _read_clauses(self, prompt: str, category: str, table: "PhraseTable", taken: list[tuple[int, int]],
                      found: dict) -> dict[str, tuple[int, Phrase]]:
        """{attribute: (first word, Phrase)} for the clauses with no word read that say a value
        as a whole, one value per clause, the clause nearest its value first. `taken`: the
        stretches of words read, and the colour and material words ("whose top is green" says no shape)."""
        # the words that name the object: its training nouns, or any the lexicon says it is ("a packing case")
        named = [n.words for n in self.lexicon.named(prompt) if n.category == category]
        own = {w for noun in [*NOUNS[category][0], *named] for w in WORD.findall(noun.lower())}
        text = prompt.lower()
        marks = [m.span() for m in CLAUSE.finditer(text)]  # the words that join clauses belong to none
        pieces: dict[int, list[tuple[int, str]]] = {}  # clause number -> its unread (word index, word)
        for k, m in enumerate(WORD.finditer(text)):
            if k >= MAX_WORDS:
                break
            if not any(lo <= m.start() < hi for lo, hi in marks) and not any(lo <= k < hi for lo, hi in taken):
                pieces.setdefault(sum(hi <= m.start() for _, hi in marks), []).append((k, m.group()))
        clauses = []  # (first word, the clause's unread words)
        for piece in pieces.values():
            words = [w for _, w in piece]
            if any(w not in FILLER and w not in own and not _part_name(w) for w in words):  # not "the neck"
                clauses.append((piece[0][0], words))
        if not clauses:
            return {}
        # without the numbers that count nothing of it: "a four-cornered" is not "four legs"
        texts = [_counting(" ".join(w), table.words) for _, w in clauses]
        said = self.encoder.encode([fix_articles(f"a {table.noun} with {t}") for t in texts], cache=False)
        lead = said @ table.captions.T - (said @ table.bare)[:, None]  # (C, rows): nearer the value than the bare object
        # a clause's count ("a ring of eight") must agree, but one with none may say a count's value ("open to the sky": no roof)
        bad = _disagree(table, [any_count(t) for t in texts], [w for _, w in clauses], said_only=True)
        bad |= torch.tensor([[a is None or a in found for a in table.attributes]]).expand_as(bad)
        lead = _leading(lead.masked_fill(bad, -1.0), table, 0.0)
        out: dict[str, tuple[int, Phrase]] = {}
        for flat in torch.argsort(lead.flatten(), descending=True, stable=True).tolist():
            c, r = divmod(flat, lead.shape[1])
            if float(lead[c, r]) < CLAUSE_LEAD:
                break
            attribute, value = table.attributes[r], table.values[r]
            if attribute in out or any(first == clauses[c][0] for first, _ in out.values()):
                continue
            said_words = " ".join(w for w in clauses[c][1] if w not in own)
            out[attribute] = (clauses[c][0], Phrase(attribute, value, said_words, table.phrases[r],
                                                    PHRASES[category][attribute][value][0][0]))
        return out

    def caption(self, category: str, read: list[Phrase]) -> str:
        """A training-form caption stating `read` ("a chair with three legs and no arms"), in the
        training attribute noun that was read, if one was ("an office chair with wheels": the
        plain "a chair with wheels" made wheels in fewer edits)."""
        nouns = {noun for _, _, noun in _attribute_nouns(category)}
        noun = next((p.matched for p in read if p.matched in nouns), NOUNS[category][0][0])
        return fix_articles(TEMPLATES[0].format(noun=noun, attrs=join_phrases([p.phrase for p in read])))

    def table(self, category: str) -> Optional[PhraseTable]:
        """The category's training phrases, nouns and their embeddings (None for no attributes)."""
        if category not in PHRASES:
            return None
        if category not in self._tables:
            rows = [(a, v, p) for a, values in PHRASES[category].items()
                    for v, (training, _) in values.items() for p in training]
            rows += _attribute_nouns(category)
            nouns = {noun for _, _, noun in _attribute_nouns(category)}
            rows += [(None, None, noun) for noun in NOUNS[category][0]]
            phrases = [p for _, _, p in rows]
            shared = {}
            for attribute, values in PHRASES[category].items():
                per_value = [{w for p in training for w in WORD.findall(p.lower())} for training, _ in values.values()]
                shared[attribute] = set.intersection(*per_value) | FILLER
            opposed = [frozenset(w for word in WORD.findall(p.lower()) for w in self.opposites.get(word, ())) for p in phrases]
            noun = NOUNS[category][0][0]
            captions = [fix_articles(f"a {noun} with {p}") if a is not None and p not in nouns else fix_articles(f"a {p}")
                        for (a, _, p) in rows]
            embedded = self.encoder.encode(phrases + captions + [fix_articles(f"a {noun}")])
            R = len(rows)
            self._tables[category] = PhraseTable([a for a, _, _ in rows], [v for _, v, _ in rows], phrases,
                                                 [first_count(p) for p in phrases], embedded[:R], shared,
                                                 opposed, embedded[R : 2 * R], embedded[2 * R], noun)
        return self._tables[category]


def _attribute_nouns(category: str) -> list[tuple[str, str, str]]:
    """(attribute, value, noun) of the category's nouns that state a value ("office chair": wheels)."""
    return [(a, v, noun) for (c, a, v), noun in ATTRIBUTE_NOUNS.items() if c == category]


def _counting(text: str, words: set[str]) -> str:
    """`text` without the numbers of its "N-...ed" adjectives of things no phrase of the category
    names: "a four-cornered seat" counts no corners (nor legs), "three-legged" still counts legs."""
    def plain(m: re.Match) -> str:
        number, stem = m.groups()
        if number not in COUNT_WORDS and not number.isdigit():
            return m.group(0)  # "box-shaped"
        stems = {stem, stem + "e", stem + "ed", stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else stem}
        return m.group(0) if any(w in words or f"{w}s" in words for w in stems) else stem + "ed"

    return ADJECTIVE_COUNT.sub(plain, text)


def _part_name(word: str) -> bool:
    """A part's name, or its plural ("legs", "shelves")."""
    return any(w in PART_VOCABULARY for w in (word, word[:-1], word[:-2], word[:-3] + "f"))


def _disagree(table: PhraseTable, counts: list, words: list[list[str]], said_only: bool = False) -> torch.Tensor:
    """(texts, rows) True where a text cannot say a row's value: its count differs from the
    phrase's ("three feet" is not "four legs"; with `said_only`, only where the text says a count),
    or it has a word opposed to one of the phrase's ("long legs" sits near "short legs" in MiniLM's space)."""
    disagree = torch.tensor([[a != b and (a is not None or not said_only) for b in table.counts] for a in counts])
    return disagree | torch.tensor([[not opposed.isdisjoint(w) for opposed in table.opposed] for w in words])


def _best_first(sims: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Flat indices of `sims` (spans, rows), most similar first; equal to TIE (two stretches that
    are both training phrases word for word, "office chair" and "wheels"), the longer stretch
    first. Without TIE, float rounding, which differs between CPUs, would decide."""
    longest_first = torch.tensor(lengths).repeat_interleave(sims.shape[1]).argsort(descending=True, stable=True)
    bucket = torch.round(sims.flatten()[longest_first] / TIE)
    return longest_first[bucket.argsort(descending=True, stable=True)]


def _leading(sims: torch.Tensor, table: PhraseTable, margin: float) -> torch.Tensor:
    """`sims` (texts, rows) with -1 where a text is not `margin` nearer a row's value than the
    attribute's other values: a bare "top" is as near "a round top" as "a square top" and says neither."""
    rivals = sims[:, None, :].masked_fill(~table.rival, float("-inf")).amax(-1)  # (texts, rows)
    return sims.masked_fill(sims - rivals < margin, -1.0)


def reading_note(read: list[Phrase]) -> Optional[str]:
    """For the artist: the stretches read in other words than the training phrase, or None."""
    other = [p for p in read if _content(p.words) != _content(p.matched)]
    if not other:
        return None
    return "Read " + ", ".join(f"\"{p.words}\" as \"{p.phrase}\"" for p in other) + "."


def _content(text: str) -> list[str]:
    return [w for w in WORD.findall(text.lower()) if w not in FILLER]
