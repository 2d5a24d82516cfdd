"""Captions for procedural shapes, in three wordings that the evaluation reports apart.

- "train": the training templates, nouns and phrases.
- "heldout": sentence frames never used in training around the training phrases, so a caption
  is new as a whole while each phrase is known ("unseen wordings").
- "paraphrase": held-out frames, nouns and phrases (synonyms, adjectives like "four-legged",
  clauses before the noun); no paraphrase frame or phrase appears in a training caption.
"""

import re

from .categories import GROUPS

TEMPLATES = ["a {noun} with {attrs}", "a 3D model of a {noun} with {attrs}", "{noun} with {attrs}",
             "a {noun} that has {attrs}"]
HELDOUT_TEMPLATES = ["make me a {noun} with {attrs}", "a low-poly {noun} with {attrs}", "{noun}, {attrs}",
                     "generate a {noun} that has {attrs}"]
PARAPHRASE_TEMPLATES = ["it's the {noun} featuring {attrs}", "{noun} having {attrs}.",
                        "I would like a {noun} showing {attrs}", "one {noun}: {attrs}",
                        "featuring {attrs}, this {noun}", "showing {attrs} - a {noun}"]
BARE_TEMPLATES = ["a {noun}", "a 3D model of a {noun}"]
BARE_HELDOUT_TEMPLATES = ["make me a {noun}", "a low-poly {noun}"]
BARE_PARAPHRASE_TEMPLATES = ["it's a {noun}", "some kind of {noun}"]
_FRAMES = {"train": (TEMPLATES, BARE_TEMPLATES), "heldout": (HELDOUT_TEMPLATES, BARE_HELDOUT_TEMPLATES),
           "paraphrase": (PARAPHRASE_TEMPLATES, BARE_PARAPHRASE_TEMPLATES)}
WORDINGS = tuple(_FRAMES)

# category -> (training nouns, paraphrase nouns)
NOUNS = {
    "chair": (["chair"], ["chair"]),
    "table": (["table"], ["dining table"]),
    "stool": (["stool"], ["stool"]),
    "bench": (["bench"], ["park bench"]),
    "sofa": (["sofa", "couch"], ["settee"]),
    "bed": (["bed"], ["bed frame"]),
    "bookshelf": (["bookshelf", "bookcase"], ["book rack"]),  # not "shelving unit": the shelf unit's own name
    "desk lamp": (["desk lamp", "table lamp"], ["reading lamp"]),
    "floor lamp": (["floor lamp", "standing lamp"], ["tall lamp"]),
    "vase": (["vase"], ["flower vase"]),
    "mug": (["mug", "coffee mug"], ["cup"]),
    "bottle": (["bottle"], ["glass bottle"]),
    "traffic cone": (["traffic cone"], ["road cone", "safety cone"]),
    "mushroom": (["mushroom"], ["toadstool"]),
    "tree": (["tree"], ["small tree"]),
    "snowman": (["snowman"], ["snow figure"]),
    "house": (["house"], ["cottage"]),
    "rocket": (["rocket"], ["spaceship"]),
    "car": (["car"], ["automobile"]),
    "airplane": (["airplane", "plane"], ["jet"]),
}

# Training nouns that also state an attribute, used sometimes when that attribute is mentioned
# (artists ask for "an office chair", not "a chair with wheels").
ATTRIBUTE_NOUNS = {("chair", "legs", "wheels"): "office chair", ("stool", "height", "tall"): "bar stool",
                   ("tree", "canopy", "cone"): "pine tree"}
# The same for paraphrases: adjectives and trade words never in training captions.
PARAPHRASE_ATTRIBUTE_NOUNS = {
    ("chair", "legs", 3): "three-legged chair", ("chair", "legs", 4): "four-legged chair",
    ("chair", "legs", "wheels"): "swivel chair on casters", ("stool", "legs", 3): "three-legged stool",
    ("stool", "legs", 4): "four-legged stool", ("table", "legs", 1): "pedestal table",
    ("table", "legs", 3): "three-legged table", ("sofa", "seats", 2): "loveseat", ("bed", "size", "double"): "double bed",
    ("tree", "canopy", "cone"): "fir tree", ("airplane", "engines", 0): "glider", ("house", "floors", 2): "two-storey house",
}

