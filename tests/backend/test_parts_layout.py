"""Slot templates, text conditions and the attaching of floating parts (built-in part model)."""

import torch

from backend.parts import data
from backend.parts.contact import attach_floating_parts
from backend.parts.diffusion import DenoiserConfig, PartDenoiser, SlotCodec, TextCondition
from backend.parts.evaluate import occupancy_components
from backend.parts.pipeline import PartDiffusionPipeline
from backend.parts.representation import CENTER
from backend.parts.train import GridCache, draw_batch, encode_shape, slot_buckets, slot_templates


def _codec(shapes, latent_dim=8):
    stats = {"layout_mean": torch.zeros(12), "layout_std": torch.ones(12),
             "latent_mean": torch.zeros(latent_dim), "latent_std": torch.ones(latent_dim)}
    templates = slot_templates(shapes, data.PART_VOCABULARY)
    return SlotCodec(data.PART_VOCABULARY, max(map(len, templates.values())), stats, templates)


def test_a_slot_holds_the_same_part_whatever_the_counts():
    three = data.sample_shape(1, "chair", {"legs": 3, "arms": "none"})
    four = data.sample_shape(2, "chair", {"legs": 4, "arms": "square"})
    pipe = PartDiffusionPipeline.from_pretrained()
    codec = _codec([three, four])
    slots = {}
    for s in (three, four):
        shape = encode_shape(s, pipe.autoencoder, GridCache())
        layout, _, exists, slot_of = codec.encode(shape)
        assert sorted(slot_of) == sorted(set(slot_of)) and int(exists.sum()) == len(shape)
        slots[len([l for l in shape.labels if l == "leg"])] = {l: slot_of[i] for i, l in enumerate(shape.labels) if l == "seat"}
        labels = [codec.vocabulary[int(layout[k, 13:].argmax())] for k in slot_of]
        assert labels == shape.labels  # every part's label is in its slot
    assert slots[3] == slots[4]  # one leg fewer does not shift the seat into another slot


def test_parts_outside_the_template_take_free_slots():
    chair = data.sample_shape(1, "chair", {"legs": 4})
    pipe = PartDiffusionPipeline.from_pretrained()
    codec = _codec([chair])
    shape = encode_shape(chair, pipe.autoencoder, GridCache())
    shape.labels = shape.labels[:-1] + ["wing"]  # no chair has a wing
    slot_of = codec.assign_slots(shape)
    assert len(set(slot_of)) == len(shape) and max(slot_of) < codec.max_parts


def test_unconditional_rows_replace_only_the_dropped_prompts():
    net = PartDenoiser(DenoiserConfig(token_dim=5, width=16, depth=1, heads=2, slots=4, categories=3))
    torch.nn.init.normal_(net.null_token)
    text = TextCondition(torch.randn(2, 384), torch.randn(2, 6, 384), torch.ones(2, 6, dtype=torch.bool),
                         torch.tensor([0, 2]))
    out = net.unconditional(text, drop=torch.tensor([True, False]))
    assert torch.equal(out.pooled[0], net.null_text.detach()) and torch.equal(out.pooled[1], text.pooled[1])
    assert out.mask[0].tolist() == [True] + [False] * 5 and out.mask[1].all()
    assert out.category.tolist() == [3, 2]  # row 0 → "no category"
    both = TextCondition.cat([out, TextCondition(torch.randn(1, 384), torch.randn(1, 3, 384),
                                                 torch.ones(1, 3, dtype=torch.bool), torch.tensor([1]))])
    assert both.tokens.shape == (3, 6, 384) and both.mask[2].tolist() == [True] * 3 + [False] * 3
    v = net(torch.randn(3, 4, 5), torch.tensor([1, 500, 999]), both)
    assert v.shape == (3, 4, 5) and torch.isfinite(v).all()


