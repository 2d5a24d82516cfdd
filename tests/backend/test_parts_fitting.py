"""Editing meshes the built-in model did not make: parts fitted, edited, the artist's triangles kept."""

import numpy as np
import pytest
import torch
import trimesh

from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes
from backend.geometry.winding import lattice_winding
from backend.parts import fitting
from backend.parts.autoencoder import lattice
from backend.parts.data import sample_shape
from backend.parts.pipeline import PartDiffusionPipeline
from backend.parts.service import run_edit
from backend.results import MeshPart, no_progress
from formats.glb import write_glb

LEG_CORNERS = [(-0.42, -0.42), (-0.42, 0.42), (0.42, -0.42), (0.42, 0.42)]


@pytest.fixture(scope="module")
def pipe():
    return PartDiffusionPipeline.from_pretrained()


def modelled_chair(extra=()):
    """A chair as an artist might model it: seat, back and four round legs, one mesh, no part data.
    Returns the mesh and the triangle range of each piece."""
    pieces = [trimesh.creation.box((1.0, 0.1, 1.0), trimesh.transformations.translation_matrix((0, 0.5, 0))),
              trimesh.creation.box((1.0, 1.0, 0.1), trimesh.transformations.translation_matrix((0, 1.0, -0.45)))]
    for x, z in LEG_CORNERS:
        leg = trimesh.creation.cylinder(0.05, 0.45, sections=16)
        leg.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
        leg.apply_translation((x, 0.225, z))
        pieces.append(leg)
    pieces += list(extra)
    ends = np.cumsum([0] + [len(p.faces) for p in pieces])
    return trimesh.util.concatenate(pieces), [range(a, b) for a, b in zip(ends[:-1], ends[1:])]


def leg_mask(mesh, ranges) -> np.ndarray:
    mask = np.zeros(len(mesh.faces), np.uint8)
    for r in ranges[2:6]:
        mask[r.start : r.stop] = 1
    return mask


def test_winding_tells_inside_from_outside_of_overlapping_and_open_shells():
    points = lattice(16).numpy()
    box = trimesh.creation.box((1.2, 1.0, 0.6))
    w = lattice_winding(box.vertices, box.faces, 16).reshape(-1)
    assert np.array_equal(w > 0.5, (np.abs(points) < [0.6, 0.5, 0.3]).all(1))
    two = trimesh.util.concatenate([box, box.copy().apply_translation((0.3, 0, 0))])  # overlapping shells
    w = lattice_winding(two.vertices, two.faces, 16).reshape(-1)
    union = (np.abs(points - [0.15, 0, 0]) < [0.75, 0.5, 0.3]).all(1)
    assert np.array_equal(w > 0.5, union) and w.max() == 2
    torus = trimesh.creation.torus(0.6, 0.25, major_sections=64, minor_sections=32)
    w = lattice_winding(torus.vertices, torus.faces, 16).reshape(-1)
    assert np.array_equal(w > 0.5, np.hypot(np.hypot(points[:, 0], points[:, 1]) - 0.6, points[:, 2]) < 0.25)


@pytest.mark.parametrize("facing", [0, 1, 2])
def test_fitted_parts_follow_the_pieces_and_the_selection(pipe, facing):
    """Whichever way the chair faces (quarter turns about the up axis), the pieces become parts
    with the right labels, and each part's box, mapped back, is its piece's bounding box."""
    mesh, ranges = modelled_chair()
    mesh.apply_transform(trimesh.transformations.rotation_matrix(facing * np.pi / 2, (0, 1, 0)))
    meshes = [MeshPart("Chair", mesh.vertices.astype(np.float32), mesh.faces.astype(np.int64))]
    fit = fitting.fit_mesh(pipe.autoencoder, meshes, leg_mask(mesh, ranges), "chair", pipe.codec.templates["chair"],
                           pipe.codec.max_parts)
    shape = fit.shape
    assert sorted(shape.labels) == ["back", "leg", "leg", "leg", "leg", "seat"]
    assert np.array_equal(fit.faces["seat"], np.arange(ranges[0].start, ranges[0].stop))
    assert np.array_equal(fit.faces["back"], np.arange(ranges[1].start, ranges[1].stop))
    assert sorted(fit.selected) == sorted(n for n, l in zip(shape.names, shape.labels) if l == "leg")
    assert shape.extra["frame_yaw"] == (-facing) % 4  # turned back to face the way training chairs do
    turn, scale = fitting.yaw_matrix(shape.extra["frame_yaw"]), shape.extra["frame_scale"]
    for i, name in enumerate(shape.names):
        piece = mesh.vertices[np.unique(mesh.faces[fit.faces[name]])]
        center = fitting.to_mesh_frame((shape.centers[i] - shape.origin).numpy()[None], shape)[0]
        reach = (shape.rotations[i].abs() @ shape.half_extents[i]).numpy() @ np.abs(turn) / scale
        assert np.allclose(center, (piece.min(0) + piece.max(0)) / 2, atol=1e-4), name
        assert np.allclose(reach, np.maximum(np.ptp(piece, 0) / 2, fitting.MIN_HALF_EXTENT / scale), atol=1e-4), name
        there = fitting.to_shape_frame(piece, shape)  # inside the part's box, and back again
        local = (there - shape.centers[i].numpy()) @ shape.rotations[i].numpy() / shape.half_extents[i].numpy()
        assert np.abs(local).max() <= 1 + 1e-4, name
        assert np.allclose(fitting.to_mesh_frame(there - shape.origin.numpy(), shape), piece, atol=1e-5), name
    assert sorted(np.concatenate(list(fit.faces.values())).tolist()) == list(range(len(mesh.faces)))