# category -> attribute -> value -> (training phrases, paraphrase phrases)
PHRASES = {
    "chair": {
        "legs": {
            3: (["three legs", "3 legs"], ["three feet"]),
            4: (["four legs", "4 legs"], ["four feet"]),
            "wheels": (["wheels", "a star base on five wheels"], ["castors like an office chair"]),
        },
        "arms": {
            "none": (["no arms", "no armrests"], ["nothing to rest the arms on"]),
            "square": (["square arms", "square armrests"], ["boxy armrests"]),
            "round": (["round arms", "rounded armrests"], ["curved arm rests"]),
        },
        "back": {
            "solid": (["a solid back", "a plain back", "a rectangular back"], ["a back made of one panel"]),
            "slatted": (["a slatted back", "vertical slats in the back"], ["a back with spindles"]),
            "gaps": (["gaps in the back", "horizontal bars in the back"], ["an open back with spaces between rails"]),
        },
        "height": {
            "tall": (["a tall back", "a high back"], ["a high backrest"]),
            "short": (["a short back", "a low back"], ["a low backrest"]),
        },
    },
    "table": {
        "top": {
            "round": (["a round top", "a circular top"], ["a disc-shaped tabletop"]),
            "square": (["a square top", "a rectangular top"], ["a four-cornered tabletop"]),
        },
        "legs": {
            1: (["a single pedestal", "one central leg"], ["a single column underneath"]),
            3: (["three legs", "3 legs"], ["three feet"]),
            4: (["four legs", "4 legs"], ["four feet"]),
        },
    },
    "stool": {
        "legs": {
            3: (["three legs", "3 legs"], ["three feet"]),
            4: (["four legs", "4 legs"], ["four feet"]),
        },
        "seat": {
            "round": (["a round seat", "a circular seat"], ["a disc seat"]),
            "square": (["a square seat", "a rectangular seat"], ["a four-cornered seat"]),
        },
        "height": {
            "tall": (["a tall frame", "bar height"], ["long legs and a footrest"]),
            "short": (["a short frame", "low height"], ["stubby legs"]),
        },
    },
    "bench": {
        "back": {
            "none": (["no back", "no backrest"], ["nothing to lean against"]),
            "backrest": (["a backrest", "a back"], ["a board to lean against"]),
        },
        "legs": {
            4: (["four legs", "4 legs"], ["four feet"]),
            6: (["six legs", "6 legs"], ["six feet"]),
        },
    },
    "sofa": {
        "seats": {
            2: (["two seats", "2 cushions"], ["room for two people"]),
            3: (["three seats", "3 cushions"], ["room for three people"]),
        },
        "arms": {
            "square": (["square arms", "squared-off armrests"], ["straight-sided arm rests"]),
            "round": (["round arms", "rolled armrests"], ["curved arm rests"]),
        },
    },
    "bed": {
        "size": {
            "single": (["a single size", "a narrow mattress"], ["room for one sleeper"]),
            "double": (["a double size", "a wide mattress"], ["room for two sleepers"]),
        },
        "footboard": {
            "yes": (["a footboard", "a board at the foot"], ["a panel at the end"]),
            "no": (["no footboard", "an open foot"], ["nothing at the end"]),
        },
    },
    "bookshelf": {
        "shelves": {
            2: (["two shelves", "2 shelves"], ["a pair of shelves"]),
            3: (["three shelves", "3 shelves"], ["three levels"]),
            4: (["four shelves", "4 shelves"], ["four levels"]),
            5: (["five shelves", "5 shelves"], ["five levels"]),
        },
        "back": {
            "open": (["an open back", "no back panel"], ["nothing behind the shelves"]),
            "closed": (["a closed back", "a back panel"], ["a board behind the shelves"]),
        },
    },
    "desk lamp": {
        "arm": {
            "straight": (["a straight arm", "a single straight stem"], ["one rod"]),
            "bent": (["a bent arm", "a jointed arm"], ["an elbow in the arm"]),
        },
        "shade": {
            "cone": (["a cone shade", "a conical shade"], ["a funnel-like hood"]),
            "dome": (["a dome shade", "a rounded shade"], ["a bowl-like hood"]),
        },
    },
    "floor lamp": {
        "shade": {
            "cone": (["a cone shade", "a tapered shade"], ["a funnel-like hood"]),
            "cylinder": (["a cylindrical shade", "a drum shade"], ["a tube-like hood"]),
        },
        "base": {
            "disc": (["a round base", "a disc base"], ["a flat plate at the bottom"]),
            "tripod": (["a tripod base", "three legs"], ["three feet"]),
        },
    },
    "vase": {
        "body": {
            "round": (["a round body", "a bulbous body"], ["a ball-shaped belly"]),
            "slender": (["a slender body", "a tall narrow body"], ["a thin tapering belly"]),
        },
        "handles": {
            0: (["no handles", "no ears"], ["nothing to hold it by"]),
            2: (["two handles", "2 handles"], ["a pair of loops"]),
        },
    },
    "mug": {
        "handle": {
            "round": (["a round handle", "a curved handle"], ["a ring-shaped grip"]),
            "square": (["a square handle", "an angular handle"], ["a boxy grip"]),
        },
        "height": {
            "tall": (["a tall body", "a tall shape"], ["a high cylinder"]),
            "short": (["a short body", "a squat shape"], ["a low cylinder"]),
        },
    },
    "bottle": {
        "body": {
            "round": (["a round body", "a cylindrical body"], ["a tube-shaped belly"]),
            "square": (["a square body", "a boxy body"], ["a four-sided belly"]),
        },
        "neck": {
            "long": (["a long neck", "a tall neck"], ["an elongated spout"]),
            "short": (["a short neck", "a stubby neck"], ["a tiny spout"]),
        },
    },
    "traffic cone": {
        "base": {
            "square": (["a square base", "a square foot"], ["a four-cornered plate"]),
            "round": (["a round base", "a circular foot"], ["a disc-shaped plate"]),
        },
        "stripes": {
            1: (["one stripe", "a single white band"], ["one reflective ring"]),
            2: (["two stripes", "two white bands"], ["a pair of reflective rings"]),
        },
    },
    "mushroom": {
        "cap": {
            "dome": (["a dome cap", "a rounded cap"], ["a hemispherical top"]),
            "cone": (["a conical cap", "a pointed cap"], ["a tip on top"]),
            "flat": (["a flat cap", "a disc cap"], ["a plate-like top"]),
        },
        "height": {
            "tall": (["a tall stem", "a long stem"], ["a lanky stalk"]),
            "short": (["a short stem", "a stubby stem"], ["a squat stalk"]),
        },
    },
    "tree": {
        "canopy": {
            "round": (["a round canopy", "round foliage"], ["leafy balls"]),
            "cone": (["a conical canopy", "pine foliage"], ["a fir-like crown"]),
        },
        "tiers": {
            1: (["one tier", "a single layer of leaves"], ["one level of foliage"]),
            2: (["two tiers", "two layers of leaves"], ["two levels of foliage"]),
            3: (["three tiers", "three layers of leaves"], ["three levels of foliage"]),
        },
    },
    "snowman": {
        "balls": {
            2: (["two balls", "two snowballs"], ["a pair of stacked spheres"]),
            3: (["three balls", "three snowballs"], ["three stacked spheres"]),
        },
        "hat": {
            "yes": (["a top hat", "a black hat"], ["something on its head"]),
            "no": (["no hat", "a bare head"], ["nothing on its head"]),
        },
        "arms": {
            "sticks": (["stick arms", "twig arms"], ["branches for arms"]),
            "none": (["no arms", "no stick arms"], ["nothing sticking out"]),
        },
    },
    "house": {
        "roof": {
            "gable": (["a gable roof", "a pitched roof"], ["a sloping roof"]),
            "flat": (["a flat roof", "a level roof"], ["a horizontal rooftop"]),
        },
        "floors": {
            1: (["one floor", "a single storey"], ["one level"]),
            2: (["two floors", "two storeys"], ["two levels"]),
        },
        "chimney": {
            "yes": (["a chimney", "a brick chimney"], ["a flue"]),
            "no": (["no chimney", "no flue stack"], ["nothing on the roof"]),
        },
    },
    "rocket": {
        "fins": {
            3: (["three fins", "3 fins"], ["three tail wings"]),
            4: (["four fins", "4 fins"], ["four tail wings"]),
            6: (["six fins", "6 fins"], ["six tail wings"]),
        },
        "stages": {
            1: (["one stage", "a single stage"], ["one section"]),
            2: (["two stages", "2 stages"], ["two sections"]),
        },
    },
    "car": {
        "wheels": {
            3: (["three wheels", "3 wheels"], ["a tricycle layout"]),
            4: (["four wheels", "4 wheels"], ["two axles"]),
            6: (["six wheels", "6 wheels"], ["three axles"]),
        },
        "body": {
            "sedan": (["a sedan body", "a short cabin"], ["a saloon shape"]),
            "van": (["a van body", "a long cabin"], ["a boxy people-carrier shape"]),
        },
    },
    "airplane": {
        "wings": {
            "straight": (["straight wings", "unswept wings"], ["wings at right angles"]),
            "swept": (["swept wings", "swept-back wings"], ["wings angled backwards"]),
        },
        "engines": {
            0: (["no engines", "no jet engines"], ["no turbines"]),
            2: (["two engines", "2 engines"], ["a pair of turbines"]),
            4: (["four engines", "4 engines"], ["four turbines"]),
        },
    },
}

