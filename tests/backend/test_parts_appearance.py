"""Colours and materials of the built-in model's parts: the caption phrases and their targets,
the PBR values and defaults, the GLB round trip into the add-on's layout, and hostile values."""

import re

import numpy as np
import pytest

from backend.colour_space import linear_to_srgb, srgb_to_linear
from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes
from backend.parts import data
from backend.parts.appearance import COLOURS, MATERIALS, clean_looks, part_materials, resolve
from backend.parts.appearance_captions import COLOUR_WORDS, MATERIAL_WORDS, dress
from backend.parts.captions import caption_shape
from backend.parts.eval_appearance import appearance_items, keyword_looks, score
from backend.results import Material, MeshResult
from formats.blender_layout import MAX_PART_MATERIALS, MeshArrays
from formats.glb import GLBError, read_glb
from tests.fixtures.glb_fuzz import pack_glb, unpack_glb
from tests.fixtures.part_boxes import box_part


def _words(text):
    return set(re.findall(r"[a-z-]+", text.lower()))


def test_dressed_captions_say_every_colour_and_material_their_targets_give():
    rng = np.random.default_rng(0)
    shape = data.sample_shape(3, "chair")
    labels = [p.label for p in shape.parts]
    for _ in range(200):
        look = dress(labels, rng)
        words = _words(caption_shape(shape, rng, look=look))
        assert set(look.targets) == set(labels)
        for colour, kind in look.targets.values():
            assert colour is None or words & set(COLOUR_WORDS[colour][0])
            assert kind is None or words & {w for forms in MATERIAL_WORDS[kind][0] for w in forms}


def test_a_part_phrase_wins_and_the_rest_comes_from_the_whole_object():
    rng = np.random.default_rng(1)
    labels = ["seat", "back", "leg", "leg", "leg", "leg"]
    checked = inherited = 0
    for _ in range(400):
        look = dress(labels, rng)
        if not look.adjectives:
            continue
        said = set(look.adjectives.split())
        colour = next((c for c, (words, _) in COLOUR_WORDS.items() if said & set(words)), None)
        kind = next((k for k, (forms, _) in MATERIAL_WORDS.items() if said & {a for a, _ in forms}), None)
        clause = _words(look.clause)
        for label in set(labels):
            c, k = look.targets[label]
            if not clause & {label, label + "s"}:  # no phrase of its own: the whole object's look
                assert (c, k) == (colour, kind), (look, label)
                continue
            assert c == colour or clause & set(COLOUR_WORDS[c][0]), (look, label)
            assert k == kind or clause & {w for forms in MATERIAL_WORDS[k][0] for w in forms}, (look, label)
            inherited += (c == colour and colour is not None) or (k == kind and kind is not None)
            checked += 1
    assert checked > 30 and inherited > 5


def test_captions_without_a_look_are_the_ones_trained_before():
    """Looks draw from their own stream: the undressed training captions did not change."""
    shape = data.sample_shape(11, "table")
    plain = [c for c, look in zip(shape.captions, shape.looks) if all(v == (None, None) for v in look.values())]
    rng = np.random.default_rng([11, 1])
    keys = list(shape.attributes)
    subset = [k for k in keys if rng.random() < 0.5] or [keys[rng.integers(len(keys))]]
    said = {"all": None, "some": subset, "none": []}
    again = [caption_shape(shape, rng, keys=said[kind]) for kind in data.CAPTION_KINDS]
    assert plain and all(c in again for c in plain)


def test_resolve_states_wins_and_defaults_are_plausible():
    red = resolve("chair", "seat", "red", None)
    assert np.allclose(red.base_color[:3], srgb_to_linear(COLOURS["red"])) and red.metallic == 0.0
    steel = resolve("chair", "leg", None, "metal")
    assert steel.metallic == 1.0 and np.allclose(steel.base_color[:3], srgb_to_linear(MATERIALS["metal"][3]))
    assert steel.name == "leg (metal)"
    glass = resolve("bottle", "body")  # a bottle is glass unless the prompt says otherwise
    assert glass.transmission == 1.0 and glass.name == "body"
    cone = resolve("traffic cone", "body")
    assert linear_to_srgb(cone.base_color[0]) > 0.9 and linear_to_srgb(cone.base_color[2]) < 0.2  # orange
    assert resolve("table", "top").roughness == MATERIALS["wood"][1]
    with pytest.raises(ValueError, match="unknown colour"):
        resolve("chair", "seat", "sparkly")


