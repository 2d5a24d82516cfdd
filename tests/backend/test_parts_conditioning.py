"""The prompt reaches the built-in model: over several seeds, a stated count of parts comes out in
the delivered mesh (parts decoded non-empty, counted by label), and prompts that differ in it
give shapes that differ in it. Replacing every prompt by its bare category fails these. Colours
and materials the prompt states land on the parts it names."""

from collections import Counter

import numpy as np
import pytest
import torch

from backend.colour_space import linear_to_srgb
from backend.parts.appearance import COLOURS
from backend.parts.pipeline import PartDiffusionPipeline
from backend.parts.service import run_text
from backend.results import no_progress

SEEDS = (0, 1, 2)
# (prompt, label counted, the count the prompt states)
PAIRS = [
    (("a chair with three legs", "leg", 3), ("a chair with four legs", "leg", 4)),
    (("an office chair on wheels", "wheel", 5), ("a chair with four legs", "wheel", 0)),
    (("a bookshelf with two shelves", "shelf", 2), ("a bookshelf with five shelves", "shelf", 5)),
    (("a rocket with three fins", "fin", 3), ("a rocket with six fins", "fin", 6)),
]


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(2)
    return PartDiffusionPipeline.from_pretrained()


def delivered(pipe, prompt: str, seed: int) -> Counter:
    result = run_text(pipe, {"prompt": prompt, "seed": seed, "resolution": 64}, {}, no_progress)  # at 48³ a thin shelf can vanish
    return Counter(part.name.split(".")[0] for part in result.parts if len(part.faces))


@pytest.mark.parametrize("first, second", PAIRS, ids=[pair[0][0] for pair in PAIRS])
def test_a_stated_count_comes_out_and_differs_from_the_other_prompts(pipe, first, second):
    counts = {}
    for prompt, label, stated in (first, second):
        counts[prompt] = [delivered(pipe, prompt, seed)[label] for seed in SEEDS]
        right = sum(count == stated for count in counts[prompt])
        assert right >= len(SEEDS) - 1, (prompt, label, counts[prompt])  # at most one seed off
    assert counts[first[0]] != counts[second[0]]


def _materials(result) -> dict:
    return {part.name.split(".")[0]: part.material for part in result.parts}


def _srgb(material) -> np.ndarray:
    return linear_to_srgb(material.base_color[:3])


def test_colours_and_materials_in_the_prompt_reach_their_parts(pipe):
    chair = _materials(run_text(pipe, {"prompt": "a red chair with black metal legs", "seed": 0, "resolution": 48}, {},
                                no_progress))
    assert chair["leg"].name == "leg (black metal)" and chair["leg"].metallic == 1.0
    assert np.allclose(_srgb(chair["leg"]), COLOURS["black"], atol=0.01)
    assert chair["seat"].name == "seat (red)" and chair["seat"].metallic == 0.0
    table = _materials(run_text(pipe, {"prompt": "a wooden table with a glass top", "seed": 0, "resolution": 48}, {},
                                no_progress))
    assert table["top"].transmission == 1.0 and table["leg"].name == "leg (wood)"


def test_without_colours_a_part_gets_its_category_default(pipe):
    bottle = _materials(run_text(pipe, {"prompt": "a bottle", "seed": 0, "resolution": 48}, {}, no_progress))
    assert bottle["body"].transmission == 1.0 and bottle["body"].name == "body"  # glass, though the prompt says nothing


def test_an_edit_restyles_the_parts_it_regenerates_and_keeps_the_others(pipe):
    shape = pipe.generate("a red chair with black metal legs", seed=0)[0]
    edited = pipe.edit(shape, ["leg"], "a chair with wooden legs", seed=0)
    looks = edited.extra["looks"]
    assert looks["seat"] == ["red", None] and looks["leg"] == [None, "wood"], looks
    again = pipe.complete(edited, [n for n in edited.names if not n.startswith("back")], seed=1)
    assert again.extra["looks"]["seat"] == ["red", None]  # completion states nothing new: the looks stay


def test_an_unknown_object_is_the_nearest_known_one_in_the_colours_asked_for(pipe):
    assert pipe.resolve_prompt("a giraffe")[2]  # unknown without colour words
    result = run_text(pipe, {"prompt": "a red giraffe", "seed": 0, "resolution": 32}, {}, no_progress)
    assert "does not know" in " ".join(result.metadata["notes"])  # its colour does not make it known
    assert result.parts and all(part.material.name.endswith("(red)") for part in result.parts), \
        [part.material.name for part in result.parts]