def test_cutting_unused_token_columns_leaves_the_prediction_unchanged():
    net = PartDenoiser(DenoiserConfig(token_dim=5, width=16, depth=2, heads=2, slots=4, categories=3)).eval()
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[0, :4], mask[1, :6], mask[2, :2] = True, True, True  # columns 6-8 are padding in every row
    text = TextCondition(torch.randn(3, 384), torch.randn(3, 9, 384), mask, torch.tensor([0, 1, 2]))
    cut = text.trimmed()
    assert cut.tokens.shape[1] == 6 and torch.equal(cut.mask, mask[:, :6])
    x, t = torch.randn(3, 4, 5), torch.tensor([3, 300, 900])
    torch.testing.assert_close(net(x, t, cut), net(x, t, text), rtol=1e-5, atol=1e-6)


def test_training_batches_come_from_one_template_length_and_draw_every_caption_equally():
    lengths = torch.tensor([4] * 300 + [7] * 100 + [26] * 100)  # template length of each caption's category
    buckets = slot_buckets(lengths)
    assert [(n, len(ids)) for n, ids in buckets] == [(4, 300), (8, 100), (28, 100)]
    gen = torch.Generator().manual_seed(0)
    counts, cut = torch.zeros(len(lengths)), []
    for _ in range(3000):
        k, slots = draw_batch(gen, len(lengths), 16, buckets, full_rate=0.2, slots=26)
        counts += torch.bincount(k, minlength=len(lengths))
        assert slots == 26 or len(set(lengths[k].tolist())) == 1  # a cut batch holds one bucket
        assert bool((lengths[k] <= slots).all())  # and never cuts a caption's parts off
        cut.append(slots < 26)
    assert 0.58 < sum(cut) / len(cut) < 0.70  # 80% of batches cut, less the fifth drawn from the 26-slot bucket
    share = counts.reshape(5, 100).sum(1) / counts.sum()  # per hundred captions
    torch.testing.assert_close(share, torch.full((5,), 0.2), atol=0.02, rtol=0)


def test_floating_part_is_attached_and_kept_parts_do_not_move():
    pipe = PartDiffusionPipeline.from_pretrained()
    stool = encode_shape(data.sample_shape(4, "stool", {"legs": 3}), pipe.autoencoder, GridCache())
    assert occupancy_components(pipe, stool, 64) == 1
    leg = stool.labels.index("leg")
    broken = stool.select(list(range(len(stool))))
    broken.gaussians[leg, 1] -= 0.3  # the leg drops away from the seat
    assert occupancy_components(pipe, broken, 64) == 2

    fixed, moved = attach_floating_parts(broken, pipe.autoencoder, movable=[leg])
    assert moved == [stool.names[leg]] and occupancy_components(pipe, fixed, 64) == 1
    others = [i for i in range(len(stool)) if i != leg]
    assert torch.equal(fixed.gaussians[others], broken.gaussians[others])
    assert torch.equal(fixed.gaussians[leg, 3:], broken.gaussians[leg, 3:])  # moved, not turned or scaled
    shift = fixed.gaussians[leg, CENTER] - broken.gaussians[leg, CENTER]
    assert 0.2 < float(shift[1]) < 0.35 and float(shift[[0, 2]].abs().max()) < 0.05  # back up, about as far

    still, moved = attach_floating_parts(broken, pipe.autoencoder, movable=others)
    assert moved and torch.equal(still.gaussians[leg], broken.gaussians[leg])  # the leg may not move: the rest does
    untouched, moved = attach_floating_parts(stool, pipe.autoencoder)
    assert moved == [] and torch.equal(untouched.gaussians, stool.gaussians)