for _group in GROUPS:  # the later categories keep their tables beside their grammars
    NOUNS.update(_group.NOUNS)
    PHRASES.update(_group.PHRASES)
    ATTRIBUTE_NOUNS.update(_group.ATTRIBUTE_NOUNS)
    PARAPHRASE_ATTRIBUTE_NOUNS.update(_group.PARAPHRASE_ATTRIBUTE_NOUNS)


def fix_articles(text):
    return re.sub(r"\ba (?=[aeiou])", "an ", text)  # "a office chair" -> "an office chair"


def join_phrases(items):
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_shape(shape_or_category_attributes, rng, wording: str = "train", keys=None, look=None) -> str:
    """A caption for a shape, or for a (category, attributes) pair.

    Args:
        shape_or_category_attributes: a Shape, or (category, attributes).
        rng: numpy Generator choosing the template and wording.
        wording: one of WORDINGS; only "train" captions are ever trained on.
        keys: the attributes to mention, in that order; default all; [] names only the object.
        look: an appearance_captions.Look whose adjectives go before the object noun and whose
            clauses end the caption (it draws from its own generator: `rng` is used the same).
    Returns:
        The caption.
    """
    text = _caption(shape_or_category_attributes, rng, wording, keys, look.adjectives if look else "")
    return text + look.clause if look else text