def test_fitted_latents_reproduce_the_pieces(pipe):
    """A fitted part decodes to its piece: IoU against the piece's own inside/outside ≥ 0.8."""
    mesh, ranges = modelled_chair()
    meshes = [MeshPart("Chair", mesh.vertices.astype(np.float32), mesh.faces.astype(np.int64))]
    fit = fitting.fit_mesh(pipe.autoencoder, meshes, None, "chair", pipe.codec.templates["chair"], pipe.codec.max_parts)
    shape = fit.shape
    with torch.no_grad():
        inside = pipe.autoencoder.decode(shape.latents, lattice(24)[None].expand(len(shape), -1, -1)) > 0  # (P, 24^3)
    for i, name in enumerate(shape.names):
        local = ((fitting.to_shape_frame(mesh.vertices, shape) - shape.centers[i].numpy()) @ shape.rotations[i].numpy()
                 / shape.half_extents[i].numpy())  # the part's box is [-1, 1]^3
        truth = lattice_winding(local, mesh.faces[fit.faces[name]], 24).reshape(-1) > 0.5
        pred = inside[i].numpy()
        assert (pred & truth).sum() / (pred | truth).sum() >= 0.8, name


def test_box_frame_is_turned_the_way_the_decoder_reads_the_part(pipe):
    """A cone's box does not say which way the cone points; the frame search finds it."""
    cone = next(p for s in range(200) for p in sample_shape(s, "traffic cone").parts if p.primitive == "cone")
    grid = cone.local_occupancy(lattice(16).numpy()).reshape(16, 16, 16)
    upside_down = np.diag([1.0, -1.0, -1.0])
    turned = fitting.reframe(grid, upside_down)
    assert (turned != grid).mean() > 0.1
    turns, _ = fitting.best_frames(pipe.autoencoder, turned[None])
    assert (fitting.reframe(turned, turns[0]) == grid).mean() > 0.97


def test_small_pieces_join_their_neighbours_and_too_many_is_a_clear_error(pipe):
    screw = trimesh.creation.box((0.02, 0.02, 0.02), trimesh.transformations.translation_matrix((0.42, 0.46, 0.42)))
    mesh, _ = modelled_chair([screw])
    meshes = [MeshPart("Chair", mesh.vertices.astype(np.float32), mesh.faces.astype(np.int64))]
    fit = fitting.fit_mesh(pipe.autoencoder, meshes, None, "chair", pipe.codec.templates["chair"], pipe.codec.max_parts)
    assert len(fit.shape) == 6
    screw_faces = set(range(len(mesh.faces) - 12, len(mesh.faces)))
    owner = [name for name, faces in fit.faces.items() if screw_faces & set(faces.tolist())]
    assert len(owner) == 1 and screw_faces <= set(fit.faces[owner[0]].tolist())
    assert owner[0] == "seat" or fit.shape.labels[fit.shape.names.index(owner[0])] == "leg"

    # More pieces than the model has parts: neighbours are joined into clumps, every face kept.
    pebbles = trimesh.util.concatenate([trimesh.creation.icosphere(1, 0.1).apply_translation((x, 0, 0)) for x in range(300)])
    fit = fitting.fit_mesh(pipe.autoencoder, [MeshPart("Pebbles", pebbles.vertices, pebbles.faces)], None, "chair",
                           pipe.codec.templates["chair"], pipe.codec.max_parts)
    assert len(fit.shape) == pipe.codec.max_parts
    assert sorted(np.concatenate(list(fit.faces.values())).tolist()) == list(range(len(pebbles.faces)))
    for faces in fit.faces.values():  # a clump is a run of neighbouring pebbles, not scattered ones
        count = len(faces) // 80  # an icosphere(1) has 80 triangles
        assert np.ptp(pebbles.vertices[pebbles.faces[faces]][..., 0]) <= (count - 1) + 0.2 + 1e-6


