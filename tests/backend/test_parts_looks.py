"""Colour and material words the captions never use ("crimson", "steel legs"): found in WordNet
with the training colour and material words as the only anchors, read in the prompt's context
("an oak" is a tree, "an oak table" is wooden), and put in the training words before the
appearance reader reads them."""

import json

import pytest
import torch

from backend.parts.appearance_captions import COLOUR_WORDS, MATERIAL_WORDS, training_looks
from backend.parts.appearance_reader import looks_note, plain_looks
from backend.parts.lexicon import PATH, Lexicon, shipped
from backend.parts.lexicon_build import WordNetNouns, looks, not_looks, with_training_looks
from tests.fixtures.tiny_wordnet import write_nouns

# Colours under "color", materials under "matter" (through "solid") or, for a fabric, an artifact.
SYNSETS = [
    ("00000001", ["color"], []), ("00000002", ["chromatic_color"], ["00000001"]),
    ("00000003", ["red"], ["00000002"]), ("00000004", ["crimson", "ruby"], ["00000003"]),
    ("00000005", ["blue"], ["00000002"]), ("00000006", ["purple_red"], ["00000003", "00000005"]),
    ("00000007", ["cherry"], ["00000020"]), ("00000008", ["cherry"], ["00000003"]),
    ("00000009", ["teal"], ["00000005"]),
    ("00000010", ["matter"], []), ("00000011", ["solid"], ["00000010"]), ("00000012", ["metal"], ["00000010"]),
    ("00000013", ["alloy", "metal"], ["00000010"]), ("00000014", ["steel"], ["00000013"]),
    ("00000015", ["in", "indium"], ["00000012"]), ("00000016", ["glass"], ["00000011"]),
    ("00000020", ["artifact"], []), ("00000021", ["fabric"], ["00000020"]), ("00000022", ["velvet"], ["00000021"]),
    ("00000023", ["canopy"], ["00000021"]), ("00000024", ["drinking_glass", "glass"], ["00000020"]),
    ("00000025", ["goblet"], ["00000024"]),
]
# "teal" is three other things first: its colour sense comes too late to count
SENSE_ORDER = {"teal": ["00000020", "00000011", "00000010", "00000009"]}


@pytest.fixture
def table(tmp_path):
    wordnet = WordNetNouns(write_nouns(tmp_path, SYNSETS, SENSE_ORDER))
    return looks(wordnet, {"red": ["red"], "blue": ["blue"]},
                 {"metal": ["metal"], "glass": ["glass"], "fabric": ["fabric"]}, excluded={"canopy"})


def test_colour_and_material_words_are_kinds_of_the_training_words(table):
    assert table["crimson"] == ["red", None] and table["ruby"] == ["red", None]
    assert table["cherry"] == ["red", None]  # its colour sense is its second: a fruit first
    assert table["steel"] == [None, "metal"]  # an alloy, a sense of "metal"
    assert table["velvet"] == [None, "fabric"]  # a fabric is an artifact, anchored by the noun's first sense
    assert "goblet" not in table  # a drinking glass is the second sense of "glass": not the material


def test_rare_senses_ties_names_and_short_words_say_nothing(table):
    assert "purple red" not in table  # as near to red as to blue
    assert "teal" not in table  # a colour only in its fourth sense
    assert "canopy" not in table  # a part's name
    assert "in" not in table and table["indium"] == [None, "metal"]  # a word, not an element's symbol


def test_only_training_words_anchor_the_shipped_looks():
    """The held-out paraphrase words ("crimson", "steel") are never an input."""
    colours, material_nouns, material_forms = training_looks()
    assert colours == {c: list(train) for c, (train, _) in COLOUR_WORDS.items()}
    assert material_forms == {k: sorted({w for forms in train for w in forms}) for k, (train, _) in MATERIAL_WORDS.items()}
    assert all(set(material_nouns[k]) <= set(material_forms[k]) for k in material_forms)
    shipped_looks = json.loads(PATH.read_text())["looks"]
    assert all(shipped_looks[w] == [c, None] for c, words in colours.items() for w in words)
    assert all(shipped_looks[w] == [None, k] for k, words in material_forms.items() for w in words)
    assert not not_looks() & set(shipped_looks)
    # what WordNet says of some paraphrase words, found rather than taught
    assert shipped_looks["crimson"] == ["red", None] and shipped_looks["steel"] == [None, "metal"]


