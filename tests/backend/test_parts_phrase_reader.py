"""The phrase reader: a prompt's attributes, said in the artist's words, read into the training
captions' own words, with only training phrases as anchors (so the paraphrase split stays held
out), and the shape model conditioned on what was read."""

import time

import pytest
import torch

from backend.parts import captions
from backend.parts.phrase_reader import MAX_WORDS, PhraseReader, _best_first, reading_note
from backend.parts.text import TextEncoder


@pytest.fixture(scope="module")
def reader():
    return PhraseReader(TextEncoder())


def values(reader, prompt, category):
    return {p.attribute: p.value for p in reader.read(prompt, category)}


def test_only_training_words_are_anchors(reader):
    """Every phrase the reader compares with is a training phrase, a training attribute noun or a
    training noun; no paraphrase phrase, noun or attribute noun is among them."""
    held_out = {p for attrs in captions.PHRASES.values() for vals in attrs.values() for _, para in vals.values()
                for p in para} | set(captions.PARAPHRASE_ATTRIBUTE_NOUNS.values()) | {
                n for _, para in captions.NOUNS.values() for n in para}
    for category, attrs in captions.PHRASES.items():
        training = {p for vals in attrs.values() for train, _ in vals.values() for p in train}
        training |= {n for (c, _, _), n in captions.ATTRIBUTE_NOUNS.items() if c == category}
        training |= set(captions.NOUNS[category][0])
        anchors = set(reader.table(category).phrases)
        assert anchors <= training, (category, anchors - training)
        assert not anchors & (held_out - training), (category, anchors & held_out)


def test_every_training_phrase_in_a_new_frame_reads_as_its_value(reader):
    """Each value's caption phrase, in a sentence frame training never used, reads back as that
    value and as nothing else."""
    wrong = []
    for category, attrs in captions.PHRASES.items():
        noun = captions.NOUNS[category][0][0]
        for attribute, vals in attrs.items():
            for value, (train, _) in vals.items():
                got = values(reader, f"make me a {noun}, {train[0]}", category)
                if got != {attribute: value}:
                    wrong.append((category, train[0], got))
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("prompt, category, expected", [
    ("a chair with three feet and nothing to rest the arms on", "chair", {"legs": 3, "arms": "none"}),
    ("a four-legged chair with a high backrest", "chair", {"legs": 4, "height": "tall"}),
    ("an office chair on wheels", "chair", {"legs": "wheels"}),  # a training attribute noun
    ("a shelf unit with no casters and 3 shelves", "shelf unit", {"wheels": "no", "shelves": 3}),
    ("a shelf unit with casters", "shelf unit", {"wheels": "yes"}),  # "no" before it decides
])
def test_other_words_read_as_the_training_phrases(reader, prompt, category, expected):
    assert values(reader, prompt, category) == expected


@pytest.mark.parametrize("prompt, category", [
    ("a chair", "chair"),
    ("make me a low-poly stool", "stool"),  # "low-poly" is no low frame
    ("a wooden table with a glass top", "table"),  # the top named, its shape not said
    ("a red chair with black metal legs", "chair"),
])
def test_nothing_is_read_that_the_prompt_does_not_say(reader, prompt, category):
    assert values(reader, prompt, category) == {}


def test_an_opposite_word_never_reads_as_the_phrase_it_opposes(reader):
    """MiniLM puts "long legs" next to "short legs"; WordNet says they are opposites."""
    assert [(p.attribute, p.value) for p in reader.read("a stool with long legs", "stool")] == [("height", "tall")]
    blind = PhraseReader(reader.encoder, opposites={})
    assert [(p.attribute, p.value) for p in blind.read("a stool with long legs", "stool")] == [("height", "short")]


def test_counts_must_agree(reader):
    """A stretch with a count matches only phrases with that count: "four feet" is never three
    legs, "a pair of turbines" only two engines."""
    assert values(reader, "a stool with four feet", "stool").get("legs") == 4
    assert values(reader, "a table with three feet", "table").get("legs") == 3
    assert values(reader, "a jet with a pair of turbines", "airplane").get("engines") == 2


def test_a_number_in_an_adjective_counts_only_what_the_category_has(reader):
    """"three-legged" counts legs, but "four-cornered" and "four-sided" count nothing a stool or a
    table has: they are no four legs."""
    assert "legs" not in values(reader, "a stool with a four-cornered seat", "stool")
    assert "legs" not in values(reader, "a table with a four-sided top", "table")
    assert values(reader, "a three-legged chair", "chair") == {"legs": 3}
    assert values(reader, "a three-tiered tree", "tree") == {"tiers": 3}
    assert values(reader, "a double-headed axe", "axe") == {"blades": 2}


def test_a_count_before_a_stretch_is_read_with_it(reader):
    """"one" begins no stretch (it is a frame word: "one chair: ..."), but the stretch after it is
    compared with it: "glowing ring" alone is near no phrase, "one glowing ring" is one stripe."""
    assert values(reader, "a traffic cone with one glowing ring", "traffic cone") == {"stripes": 1}
    assert values(reader, "a boat with one tall pole for a sail", "boat") == {"masts": 1}


def test_a_stretch_never_spans_two_clauses(reader):
    """No training phrase says its value across "and": "curvy armrests and space for two" is not
    square arms, and a number ending a stretch is its count ("space for two": two seats)."""
    assert values(reader, "a sofa with curvy armrests and space for two", "sofa") == {"seats": 2}


