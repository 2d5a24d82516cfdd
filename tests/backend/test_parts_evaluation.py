"""The built-in model's evaluation measures what it says: held-out splits are held out, attributes
are read from the delivered mesh, and the distribution metrics rank a wrong system below the ideal."""

import numpy as np
import pytest
import torch

from backend.parts import data
from backend.parts.eval_appearance import WORDINGS as APPEARANCE_WORDINGS
from backend.parts.eval_appearance import appearance_items, reader_training_prompts
from backend.parts.eval_attributes import (
    SPLITS, Item, delivered_parts, heldout_items, ideal_baseline, random_attribute_baseline, score,
)
from backend.parts.eval_distribution import averaged, chamfer_matrix, metrics_from, per_category, reference_system, shape_points
from backend.parts.pipeline import PartDiffusionPipeline
from backend.parts.train import GridCache, TrainConfig, encode_shape


@pytest.fixture(scope="module")
def training_shapes():
    cfg = TrainConfig()
    return data.dataset(cfg.n_shapes, cfg.seed, split="train")  # exactly what train.py trains on


@pytest.fixture(scope="module")
def trained(training_shapes):
    return {c for s in training_shapes for c in s.captions}  # training_captions(), from the shapes made once


@pytest.mark.parametrize("split", [s for s in SPLITS if s != "verbatim-seen"])
def test_heldout_splits_are_never_training_captions(trained, split):
    items = heldout_items(split, 200, 1234, trained)
    assert len(items) == 200 and not any(i.prompt in trained for i in items)
    assert len({i.prompt for i in items}) > 150  # varied wording, not one frame repeated
    if split == "unseen-combination":
        assert all(data.is_heldout(i.category, i.stated) for i in items)
    else:  # seen combinations: their shapes are held out, their combinations are not
        assert not any(data.is_heldout(i.category, i.stated) for i in items)


def test_appearance_prompts_are_never_reader_training_captions(training_shapes):
    seen = reader_training_prompts(training_shapes, TrainConfig().seed)  # what train.py trains the reader on
    for wording in APPEARANCE_WORDINGS:
        items = appearance_items(wording, 200, 1234, seen)
        assert len({prompt for prompt, _ in items}) > 150
        assert all(any(look != (None, None) for look in targets.values()) for _, targets in items)  # each states a look


def test_verbatim_seen_is_trained_on_and_a_leak_is_refused(trained):
    items = heldout_items("verbatim-seen", 40, 1234, trained)
    assert all(i.prompt in trained for i in items)
    leaked = trained | {i.prompt for i in heldout_items("paraphrase", 40, 1234, set())}
    with pytest.raises(ValueError, match="training captions"):
        heldout_items("paraphrase", 40, 1234, leaked)


def test_attributes_are_read_from_the_delivered_mesh():
    """A shelf shrunk to nothing is in the layout but not in the mesh: it must not count."""
    torch.set_num_threads(2)
    pipe = PartDiffusionPipeline.from_pretrained()
    shape = data.sample_shape(3, "bookshelf", {"shelves": 4})
    encoded = encode_shape(shape, pipe.autoencoder, GridCache())
    read = data.infer_attributes("bookshelf", delivered_parts(pipe, encoded, 64))
    assert read["shelves"] == 4
    shelf = encoded.labels.index("shelf")
    encoded.gaussians[shelf, 10:13] = 1e-3  # half extents: thinner than a voxel
    parts = delivered_parts(pipe, encoded, 64)
    assert len(parts) == len(encoded) - 1 and encoded.names[shelf] not in {p.name for p in parts}
    assert data.infer_attributes("bookshelf", parts)["shelves"] == 3


def test_a_delivered_part_is_measured_from_its_faces():
    pipe = PartDiffusionPipeline.from_pretrained()
    shape = data.sample_shape(0, "table", {"top": "square", "legs": 4})
    encoded = encode_shape(shape, pipe.autoencoder, GridCache())
    parts = {p.name: p for p in delivered_parts(pipe, encoded, 64)}
    top = encoded.labels.index("top")
    layout_half = encoded.half_extents[top].numpy()
    mesh_half = parts[encoded.names[top]].half_extents
    assert np.allclose(mesh_half, layout_half, atol=2.5 * 2 / 63)  # within a couple of voxels of the layout