def test_stored_looks_from_an_upload_are_cleaned():
    hostile = {"leg": ["black", "metal"], "seat": ["sparkly", "adamantium"], "back": "red", 5: ["red", None],
               "arm": ["red"], "wheel": [["red"], {"x": 1}], **{f"x{i}": ["red", None] for i in range(1000)}}
    looks = clean_looks(hostile)
    assert looks["leg"] == ("black", "metal") and looks["seat"] == (None, None) and looks["wheel"] == (None, None)
    assert "back" not in looks and "arm" not in looks and len(looks) <= 256
    assert clean_looks("red") == {} and clean_looks(None) == {}
    materials = part_materials("chair", ["leg", "seat"], hostile)
    assert materials["leg"].metallic == 1.0 and materials["seat"].name == "seat"


def test_part_materials_travel_through_the_glb_into_material_slots():
    legs = resolve("table", "leg", "black", "metal")
    top = resolve("table", "top", None, "glass")
    parts = [box_part("top", 0, top), box_part("leg.0", 2, legs), box_part("leg.1", 4, legs)]
    data_ = mesh_result_to_glb(MeshResult(parts=parts))
    scene = read_glb(data_)
    got = {p.name: p.material for p in scene.parts}
    assert got["top"].name == "top (glass)" and got["top"].transmission == 1.0 and got["top"].roughness == pytest.approx(0.05)
    assert got["leg.0"].name == "leg (black metal)" and got["leg.0"].metallic == 1.0
    assert np.allclose(got["leg.0"].base_color, legs.base_color, atol=1 / 255)
    assert all(p.colors is None for p in scene.parts)  # COLOR_0 would multiply the base colour
    arrays = MeshArrays(scene)
    assert [m.name for m in arrays.materials] == ["top (glass)", "leg (black metal)"]
    assert arrays.face_material.tolist() == [0] * 12 + [1] * 24
    back, _ = read_glb_meshes(data_)  # the backend reads them back too (a draft to refine, an edit)
    assert back[0].material.transmission == 1.0 and back[1].material.name == "leg (black metal)"


def test_a_file_with_more_part_materials_than_slots_allowed_gets_one_material():
    parts = [box_part(f"p{i}", 2 * i, Material(f"m{i}", (0.5, 0.5, 0.5, 1.0))) for i in range(MAX_PART_MATERIALS + 1)]
    arrays = MeshArrays(read_glb(mesh_result_to_glb(MeshResult(parts=parts))))
    assert arrays.materials == [] and arrays.face_material is None
    arrays = MeshArrays(read_glb(mesh_result_to_glb(MeshResult(parts=parts[:MAX_PART_MATERIALS]))))
    assert len(arrays.materials) == MAX_PART_MATERIALS


def test_a_result_without_part_materials_keeps_one_material():
    part = box_part("mesh", 0, None)
    part.vertex_colors = np.full((8, 4), 200, np.uint8)
    arrays = MeshArrays(read_glb(mesh_result_to_glb(MeshResult(parts=[part]))))
    assert arrays.materials == [] and arrays.face_material is None


def _edit_material(glb: bytes, **changes) -> bytes:
    doc, binary = unpack_glb(glb)
    for key, value in changes.items():
        if key == "transmission":
            doc["materials"][0]["extensions"] = {"KHR_materials_transmission": {"transmissionFactor": value}}
        else:
            doc["materials"][0]["pbrMetallicRoughness"][key] = value
    return pack_glb(doc, binary)


def test_hostile_material_values_are_refused_or_clamped():
    glb = mesh_result_to_glb(MeshResult(parts=[box_part("seat", 0, resolve("chair", "seat", "red"))]))
    assert read_glb(_edit_material(glb, metallicFactor=7.5, transmission=-3)).parts[0].material.metallic == 1.0
    assert read_glb(_edit_material(glb, transmission=-3)).parts[0].material.transmission == 0.0
    for bad in ("metal", [1], None, float("nan")):
        with pytest.raises(GLBError, match="metallicFactor"):
            read_glb(_edit_material(glb, metallicFactor=bad))
    with pytest.raises(GLBError, match="transmissionFactor"):
        read_glb(_edit_material(glb, transmission="clear"))


def test_the_appearance_evaluation_refuses_training_prompts_and_its_baselines_fail_binding():
    items = appearance_items("train", 20, 5, trained=set())
    with pytest.raises(ValueError, match="reader training captions"):
        appearance_items("train", 20, 5, trained={items[3][0]})
    perfect = score(items, [t for _, t in items])
    assert perfect["part"] == 1.0 and perfect["prompt"] == 1.0
    keywords = score(items, [keyword_looks(p, t) for p, t in items])
    ignored = score(items, [{label: (None, None) for label in t} for _, t in items])
    assert ignored["part"] < keywords["part"] < 0.9  # binding matters: one colour for all parts is often wrong


def test_a_material_without_a_name_or_values_reads_with_gltf_defaults():
    part = box_part("seat", 0, Material("", (0.5, 0.5, 0.5, 1.0)))
    scene = read_glb(mesh_result_to_glb(MeshResult(parts=[part])))
    assert scene.parts[0].material.roughness == 0.5 and scene.parts[0].material.transmission == 0.0