def test_editing_a_modelled_chair_keeps_its_own_seat_and_back(pipe):
    mesh, ranges = modelled_chair()
    glb = write_glb(mesh.vertices, mesh.faces, name="Chair")
    params = {"mode": "edit", "prompt": "an office chair on wheels", "seed": 0, "num_inference_steps": 10,
              "jump_length": 2, "jump_n_sample": 2, "resolution": 64}
    out = run_edit(pipe, params, {"mesh": glb, "face_mask": leg_mask(mesh, ranges).tobytes()}, no_progress)
    parts = {p.name: p for p in out.parts}
    for name, r in (("seat", ranges[0]), ("back", ranges[1])):  # the artist's triangles, exactly
        own = mesh.vertices[mesh.faces[r.start : r.stop]].astype(np.float32)
        assert np.array_equal(parts[name].vertices[parts[name].faces], own), name
    assert out.metadata["shape"]["extra"]["source_parts"] == ["seat", "back"]
    patch = out.metadata["patch"]  # how the add-on edits the artist's mesh in place
    assert patch["triangles"] == len(mesh.faces)
    assert patch["keep"] == {"seat": [[ranges[0].start, ranges[0].stop]], "back": [[ranges[1].start, ranges[1].stop]]}
    assert sorted(patch["new_parts"]) == sorted(n for n in parts if n not in ("seat", "back"))
    assert any("fitted 6 part(s)" in note and "chair" in note for note in out.metadata["notes"])
    new = [p for n, p in parts.items() if n not in ("seat", "back")]
    assert new, "the legs were regenerated into something"
    own_legs = {tuple(np.round(v, 4)) for v in mesh.vertices[mesh.faces[ranges[2].start:].reshape(-1)]}
    generated = {tuple(np.round(v, 4)) for p in new for v in p.vertices}
    assert len(generated - own_legs) > 0.9 * len(generated)  # new geometry, not the artist's legs handed back
    lows = np.concatenate([p.vertices for p in new])
    assert lows[:, 1].max() < 0.8 and lows[:, 1].min() > -0.15  # where the legs were, not up at the back

    # Edit the result again (its GLB as the add-on sends it back): the seat stays the artist's.
    again = mesh_result_to_glb(out)
    meshes, _ = read_glb_meshes(again)
    mask = b"".join(bytes([m.name == "back"]) * len(m.faces) for m in meshes)
    params = {**params, "prompt": "a chair with a slatted back", "seed": 1}
    second = run_edit(pipe, params, {"mesh": again, "face_mask": mask}, no_progress)
    seat = next(p for p in second.parts if p.name == "seat")
    assert np.array_equal(seat.vertices, parts["seat"].vertices)
    second_back = [p.vertices for p in second.parts if p.name.split(".")[0] in ("back", "slat", "post")]
    assert second_back and not any(np.array_equal(v, parts["back"].vertices) for v in second_back)  # a new back
    assert second.metadata["shape"]["extra"]["source_parts"] == ["seat"]


def test_mixing_into_a_modelled_chair_brings_only_the_chosen_parts(pipe):
    from backend.parts.representation import PartShape
    from backend.parts.service import run_text

    mesh, _ = modelled_chair()
    donor = run_text(pipe, {"prompt": "an office chair on wheels", "seed": 3, "resolution": 32}, {}, no_progress)
    take = ["leg", "wheel", "pedestal"]
    out = run_edit(pipe, {"mode": "mix", "take_from_b": take, "seed": 4, "resolution": 32},
                   {"mesh": write_glb(mesh.vertices, mesh.faces, name="Chair"), "mesh_b": mesh_result_to_glb(donor)},
                   no_progress)
    brought = [l for l in PartShape.from_dict(donor.metadata["shape"]).labels if l in take]
    assert sorted(PartShape.from_dict(out.metadata["shape"]).labels) == sorted(["seat", "back"] + brought)
    assert out.metadata["patch"]["keep"] == {"seat": [[0, 12]], "back": [[12, 24]]}  # the modelled legs are replaced
    low = np.concatenate([p.vertices[:, 1] for p in out.parts if p.name not in ("seat", "back")])
    assert np.quantile(low, 0.95) < 0.55  # the base came in under the seat (its top is at 0.55)


