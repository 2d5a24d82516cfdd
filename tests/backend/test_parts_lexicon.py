"""The built-in model's noun lexicon: built from WordNet with the training nouns as its only
anchors (so the paraphrase split stays held out), read back from prompts, and used to reach the
category a noun names ("a keg" is a barrel) where the sentence encoder alone goes astray."""

import json

import pytest
import torch

from backend.parts import captions
from backend.parts.lexicon import PATH, Lexicon
from backend.parts.lexicon_build import (WordNetAdjectives, WordNetNouns, build, opposites, training_nouns,
                                        training_phrase_words)
from tests.fixtures.tiny_wordnet import write_nouns

# A small WordNet in its own file formats: roots of physical things, a barrel with a keg below
# it, a tower with a lighthouse and a turret, "chest" as a body part first and a box second, a
# noun as near to two categories, and "wheel" naming a bicycle only in its third sense.
SYNSETS = [
    ("00000010", ["artifact"], []), ("00000011", ["organism"], []), ("00000012", ["natural_object"], []),
    ("00000013", ["body_part"], []),
    ("00000020", ["container"], ["00000010"]),
    ("00000030", ["barrel", "cask"], ["00000020"]), ("00000031", ["keg"], ["00000030"]),
    ("00000040", ["tower"], ["00000010"]), ("00000041", ["lighthouse", "beacon"], ["00000040"]),
    ("00000042", ["turret"], ["00000040"]),
    ("00000050", ["chest", "thorax"], ["00000013"]), ("00000051", ["chest", "box"], ["00000020"]),
    ("00000052", ["coffer"], ["00000051"]),
    ("00000060", ["widget"], ["00000030", "00000040"]),
    ("00000080", ["cactus"], ["00000011"]),
    ("00000090", ["wheel"], ["00000010"]), ("00000091", ["steering_wheel", "wheel"], ["00000010"]),
    ("00000092", ["bicycle", "wheel"], ["00000010"]),
]
SENSE_ORDER = {"wheel": ["00000090", "00000091", "00000092"], "chest": ["00000050", "00000051"]}
TRAINING = {"barrel": ["barrel"], "tower": ["tower"], "lighthouse": ["lighthouse"], "chest": ["chest"],
            "cactus": ["cactus"], "bicycle": ["bicycle"]}


@pytest.fixture
def wordnet(tmp_path):
    return WordNetNouns(write_nouns(tmp_path, SYNSETS, SENSE_ORDER, "cacti cactus\n"))


def test_nouns_reach_the_category_they_are_a_kind_of(wordnet):
    lexicon = build(wordnet, TRAINING)
    nouns = lexicon["nouns"]
    assert nouns["keg"] == "barrel" and nouns["cask"] == "barrel" and nouns["turret"] == "tower"
    assert nouns["coffer"] == "chest"  # through "chest" the box: the body part is no physical thing here
    assert nouns["beacon"] == "lighthouse"  # the nearer category wins: it is a lighthouse before a tower
    assert "widget" not in nouns  # as near to a barrel as to a tower: it says nothing
    assert "wheel" not in nouns  # a bicycle only in its third sense: a rare sense must not decide
    assert lexicon["plurals"] == {"cacti": "cactus"} and lexicon["kinds"] == {"tower": ["lighthouse"]}
    assert lexicon["training"] == sorted(n for own in TRAINING.values() for n in own)
    # physical things of no category, by their first sense: "wheel", not the body part "chest"
    assert lexicon["others"] == ["artifact", "container", "organism", "wheel", "widget"]


def test_a_prompt_names_categories_by_its_longest_nouns(wordnet):
    built = build(wordnet, TRAINING)
    lexicon = Lexicon(built["nouns"], built["plurals"], set(built["training"]), built["kinds"])
    named = lexicon.named("Two Kegs, three cacti and a steering wheel beside a beacon")
    assert [(n.words, n.noun, n.category) for n in named] == [
        ("kegs", "keg", "barrel"), ("cacti", "cactus", "cactus"), ("beacon", "beacon", "lighthouse")]
    lexicon.others = frozenset(built["others"])
    assert lexicon.other_things("Two widgets and a wheel beside a keg") == ["widget", "wheel"]


@pytest.mark.parametrize("prompt", ["an elephant", "a piano", "a robot", "an apple", "a red elephant", "a pizza",
                                    "a dragon", "a unicorn"])
def test_a_thing_of_no_category_is_not_passed_off_as_one(pipe, prompt):
    """MiniLM puts these within the usual bar of some training caption ("an elephant" of an arch);
    WordNet knows they are things of no category (foods and imaginary beings too), so they are
    answered as unknown, with a note."""
    resolved = pipe.resolve_prompt(prompt)
    assert not resolved.known and "does not know" in resolved.note, resolved


@pytest.mark.parametrize("prompt, category", [("a lamp", "desk lamp"), ("a cup", "mug"), ("a ship", "boat"),
                                              ("a cup with a square handle", "mug")])
def test_other_nouns_near_a_category_stay_known(pipe, prompt, category):
    """Not kinds of a category in WordNet, but near its captions, or stating its attributes."""
    resolved = pipe.resolve_prompt(prompt)
    assert resolved.known and resolved.category == category, resolved


