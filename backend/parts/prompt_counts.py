"""Counts stated in a prompt, given to the built-in model as tokens of their own.

MiniLM's sentence and token states separate "three legs" from "four legs" only weakly. Here a
parser for English quantities finds each count ("4", "four", "a pair of", "single", "no",
"four-legged") and makes it one extra cross-attention token: the MiniLM embedding of the words
that follow it (what is counted) and a one-hot of the number. Weights trained with them
(`train --count-tokens`, `DenoiserConfig.count_dim`) get them at every prompt; the shipped weights
were trained without them (see TrainConfig.count_tokens for what they were measured to do).
"""

from __future__ import annotations

import re

import torch

MAX_COUNT = 12
COUNT_DIM = MAX_COUNT + 1  # one-hot of 0..MAX_COUNT
MAX_MENTIONS = 8  # a prompt's counts beyond these are ignored (prompts come from users)
_WORDS = {"no": 0, "none": 0, "nothing": 0, "without": 0, "zero": 0, "one": 1, "single": 1, "a single": 1,
          "lone": 1, "sole": 1, "solitary": 1, "two": 2, "twin": 2, "a pair of": 2, "pair of": 2, "pair": 2, "both": 2,
          "a couple of": 2, "couple": 2, "double": 2, "three": 3, "trio": 3, "triple": 3, "four": 4, "quartet": 4,
          "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "dozen": 12}
COUNT_WORDS = frozenset(w for w in _WORDS if " " not in w)
_NUMBER = "|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)) + r"|\d{1,3}"
_STOP = r"(?:and|with|that|but|or|on|in|plus)\b"
# a number, then up to three words of what it counts (stopping at a clause boundary)
_MENTION = re.compile(rf"\b({_NUMBER})\b[\s-]*((?:(?!{_STOP})[a-z][a-z'-]*\s*){{0,3}})")


def count_mentions(prompt: str) -> list[tuple[int, str]]:
    """(count, what it counts) for each quantity in `prompt`, in order, at most MAX_MENTIONS.

    >>> count_mentions("a four-legged chair with a pair of arms and no back")
    [(4, 'legged chair'), (2, 'arms'), (0, 'back')]
    """
    out = []
    text = prompt.lower().strip()
    for match in _MENTION.finditer(text):
        word, counted = match.group(1), match.group(2).strip()
        if match.start() == 0:  # "one chair: ...", "two stools": how many objects, not how many parts
            continue
        n = _number(word)
        if n <= MAX_COUNT and counted:  # "4" alone, or 400, says nothing the model can use
            out.append((n, counted))
        if len(out) == MAX_MENTIONS:
            break
    return out


def first_count(phrase: str) -> int | None:
    """The first count `phrase` states, wherever it stands ("three feet": 3, "no arms": 0), or None.

    >>> first_count("a pair of turbines"), first_count("a tall back")
    (2, None)
    """
    match = _MENTION.search(phrase.lower())
    if match is None or not match.group(2).strip():
        return None
    n = _number(match.group(1))
    return n if n <= MAX_COUNT else None


def any_count(phrase: str) -> int | None:
    """`first_count`, or else the first number in `phrase` though nothing follows it.

    >>> any_count("a corolla of six"), first_count("a corolla of six")
    (6, None)
    """
    n = first_count(phrase)
    match = re.search(rf"\b({_NUMBER})\b", phrase.lower()) if n is None else None
    if match is not None and _number(match.group(1)) <= MAX_COUNT:
        return _number(match.group(1))
    return n


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _WORDS[word]


def with_count_tokens(encoder, prompts: list[str], tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states (B, T, D) with COUNT_DIM zero features appended, followed by one token per count
    mention: the embedding of what is counted (D) and the count's one-hot.

    Returns: (B, T + M, D + COUNT_DIM) tokens and (B, T + M) mask.
    """
    mentions = [count_mentions(p) for p in prompts]
    B, T, D = tokens.shape
    M = max((len(m) for m in mentions), default=0)
    out = torch.zeros(B, T + M, D + COUNT_DIM, dtype=tokens.dtype)
    out[:, :T, :D] = tokens
    out_mask = torch.zeros(B, T + M, dtype=torch.bool)
    out_mask[:, :T] = mask
    phrases = sorted({w for m in mentions for _, w in m})
    embedded = dict(zip(phrases, encoder.encode(phrases))) if phrases else {}
    for b, found in enumerate(mentions):
        for k, (n, words) in enumerate(found):
            out[b, T + k, :D] = embedded[words].to(tokens.dtype)
            out[b, T + k, D + n] = 1.0
            out_mask[b, T + k] = True
    return out, out_mask