def test_training_words_stay_as_they_are(table):
    built = with_training_looks(table, {"grey": ["grey", "gray"]}, {"wood": ["wood", "wooden"]})
    assert built["gray"] == ["grey", None] and built["wooden"] == [None, "wood"] and built["crimson"] == ["red", None]


@pytest.mark.parametrize("prompt, found", [
    ("an oak", []),  # the only thing named: a tree
    ("an oak table", [("oak", None, "wood")]),  # a table, in oak
    ("a pine book rack", [("pine", None, "wood")]),  # before another thing's noun: its material
    ("an oak with three tiers", []),  # before no noun: the object
    ("a tree shaped like a pine", []),  # a pine is a tree too: a noun here
    ("a chair with white metal legs", [("white", "white", None), ("metal", None, "metal")]),  # not the alloy
    ("a navy blue chair", [("navy blue", "blue", None)]),
    ("a rose-pink vase with jet-black handles", [("rose-pink", "pink", None), ("jet-black", "black", None)]),
    ("a table in the garden", []),
])
def test_looks_are_read_in_the_whole_prompt(prompt, found):
    lexicon = shipped()
    assert [(prompt[look.start:look.end], look.colour, look.kind) for look in lexicon.find_looks(prompt)] == found


def test_a_colour_word_names_the_object_only_when_nothing_else_does():
    lexicon = shipped()
    assert [n.category for n in lexicon.named("an oak")] == ["tree"]
    assert [n.category for n in lexicon.named("an oak table")] == ["table"]
    assert lexicon.named("a pine book rack") == []  # no category's noun: "book rack" is read by its caption
    assert [n.category for n in lexicon.named("a tall pine in the snow")] == ["tree"]
    assert lexicon.without_looks("a crimson chair with steel legs") == "a chair with legs"


def test_the_reader_gets_the_training_words_and_the_artist_a_note():
    lexicon = shipped()
    assert plain_looks("a crimson chair with oak legs, made of steel", lexicon) == \
        "a red chair with wooden legs, made of metal"  # a material's adjective before a word, its noun elsewhere
    assert plain_looks("An oak table with a mahogany top", lexicon) == "A wooden table with a brown wooden top"
    assert plain_looks("a red wooden chair with gray metal legs", lexicon) == "a red wooden chair with gray metal legs"
    assert looks_note("a crimson chair with steel legs", lexicon) == 'Read "crimson" as red, "steel" as metal.'
    assert looks_note("a red chair", lexicon) is None


def test_the_lexicon_reads_without_looks_when_an_old_file_has_none(tmp_path):
    data = json.loads(PATH.read_text())
    del data["looks"]
    (tmp_path / "lexicon.json").write_text(json.dumps(data))
    old = Lexicon.load(tmp_path / "lexicon.json")
    assert old.find_looks("a crimson chair") == [] and old.named("an oak table")[-1].category == "table"


@pytest.fixture(scope="module")
def pipe():
    from backend.parts.pipeline import PartDiffusionPipeline

    torch.set_num_threads(2)
    return PartDiffusionPipeline.from_pretrained()


def test_words_the_captions_never_use_reach_their_parts(pipe):
    from backend.parts.service import run_text
    from backend.results import no_progress

    result = run_text(pipe, {"prompt": "a crimson chair with steel legs", "seed": 0, "resolution": 32}, {}, no_progress)
    materials = {part.name.split(".")[0]: part.material for part in result.parts}
    assert materials["seat"].name == "seat (red)" and materials["seat"].metallic == 0.0
    assert materials["leg"].name.endswith("metal)") and materials["leg"].metallic == 1.0
    assert 'Read "crimson" as red, "steel" as metal.' in " ".join(result.metadata["notes"])
    # without the lexicon the reader misses the colour: MiniLM puts "crimson" far from "red"
    missed = pipe.appearance.read(pipe.text_encoder, ["a crimson chair with steel legs"], [["seat", "leg"]])[0]
    assert missed["seat"][0] != "red", missed


def test_looks_are_found_where_they_are_written_whatever_the_case():
    lexicon = shipped()
    prompt = "İİ A CRIMSON chair"  # "İ".lower() is two characters: offsets must come from the text as given
    (look,) = lexicon.find_looks(prompt)
    assert prompt[look.start:look.end] == "CRIMSON" and plain_looks(prompt, lexicon) == "İİ A red chair"