def _caption(shape_or_category_attributes, rng, wording, keys, adjectives) -> str:
    if wording not in WORDINGS:
        raise ValueError(f"wording must be one of {WORDINGS}, got {wording!r}")
    if isinstance(shape_or_category_attributes, tuple):
        category, attributes = shape_or_category_attributes
    else:
        category, attributes = shape_or_category_attributes.category, shape_or_category_attributes.attributes
    which = 1 if wording == "paraphrase" else 0
    templates, bare = _FRAMES[wording]
    nouns = NOUNS[category][which]
    noun = nouns[rng.integers(len(nouns))]
    keys = list(attributes) if keys is None else list(keys)
    if not keys:
        return fix_articles(bare[rng.integers(len(bare))].format(noun=f"{adjectives} {noun}".strip()))
    keys = [keys[i] for i in rng.permutation(len(keys))]  # word order should not matter
    special_nouns = PARAPHRASE_ATTRIBUTE_NOUNS if which else ATTRIBUTE_NOUNS
    special = [(k, special_nouns[category, k, attributes[k]]) for k in keys if (category, k, attributes[k]) in special_nouns]
    if special and rng.random() < (0.5 if which else 0.3):
        said, noun = special[0]
        keys = [k for k in keys if k != said] if which else keys  # "a four-legged chair with four feet" says it twice
    phrases = []
    for k in keys:
        options = PHRASES[category][k][attributes[k]][which]
        phrases.append(options[rng.integers(len(options))])
    noun = f"{adjectives} {noun}".strip()
    if not phrases:
        return fix_articles(bare[rng.integers(len(bare))].format(noun=noun))
    return fix_articles(templates[rng.integers(len(templates))].format(noun=noun, attrs=join_phrases(phrases)))