def test_a_new_part_through_a_kept_part_is_shortened_to_end_inside_it():
    from backend.parts.contact import crossing_labels, stop_inside_kept_parts, stop_smaller_crossing_parts, world_boxes
    from backend.parts.representation import PartShape

    def box(center, half, turn=None):
        rotation = torch.eye(3) if turn is None else turn
        return torch.cat([torch.tensor(center), rotation[:, 0], rotation[:, 1], torch.tensor(half), torch.ones(1)])

    seat = box([0.0, 0.5, 0.0], [0.5, 0.05, 0.5])
    pedestal = box([0.0, 0.35, 0.0], [0.05, 0.3, 0.05])  # y 0.05 .. 0.65: right through the seat (0.45 .. 0.55)
    wheel = box([0.3, 0.05, 0.0], [0.05, 0.05, 0.05])  # touches nothing kept
    slanted = torch.tensor([[0.8, -0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    strut = box([-0.2, 0.35, 0.0], [0.05, 0.3, 0.05], slanted)  # crosses too, but not along a box axis
    shape = PartShape(["seat", "pedestal", "wheel", "strut"], ["seat", "pedestal", "wheel", "support"],
                      torch.stack([seat, pedestal, wheel, strut]), torch.zeros(4, 8))
    out, shortened = stop_inside_kept_parts(shape, kept=[0])
    assert shortened == ["pedestal"]
    lo, hi = world_boxes(out.gaussians)
    assert torch.allclose(lo[1], torch.tensor([-0.05, 0.05, -0.05])) and torch.allclose(hi[1], torch.tensor([0.05, 0.5, 0.05]))
    assert torch.equal(out.gaussians[[0, 2, 3]], shape.gaussians[[0, 2, 3]])
    assert torch.equal(out.gaussians[1, 3:9], shape.gaussians[1, 3:9])  # shortened, not turned

    # Where the category's training shapes cross that way, a crossing is design, not an error.
    lamp = PartShape(["shade", "pole"], ["shade", "pole"], torch.stack([seat, pedestal]), torch.zeros(2, 8),
                     category="floor lamp")
    assert ("pole", "shade") not in crossing_labels("floor lamp")
    assert ("seat", "leg") in crossing_labels("chair") and ("pedestal", "seat") not in crossing_labels("chair")
    flipped = PartShape(["pole", "shade"], ["pole", "shade"], torch.stack([pedestal, seat]), torch.zeros(2, 8),
                        category="floor lamp")
    assert ("shade", "pole") in crossing_labels("floor lamp")
    out, shortened = stop_inside_kept_parts(flipped, kept=[0])  # a new shade around a kept pole
    assert shortened == [] and torch.equal(out.gaussians, flipped.gaussians)
    assert stop_inside_kept_parts(lamp, kept=[0])[1] == ["pole"]  # a pole through a kept shade: never in training

    # A generated chair: the smaller part of a crossing yields, the larger stays.
    chair = PartShape(["seat", "leg"], ["seat", "leg"], torch.stack([seat, pedestal]), torch.zeros(2, 8), category="chair")
    out, shortened = stop_smaller_crossing_parts(chair)
    assert shortened == ["leg"] and torch.equal(out.gaussians[0], chair.gaussians[0])
    assert torch.allclose(world_boxes(out.gaussians)[1][1], torch.tensor([0.05, 0.5, 0.05]))  # ends mid-seat


def test_mixed_parts_are_placed_relative_to_the_shared_anchor():
    from backend.parts.pipeline import align_to_anchor
    from backend.parts.representation import PartShape

    def box(center, half):
        return torch.cat([torch.tensor(center), torch.eye(3)[:, 0], torch.eye(3)[:, 1], torch.tensor(half), torch.ones(1)])

    b = PartShape(["seat", "leg"], ["seat", "leg"], torch.stack([box([0.0, 0.0, 0.0], [0.5, 0.05, 0.5]),
                                                                 box([0.4, -0.45, 0.4], [0.05, 0.4, 0.05])]), torch.zeros(2, 8))
    a = PartShape(["seat"], ["seat"], torch.stack([box([0.0, 0.3, 0.1], [0.25, 0.05, 0.5])]), torch.zeros(1, 8))
    leg = align_to_anchor(b, [1], a)[0]
    assert torch.allclose(leg[:3], torch.tensor([0.2, -0.15, 0.5]))  # under A's seat corner, as under B's
    assert torch.allclose(leg[9:12], torch.tensor([0.025, 0.4, 0.05]))  # narrower along x, like A's seat
    alone = PartShape(["top"], ["top"], a.gaussians.clone(), torch.zeros(1, 8))
    assert torch.equal(align_to_anchor(b, [1], alone), b.gaussians[[1]])  # nothing shared: as it was


def test_a_new_part_centred_outside_the_decode_grid_is_left_out():
    pipe = PartDiffusionPipeline.from_pretrained()
    shape = encode_shape(data.sample_shape(1, "chair", {"legs": 4, "arms": "none"}), pipe.autoencoder, GridCache())
    leg = shape.labels.index("leg")
    shape.gaussians[leg, CENTER] = torch.tensor([0.1, 2.3, 0.0])  # far above the back: never meshed
    layout, latents, _, _ = pipe.codec.encode(shape)
    out = pipe._to_shape(layout, latents, "a chair with four legs", attach_parts=False)
    assert len(out) == len(shape) - 1 and out.labels.count("leg") == 3
    assert out.extra["left_outside"] == ["leg"] and bool((out.centers.abs() <= 1.0).all())


def test_decoding_drops_a_part_s_crumbs_but_never_a_small_part():
    from backend.parts.decode import OUTSIDE, drop_fragments

    values = torch.full((24, 24, 24), OUTSIDE)
    owner = torch.full((24, 24, 24), -1)
    values[2:14, 2:14, 2:14], owner[2:14, 2:14, 2:14] = 1.0, 0  # part 0: its body
    values[20, 20, 20], owner[20, 20, 20] = 1.0, 0  # ... and a crumb of it
    values[18:20, 2:4, 2:4], owner[18:20, 2:4, 2:4] = 1.0, 1  # part 1: small, but all of itself
    out = drop_fragments(values, owner)
    assert out[20, 20, 20] == OUTSIDE and (out[2:14, 2:14, 2:14] > 0).all() and (out[18:20, 2:4, 2:4] > 0).all()


def test_parts_are_grouped_whole_by_touching_voxels():
    from backend.parts.contact import touching_groups

    owners = -torch.ones(16, 16, 16, dtype=torch.long)
    owners[0:6, 0:6, 0:6] = 0  # the body
    owners[6:8, 0:2, 0:2] = 1  # part 1 touches it ...
    owners[12:14, 12:14, 12:14] = 1  # ... and the grid cut a second piece of it off
    owners[12:14, 0:2, 12:14] = 2  # part 2 touches nothing
    group = touching_groups(owners.numpy(), 3)
    assert group[0] == group[1] != group[2]


def test_mixed_parts_are_anchored_to_the_shared_part_nearest_them():
    from backend.parts.pipeline import align_to_anchor
    from backend.parts.representation import PartShape

    def box(center, half):
        return torch.cat([torch.tensor(center), torch.eye(3)[:, 0], torch.eye(3)[:, 1], torch.tensor(half), torch.ones(1)])

    # B: a seat with a leg under it and a back; A: a seat twice as thick and a back bigger than it.
    b = PartShape(["seat", "back", "leg"], ["seat", "back", "leg"],
                  torch.stack([box([0.0, 0.0, 0.0], [0.5, 0.05, 0.5]), box([0.0, 0.3, -0.45], [0.5, 0.25, 0.05]),
                               box([0.4, -0.25, 0.4], [0.05, 0.2, 0.05])]), torch.zeros(3, 8))
    a = PartShape(["seat", "back"], ["seat", "back"],
                  torch.stack([box([0.0, 0.0, 0.0], [0.5, 0.1, 0.5]), box([0.0, 0.45, -0.45], [0.5, 0.3, 0.2])]),
                  torch.zeros(2, 8))
    leg = align_to_anchor(b, [2], a)[0]  # by the seat (it touches the leg), not by the bigger back
    assert torch.allclose(leg[:3], torch.tensor([0.4, -0.5, 0.4])) and torch.allclose(leg[10], torch.tensor(0.4))
    # A leg twice as long would reach below the decode grid: squeezed towards the seat to fit.
    b.gaussians[2, :3], b.gaussians[2, 10] = torch.tensor([0.4, -0.45, 0.4]), 0.4
    long_leg = align_to_anchor(b, [2], a)[0]
    assert float(long_leg[1] - long_leg[10]) >= -0.95 - 1e-5 and float(long_leg[1] + long_leg[10]) <= 0.0