def test_the_ideal_baseline_reads_the_attributes_it_was_asked_for(trained):
    """Procedural shapes with the stated attributes, through the model's decoder and the reader,
    score near 1, and far above shapes with random attributes on the same items."""
    pipe = PartDiffusionPipeline.from_pretrained()
    items = heldout_items("unseen-wording", 20, 1234, trained)
    ideal = ideal_baseline(pipe, items, 64, 0)
    assert ideal["attribute"] >= 0.95 and ideal["n"] == 20
    assert ideal["attribute"] > random_attribute_baseline(items, 0)["attribute"] + 0.3


def test_score_counts_attributes_shapes_and_misses():
    items = [Item("a", "chair", {"legs": 4, "arms": "none"}), Item("b", "chair", {"legs": 3, "arms": "none"})]
    m = score(items, [{"legs": 4, "arms": "none"}, {"legs": 4, "arms": "none"}])
    assert m["attribute"] == 0.75 and m["shape"] == 0.5 and m["worst"] == {"chair.legs": 1}
    assert m["attribute_se"] == pytest.approx((0.75 * 0.25 / 4) ** 0.5)


def test_chamfer_matrix_matches_the_definition():
    rng = np.random.default_rng(0)
    a = [rng.random((50, 3), dtype=np.float32) for _ in range(5)]
    b = [rng.random((50, 3), dtype=np.float32) for _ in range(3)]
    got = chamfer_matrix(a, b, chunk=2)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            d = ((x[:, None] - y[None]) ** 2).sum(-1)
            assert got[i, j] == pytest.approx(d.min(1).mean() + d.min(0).mean(), rel=1e-4)


def test_distribution_metrics_rank_a_wrong_system_below_the_ideal():
    """Unpaired sets of three categories, four shapes each: the ideal system's 1-NNA is near 0.5, a
    system answering with the wrong category near 1, a collapsed one (one shape per category) covers
    less. Pooled over categories the wrong system looks ideal; per category it does not."""
    references = [data.sample_shape(100 + k, c, split="val") for c in ("chair", "table", "stool") for k in range(4)]
    cats = [s.category for s in references]
    ref = [shape_points(s, 256, 48, k) for k, s in enumerate(references)]
    scores, points = {}, {}
    for name in ("ideal", "wrong-category", "one-per-category"):
        points[name] = [shape_points(s, 256, 48, 50 + k) for k, s in enumerate(reference_system(name, references, 7))]
        scores[name] = averaged(per_category(points[name], cats, ref, cats))
    assert scores["ideal"]["1-nna"] <= 0.75 and scores["wrong-category"]["1-nna"] >= 0.9
    assert scores["ideal"]["mmd"] < scores["wrong-category"]["mmd"]
    assert scores["one-per-category"]["coverage"] <= 0.5 and scores["one-per-category"]["coverage"] < scores["ideal"]["coverage"]
    wrong = points["wrong-category"]
    pooled = metrics_from(chamfer_matrix(wrong, ref), chamfer_matrix(wrong, wrong), chamfer_matrix(ref, ref))
    assert pooled["1-nna"] < scores["wrong-category"]["1-nna"]  # why the metrics are per category


@pytest.mark.parametrize("category", list(data.CATEGORIES))
def test_a_shape_missing_parts_reads_as_unknown_not_an_error(category):
    """A generated shape can lack any part (a chair without a back): it is read (what the reading
    needs and misses reads as None), never an error that ends the evaluation."""
    shape = data.sample_shape(0, category)
    for label in {p.label for p in shape.parts}:  # without that label, and with only that label
        for parts in ([p for p in shape.parts if p.label != label], [p for p in shape.parts if p.label == label]):
            assert set(data.infer_attributes(category, parts)) == set(data.attribute_space(category))
    assert set(data.infer_attributes(category, [])) == set(data.attribute_space(category))
