"""The built-in part model: autoencoder, samplers, pipeline with the shipped weights, training."""

import json

import numpy as np
import pytest
import torch

from backend.parts import data
from backend.parts.autoencoder import lattice
from backend.parts.pipeline import PartDiffusionPipeline, category_prompt, repaint_path
from backend.parts.service import run_text
from backend.parts.representation import PartShape
from backend.errors import JobCancelled
from backend.results import no_progress

FAST = dict(steps=4, guidance_scale=3.0)


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(2)
    return PartDiffusionPipeline.from_pretrained()


@pytest.fixture(scope="module")
def chair(pipe):
    return pipe.generate("a chair with four legs", seed=0, steps=8)[0]


def assert_parts_equal(before: PartShape, after: PartShape, names):
    for name in names:
        i, j = before.names.index(name), after.names.index(name)
        assert torch.equal(before.gaussians[i], after.gaussians[j]), name
        assert torch.equal(before.latents[i], after.latents[j]), name
        assert before.labels[i] == after.labels[j]


def assert_regenerated(before: PartShape, after: PartShape, kept):
    """Something other than the kept parts changed: returning the input untouched fails."""
    fresh = [j for j, name in enumerate(after.names) if name not in kept]
    old = {tuple(g.tolist()) for i, g in enumerate(before.gaussians) if before.names[i] not in kept}
    assert fresh and any(tuple(after.gaussians[j].tolist()) not in old for j in fresh), "nothing was regenerated"


def test_autoencoder_reconstructs_heldout_parts(pipe):
    parts = [p for s in data.dataset(20, seed=99, split="val") for p in s.parts][:120]
    grid = pipe.autoencoder.config.grid
    inputs = torch.from_numpy(np.stack([p.local_occupancy(lattice(grid).numpy()).reshape((grid,) * 3) for p in parts]))
    points = torch.rand(len(parts), 4096, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    truth = torch.from_numpy(np.stack([p.local_occupancy(q.numpy()) for p, q in zip(parts, points)]))
    with torch.no_grad():
        pred = pipe.autoencoder.decode(pipe.autoencoder.encode(inputs), points) > 0
    iou = (pred & truth).sum(1).float() / (pred | truth).sum(1).clamp(min=1).float()
    assert iou.mean() >= 0.8, f"mean IoU {iou.mean():.3f}"


def test_partshape_dict_round_trip_is_exact(chair):
    back = PartShape.from_dict(json.loads(json.dumps(chair.to_dict())))
    assert back.names == chair.names and back.labels == chair.labels
    assert torch.equal(back.gaussians, chair.gaussians) and torch.equal(back.latents, chair.latents)


def test_chair_with_four_legs_is_named_and_multi_part(pipe):
    result = run_text(pipe, {"prompt": "a chair with four legs", "seed": 0, "resolution": 64}, {}, no_progress)
    names = [p.name for p in result.parts]
    assert sorted(n for n in names if n.startswith("leg")) == ["leg.0", "leg.1", "leg.2", "leg.3"], names
    assert "seat" in names and result.metadata["model"] == "builtin"
    assert result.metadata["parts"] == names and result.metadata["notes"] == []
    lowest = min(float(p.vertices[:, 1].min()) for p in result.parts)
    assert abs(lowest) < 1e-5  # standing on y=0
    PartShape.from_dict(result.metadata["shape"])


def test_the_parts_together_face_outward(pipe):
    """glTF wants triangles counter-clockwise seen from outside: the parts together close the
    shape, so their signed volumes add up to its (positive) volume."""
    import trimesh

    result = run_text(pipe, {"prompt": "a chair", "seed": 3, "resolution": 64}, {}, no_progress)
    assert sum(trimesh.Trimesh(p.vertices, p.faces, process=False).volume for p in result.parts) > 0


def test_unknown_prompt_gets_nearest_category_and_a_note(pipe):
    prompt, category, note, known = pipe.resolve_prompt("a fire-breathing dragon")[:4]
    assert category in pipe.knows() and not known and note and "does not know" in note


def test_every_category_asked_by_name_comes_out_as_itself(pipe):
    """Each category the data has, asked for by its name alone, is known by that name and comes
    out with parts of its own kind only (a teapot with no chair legs in it)."""
    categories = list(data.CATEGORIES)
    assert pipe.knows() == sorted(categories)
    assert [pipe.resolve_prompt(category_prompt(c))[1] for c in categories] == categories
    shapes = pipe([category_prompt(c) for c in categories], num_shapes=len(categories), num_inference_steps=10,
                  guidance_scale=3.0, generator=torch.Generator().manual_seed(0), attach_parts=False).shapes
    wrong = {}
    for category, shape in zip(categories, shapes):
        own = {p.label for s in data.category_shapes(category, 40) for p in s.parts}
        if not len(shape) or not set(shape.labels) <= own:
            wrong[category] = sorted(set(shape.labels) - own) or "no parts"
    assert not wrong, wrong


def test_complete_keeps_unchosen_parts_bit_identical(pipe, chair):
    keep = [n for n in chair.names if not n.startswith("leg")]
    out = pipe.complete(chair, keep, jump_length=2, jump_n_sample=2, **FAST)
    assert_parts_equal(chair, out, keep)
    assert_regenerated(chair, out, keep)


def test_edit_keeps_unchosen_parts_bit_identical(pipe, chair):
    legs = [n for n in chair.names if n.startswith("leg")]
    keep = [n for n in chair.names if n not in legs]
    out = pipe.edit(chair, legs, "an office chair on wheels", jump_length=2, jump_n_sample=2, **FAST)
    assert_parts_equal(chair, out, keep)
    assert_regenerated(chair, out, keep)
    assert torch.equal(out.origin, chair.origin) if chair.origin is not None else out.origin is None


def test_mix_keeps_unchosen_parts_bit_identical(pipe, chair):
    other = pipe.generate("a chair on wheels", seed=3, steps=8)[0]
    take = sorted({l for l in other.labels if l not in ("seat", "back")})[:1] or [other.labels[0]]
    out = pipe.mix(chair, other, take, start_step=2, **FAST)
    kept = [n for n, l in zip(chair.names, chair.labels) if l not in take]
    assert_parts_equal(chair, out, kept)
    assert set(take) <= set(out.labels), (take, out.labels)  # the parts brought in arrived


def test_repaint_path_goes_back_and_ends_clean():
    path = repaint_path(10, 3, 2)
    assert path[0] == 0 and path[-1] == 10 and all(abs(a - b) == 1 for a, b in zip(path, path[1:]))
    assert sum(b > a for a, b in zip(path, path[1:])) == 10 + 3 * 3  # three jumps back of three levels
    assert repaint_path(5, 1, 1) == [0, 1, 2, 3, 4, 5]


def test_cancel_from_callback_stops_generation(pipe):
    calls = []

    def callback(phase, step, total, preview=None):
        calls.append((phase, step))
        if step == 2:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        pipe("a table", num_inference_steps=10, callback_on_step_end=callback)
    assert calls == [("layout", 1), ("layout", 2)]


def test_quick_training_lowers_the_loss(tmp_path):
    from backend.parts.train import quick_config, train

    summary = train(quick_config(), str(tmp_path), log=lambda *_: None)
    for stage, losses in summary["losses"].items():
        assert np.mean(losses[-10:]) < np.mean(losses[:10]), stage
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "MODEL_CARD.md").exists()
    PartDiffusionPipeline.from_pretrained(str(tmp_path)).generate("a stool", steps=2)