def test_a_clause_with_no_word_read_is_read_whole(reader, monkeypatch):
    """A clause none of whose stretches was read ("a ring of eight", with the stretch pass made
    to read nothing) is read as a whole: "a flower with eight petals" is nearer it than "a flower"
    is. Without the clause pass it is not read; a clause's count must agree."""
    from backend.parts import phrase_reader

    clauses_only = PhraseReader(reader.encoder, threshold=float("inf"))
    read = clauses_only.read("a daisy with a ring of eight", "flower")
    assert [(p.attribute, p.value) for p in read] == [("petals", 8)]
    assert reading_note(read) == 'Read "a ring of eight" as "eight petals".'
    assert values(clauses_only, "a daisy with a ring of five", "flower") == {}  # no value says five
    assert values(reader, "a daisy with a ring of five", "flower") == {}
    monkeypatch.setattr(phrase_reader, "CLAUSE_LEAD", float("inf"))
    assert values(clauses_only, "a daisy with a ring of eight", "flower") == {}


@pytest.mark.parametrize("prompt, category", [
    ("make me a grey bottle - neck: white wood", "bottle"),  # a part's name and its look say no value
    ("a mushroom, whose cap is yellow", "mushroom"),
    ("a tree complete with a stone canopy", "tree"),
])
def test_a_clause_naming_only_a_part_says_nothing(reader, prompt, category):
    assert values(reader, prompt, category) == {}


def test_the_caption_reads_back_as_itself(reader):
    """The pipeline resolves the prompts it is given again: a reading's caption must read the same."""
    read = reader.read("a chair with three feet and nothing to rest the arms on", "chair")
    caption = reader.caption("chair", read)
    assert caption == "a chair with three legs and no arms"
    assert values(reader, caption, "chair") == {p.attribute: p.value for p in read}
    # a training attribute noun read stays the caption's noun: the strongest wording of its value
    assert reader.caption("chair", reader.read("an office chair on wheels", "chair")) == "an office chair with wheels"
    assert reading_note(reader.read(caption, "chair")) is None  # word for word: nothing to tell
    assert reading_note(read) == 'Read "three feet" as "three legs", "nothing to rest the arms" as "no arms".'


def test_a_long_prompt_is_read_in_bounded_time(reader):
    reader.read("a chair with four legs", "chair")  # the category's phrases embedded
    t = time.perf_counter()
    got = values(reader, "a chair with four legs " + "and very nice " * 5000, "chair")
    assert got == {"legs": 4} and time.perf_counter() - t < 10  # only the first MAX_WORDS words
    assert MAX_WORDS <= 64


def test_an_unknown_category_reads_nothing(reader):
    assert reader.read("a thing with four legs", "spaceship hangar") == []


def test_the_shape_model_is_conditioned_on_the_reading(pipe):
    """Asked in other words, the denoisers see exactly what the training words give them; the
    artist is told how the prompt was read and the colours stay in the prompt."""
    resolved = pipe.resolve_prompt("a red chair with three feet and nothing to rest the arms on")
    assert resolved.reading == "a chair with three legs and no arms" and resolved.category == "chair"
    assert resolved.prompt.startswith("a red chair") and '"three feet" as "three legs"' in resolved.note
    said, canonical = pipe._embed(resolved.prompt, 1), pipe._embed("a chair with three legs and no arms", 1)
    assert torch.equal(said.pooled, canonical.pooled) and torch.equal(said.tokens, canonical.tokens)
    plain = pipe.resolve_prompt("a chair")
    assert plain.reading is None and plain.note is None


def test_a_prompt_is_read_once_however_many_shapes_it_makes(pipe, monkeypatch):
    """A job resolves its prompt for its notes and again for each shape: the reading runs once,
    and the prompts kept for that are bounded."""
    from backend.parts import pipeline

    calls = []
    read = pipe.reader.read
    monkeypatch.setattr(pipe.reader, "read", lambda *args: calls.append(args) or read(*args))
    prompt = "a stool with three feet, asked once"
    first = pipe.resolve_prompt(prompt)
    pipe._embed(prompt, 4)
    assert pipe.resolve_prompt(prompt) == first and len(calls) == 1, calls
    for k in range(pipeline.RESOLVED_CACHE + 5):
        pipe.resolve_prompt(f"a table with {k} legs")
    assert len(pipe._resolved) == pipeline.RESOLVED_CACHE and prompt not in pipe._resolved


@pytest.fixture(scope="module")
def pipe():
    from backend.parts.pipeline import PartDiffusionPipeline

    return PartDiffusionPipeline.from_pretrained()


def test_the_reading_evaluation_sees_a_reader_that_reads_everything(reader):
    """eval_reading's "invented" share separates the reader from a nearest-value reader that reads
    every attribute, stated or not (which a split stating every attribute cannot see)."""
    from backend.parts.eval_reading import NearestValueReader, invented, partial_items

    items = partial_items(24, 3, "heldout")
    right, read_anyway, unstated = invented(reader, items)
    _, baseline_anyway, _ = invented(NearestValueReader(reader), items)
    assert unstated > 20 and baseline_anyway == 1.0 and read_anyway < 0.1 and right > 0.9


def test_equal_similarities_go_to_the_longer_stretch_whatever_the_rounding():
    """Two stretches that are both training phrases word for word score 1.0 each, give or take
    the last bit of a CPU's float rounding: the longer one ("office chair", not "wheels") is read first."""
    sims = torch.tensor([[1.0 - 1e-7, 0.2], [1.0, 0.3]])  # span 0: two words, span 1: one word
    assert _best_first(sims, [2, 1]).tolist()[:2] == [0, 2]
    assert _best_first(torch.tensor([[0.9, 0.2], [1.0, 0.3]]), [2, 1]).tolist()[0] == 2  # not when truly nearer