def test_a_mesh_named_like_nothing_it_knows_is_fitted_with_a_note(pipe):
    mesh, ranges = modelled_chair()
    glb = write_glb(mesh.vertices, mesh.faces, name="Cube.001")
    params = {"mode": "complete", "seed": 0, "num_inference_steps": 4, "jump_length": 1, "jump_n_sample": 1,
              "resolution": 32}
    out = run_edit(pipe, params, {"mesh": glb, "face_mask": leg_mask(mesh, ranges).tobytes()}, no_progress)
    assert any("a guess from \"Cube.001\"" in note for note in out.metadata["notes"])


def test_parts_sent_with_the_upload_decide_which_triangles_a_part_owns(pipe):
    """The add-on sends each triangle's part (from the object's vertex groups): it wins over the
    part boxes, and triangles in no group fall back to the boxes."""
    from backend.parts.service import face_owners
    from formats.face_parts import decode_face_parts, encode_face_parts, from_runs, to_runs

    mesh, _ = modelled_chair()
    meshes = [MeshPart("Chair", mesh.vertices.astype(np.float32), mesh.faces.astype(np.int64))]
    fit = fitting.fit_mesh(pipe.autoencoder, meshes, None, "chair", pipe.codec.templates["chair"], pipe.codec.max_parts)
    shape = fit.shape
    by_box = face_owners(shape, meshes)
    truth = np.empty(len(mesh.faces), np.int64)
    for name, faces in fit.faces.items():
        truth[faces] = shape.names.index(name)
    assert (by_box != truth).any()  # where the back meets the seat, the boxes guess wrong
    order = shape.names[::-1]  # vertex groups come in their own order
    sent = encode_face_parts(order, np.array([order.index(shape.names[k]) for k in truth]))
    assert np.array_equal(face_owners(shape, meshes, sent), truth)
    moved = truth.copy()
    moved[fit.faces["seat"][:4]] = shape.names.index("back")  # the artist put four seat triangles in "back"
    sent = encode_face_parts(order, np.array([order.index(shape.names[k]) for k in moved]))
    assert np.array_equal(face_owners(shape, meshes, sent), moved)
    loose = encode_face_parts(order, np.where(moved == shape.names.index("back"), -1,
                                              [order.index(shape.names[k]) for k in moved]))
    assert np.array_equal(face_owners(shape, meshes, loose), np.where(moved == shape.names.index("back"), by_box, moved))
    assert decode_face_parts(sent, len(mesh.faces) + 1) is None  # sent for another mesh: ignored
    runs = to_runs(np.array([3, 4, 5, 9, 11, 12]))
    assert runs == [[3, 6], [9, 10], [11, 13]] and np.nonzero(from_runs(runs, 14))[0].tolist() == [3, 4, 5, 9, 11, 12]


def test_pieces_are_the_artists_islands_when_vertex_ids_come_with_the_upload():
    """Two boxes stacked face to face share four corner positions: by position they are one piece,
    by the artist's vertices (sent by the add-on) two."""
    lower = trimesh.creation.box((1, 1, 1))
    upper = trimesh.creation.box((1, 1, 1)).apply_translation((0, 1, 0))
    both = trimesh.util.concatenate([lower, upper])
    groups = np.zeros(len(both.faces), np.int64)
    assert len(fitting.split_pieces(both.vertices, both.faces, groups)) == 1
    ids = np.arange(len(both.vertices))
    pieces = fitting.split_pieces(both.vertices, both.faces, groups, ids)
    assert sorted(map(len, pieces)) == [12, 12]
    split = np.concatenate([ids, ids[:8]])  # the lower box's vertices sent twice (a UV seam): still one piece
    seam = np.concatenate([both.vertices, both.vertices[:8]])
    faces = both.faces.copy()
    faces[:6] += len(both.vertices)  # half of the lower box's triangles use the copies
    assert sorted(map(len, fitting.split_pieces(seam, faces, groups, split))) == [12, 12]