def test_only_training_nouns_anchor_the_shipped_lexicon():
    """The held-out paraphrase nouns are never an input: the anchors are the training captions'
    nouns, and the shipped file was built from exactly those."""
    anchors = training_nouns()
    assert anchors == {c: [*captions.NOUNS[c][0], *[n for (cat, _k, _v), n in captions.ATTRIBUTE_NOUNS.items()
                                                     if cat == c]] for c in captions.NOUNS}
    shipped = json.loads(PATH.read_text())
    assert shipped["training"] == sorted({n for own in anchors.values() for n in own})
    assert all(shipped["nouns"][noun] == c for c, own in anchors.items() for noun in own)
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in shipped["notice"]


# A small adjective WordNet: heads "long"/"short" and "tall"/"short" are antonyms, "extended"
# hangs on "long"; "back" is "rear" first and "overdue" (antonym "current") only third.
ADJECTIVES = [
    ("00000100", "a", ["long"], [("!", "00000101")]), ("00000101", "a", ["short"], [("!", "00000100")]),
    ("00000102", "s", ["extended", "lengthy"], [("&", "00000100")]),
    ("00000103", "a", ["tall"], [("!", "00000104")]), ("00000104", "a", ["short"], [("!", "00000103")]),
    ("00000110", "a", ["back"], [("!", "00000111")]), ("00000111", "a", ["front"], [("!", "00000110")]),
    ("00000112", "a", ["back", "overdue"], [("!", "00000113")]), ("00000113", "a", ["current"], [("!", "00000112")]),
    ("00000114", "a", ["back", "backward"], []),
    ("00000105", "a", ["high"], [("!", "00000106"), ("^", "00000103")]),  # high: see also tall
    ("00000106", "a", ["low"], [("!", "00000105")]),
]
ADJECTIVE_SENSES = {"back": ["00000110", "00000114", "00000112"], "short": ["00000101", "00000104"]}


def test_opposed_adjectives_come_from_the_most_frequent_senses(tmp_path):
    data, senses = [], {}
    for offset, kind, words, pointers in ADJECTIVES:
        data.append(f"{offset} 00 {kind} {len(words):02x} {' '.join(f'{w} 0' for w in words)} {len(pointers):03d} "
                    + " ".join(f"{symbol} {target} a 0000" for symbol, target in pointers) + " | a gloss")
        for word in words:
            senses.setdefault(word, []).append(offset)
    senses.update(ADJECTIVE_SENSES)
    (tmp_path / "data.adj").write_text("  1 This file is part of a test\n" + "\n".join(data) + "\n")
    (tmp_path / "index.adj").write_text("\n".join(f"{w} a {len(o)} 0 {len(o)} 0 {' '.join(o)}" for w, o in senses.items()) + "\n")
    (tmp_path / "adj.exc").write_text("shorter short\n")
    table = opposites(WordNetAdjectives(tmp_path), {"short", "back", "tall", "plain", "low"})
    assert set(table["short"]) == {"long", "extended", "lengthy", "tall"}  # satellites too
    assert set(table["tall"]) == {"short", "shorter"}  # with the irregular forms
    assert table["back"] == ["front"]  # "current" opposes only its third sense
    assert "plain" not in table  # no opposite: left out
    assert set(table["low"]) == {"high", "tall"}  # the antonym's "see also" too


def test_only_training_phrase_words_have_opposites_in_the_shipped_lexicon():
    """No held-out paraphrase word is an input, and counts are left to the count reader."""
    shipped = Lexicon.load()
    words = training_phrase_words()
    assert shipped.opposites and set(shipped.opposites) <= words
    assert not {"three", "four", "no", "one"} & set(shipped.opposites)
    assert {"long", "extended"} <= shipped.opposites["short"] and "low" in shipped.opposites["high"]
    assert "low" in shipped.opposites["tall"]  # through high, short's "see also"


def test_a_noun_the_captions_never_use_reaches_its_category_in_its_own_word(pipe):
    resolved = pipe.resolve_prompt("a keg with three hoops")
    assert resolved.category == "barrel" and resolved.prompt == "a barrel with three hoops" and resolved.known
    assert resolved.note == 'Read "keg" as a barrel.'
    assert pipe.resolve_prompt("an automobile with four wheels").prompt == "a car with four wheels"
    assert pipe.resolve_prompt("a turret with two arrow slits").category == "tower"  # the encoder alone: a barrel
    plain = pipe.resolve_prompt("a rock with three boulders")  # its own noun: left as it is
    assert plain[:4] == ("a rock with three boulders", "rock", None, True)
    shape = pipe("a keg with three hoops", num_shapes=1, num_inference_steps=10,
                 generator=torch.Generator().manual_seed(0)).shapes[0]
    assert shape.category == "barrel" and any(label.startswith("hoop") for label in shape.labels), shape.labels


def test_a_job_reads_a_prompt_in_another_noun_once(pipe, monkeypatch):
    """The service conditions "a keg ..." on what was read from it, not on "a barrel ..." read again."""
    from backend.parts.service import run_text
    from backend.results import no_progress

    calls = []
    read = pipe.reader.read
    monkeypatch.setattr(pipe.reader, "read", lambda *args: calls.append(args) or read(*args))
    result = run_text(pipe, {"prompt": "a keg with four hoops, read once", "seed": 0, "num_inference_steps": 10,
                             "resolution": 32}, {}, no_progress)
    assert len(calls) == 1, calls
    assert calls[0][0].startswith("a barrel with four hoops") and 'Read "keg" as a barrel.' in result.metadata["notes"][0]
    assert sum(part.name.startswith("hoop") for part in result.parts) == 4


@pytest.fixture(scope="module")
def pipe():
    from backend.parts.pipeline import PartDiffusionPipeline

    return PartDiffusionPipeline.from_pretrained()