def test_run_edit_through_glb_leaves_kept_parts_in_place(pipe):
    from scipy.spatial import cKDTree

    from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes
    from backend.parts.service import run_edit

    first = run_text(pipe, {"prompt": "a chair with four legs", "seed": 0, "resolution": 64}, {}, no_progress)
    glb = mesh_result_to_glb(first)
    meshes, _ = read_glb_meshes(glb)
    mask = b"".join(bytes([m.name.startswith("leg")]) * len(m.faces) for m in meshes)
    params = {"mode": "edit", "prompt": "an office chair on wheels", "seed": 0, "num_inference_steps": 6,
              "jump_length": 2, "jump_n_sample": 2, "resolution": 64}
    out = run_edit(pipe, params, {"mesh": glb, "face_mask": mask}, no_progress)
    legs = [m.name for m in meshes if m.name.startswith("leg")]
    assert sorted(out.metadata["changed"]) == sorted(legs)
    before, after = PartShape.from_dict(first.metadata["shape"]), PartShape.from_dict(out.metadata["shape"])
    kept = [n for n in before.names if n not in legs]
    assert_parts_equal(before, after, kept)
    # Vertices of kept parts away from the old legs' and the new parts' boxes do not move.
    changed = before.select([before.names.index(n) for n in legs])
    fresh = after.select([i for i, n in enumerate(after.names) if n not in kept])
    old = {p.name: p for p in first.parts}
    new = {p.name: p for p in out.parts}
    checked = 0
    for name in kept:
        if name not in old:
            continue
        v = old[name].vertices
        far = v[(box_distance(changed, v + before.origin.numpy()) > 0.08) & (box_distance(fresh, v + before.origin.numpy()) > 0.08)]
        if len(far):
            assert name in new and cKDTree(new[name].vertices).query(far)[0].max() < 1e-5, name
            checked += len(far)
    assert checked > 0


def box_distance(shape: PartShape, points: np.ndarray) -> np.ndarray:
    """(N,) distance from each point to the nearest part box of `shape` (inf when it has none)."""
    if len(shape) == 0:
        return np.full(len(points), np.inf)
    local = np.einsum("npk,pkj->npj", points[:, None, :] - shape.centers.numpy()[None], shape.rotations.numpy())
    outside = np.maximum(np.abs(local) - shape.half_extents.numpy()[None], 0.0)  # (N, P, 3)
    return np.linalg.norm(outside, axis=-1).min(1)


def test_edit_refuses_a_part_shape_this_model_cannot_read(pipe):
    from backend.geometry.glb import mesh_result_to_glb
    from backend.parts.service import run_edit
    from backend.errors import InputError

    result = run_text(pipe, {"prompt": "a stool", "seed": 0, "resolution": 32}, {}, no_progress)
    result.metadata["shape"]["labels"][0] = "tentacle"  # from another model, or edited by hand
    glb = mesh_result_to_glb(result)
    mask = b"\x01" * sum(len(p.faces) for p in result.parts)
    with pytest.raises(InputError, match="does not fit this model.*tentacle"):
        run_edit(pipe, {"mode": "complete", "seed": 0}, {"mesh": glb, "face_mask": mask}, no_progress)
