"""The part counts a prompt states are held in the layout while it is sampled: which counts a
value decides comes from training-split shapes only, the right slots are held, and a prompt that
states nothing, or an ablation that turns holding off, samples as before."""

from collections import Counter

import pytest
import torch

from backend.parts import data, slot_constraints
from backend.parts.pipeline import PartDiffusionPipeline
from backend.parts.service import run_text
from backend.parts.slot_constraints import decided_counts
from backend.results import no_progress


def test_an_attribute_decides_a_count_only_when_each_of_its_values_fixes_it():
    bed = decided_counts("bed")
    assert bed[("footboard", "yes")] == {"footboard": 1} and bed[("footboard", "no")] == {"footboard": 0}
    assert "footboard" not in bed[("size", "single")]  # a double bed has one or not: size decides no footboard
    assert bed[("size", "double")] == {"pillow": 2}
    chair = decided_counts("chair")
    assert chair[("legs", 3)]["leg"] == 3 and chair[("legs", "wheels")]["wheel"] == 5
    assert "seat" not in chair[("legs", 3)]  # always one: no value decides it


@pytest.mark.parametrize("category", ["bed", "chair", "ladder", "flower", "truck"])
def test_the_shipped_table_is_what_the_training_shapes_say(category):
    assert set(slot_constraints._shipped()) == set(data.CATEGORIES)  # every category, none gone
    assert decided_counts(category) == slot_constraints.count_decided(category)


def test_counts_are_learned_from_training_shapes_only():
    """A single bed with a footboard is a held-out combination: the shapes counted never have one."""
    assert data.is_heldout("bed", {"size": "single", "footboard": "yes"})
    assert not any("footboard" in data.part_labels("bed", {"size": "single"}, seed) for seed in range(60))
    assert any("footboard" in data.part_labels("bed", {"size": "double"}, seed) for seed in range(60))


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(2)
    return PartDiffusionPipeline.from_pretrained()


def _run(codec, label):
    return [slot for slot, name in enumerate(codec.templates["ladder"]) if name == label]


def test_the_slots_a_count_decides_are_held(pipe):
    codec = pipe.codec
    known, mask = slot_constraints.slot_constraints(codec, "ladder", {"rungs": 3, "kind": "step"})
    rungs, legs, rung = _run(codec, "rung"), _run(codec, "leg"), 13 + codec.vocabulary.index("rung")
    for slot in rungs[:3] + legs:  # parts: existence and label held, place and size free
        assert known[slot, 12] == 1 and mask[slot, 12:].all() and not mask[slot, :12].any()
    assert all(known[slot, rung] == 1 for slot in rungs[:3])
    for slot in rungs[3:]:  # no part: empty through and through
        assert mask[slot].all() and known[slot, 12] == -1 and (known[slot, :12] == 0).all()
    free = [s for s in range(codec.max_parts) if s not in rungs + legs + _run(codec, "top")]
    assert not mask[free].any()


def test_counts_that_disagree_or_overflow_are_left_free(pipe, monkeypatch):
    monkeypatch.setattr(slot_constraints, "decided_counts", lambda category: {
        ("a", 1): {"rung": 3}, ("b", 2): {"rung": 4}, ("c", 3): {"rung": 40}})
    assert slot_constraints.slot_constraints(pipe.codec, "ladder", {"a": 1, "b": 2}) is None
    assert slot_constraints.slot_constraints(pipe.codec, "ladder", {"c": 3}) is None
    assert slot_constraints.slot_constraints(pipe.codec, "no such thing", {"a": 1}) is None


def test_only_a_new_shape_whose_prompt_states_counts_is_held(pipe, monkeypatch):
    seen = []
    denoise = pipe._denoise
    monkeypatch.setattr(pipe, "_denoise", lambda net, *args, **kw: seen.append((kw.get("held"), kw.get("held_mask")))
                        or denoise(net, *args, **kw))
    shape = pipe.generate("a cactus with three arms and no pot", steps=2)[0]
    held, held_mask = seen[0]
    assert held is not None and held_mask.sum() > 0
    assert shape.labels.count("arm") == 3 and "pot" not in shape.labels  # held exactly, even in two steps
    seen.clear()
    pipe.generate("a cactus", steps=2)  # nothing read: sampled as before
    assert seen[0] == (None, None)
    seen.clear()
    pipe.hold_counts = False
    try:
        pipe.generate("a cactus with three arms and no pot", steps=2)
    finally:
        pipe.hold_counts = True
    assert seen[0] == (None, None)


@pytest.mark.parametrize("prompt, label, stated", [
    ("a cactus with three arms and no pot", "pot", 0),  # a held-out combination
    ("a cactus with three arms and no pot", "arm", 3),
    ("a house with a flat roof, two floors and a chimney", "chimney", 1),  # a held-out combination
])
def test_a_held_out_combination_comes_out_as_stated(pipe, prompt, label, stated):
    for seed in range(3):
        result = run_text(pipe, {"prompt": prompt, "seed": seed, "resolution": 48}, {}, no_progress)
        assert Counter(part.name.split(".")[0] for part in result.parts if len(part.faces))[label] == stated, seed


def test_an_edit_holds_the_counts_in_the_parts_it_regenerates(pipe):
    for seed in range(3):
        chair = pipe.generate("a chair with four legs and a solid back", seed=seed)[0]
        edited = pipe.edit(chair, ["leg"], "a chair with three legs", seed=seed)
        assert edited.labels.count("leg") == 3, seed
        kept = [i for i, label in enumerate(chair.labels) if label == "back"]
        assert torch.equal(edited.gaussians[edited.labels.index("back")], chair.gaussians[kept[0]])  # kept as it was
