"""Part grammars, one `Category` per object kind; CATEGORIES maps names to them."""

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Category:
    space: dict  # attribute -> list of values, e.g. {"legs": [3, 4, "wheels"]}
    build: Callable  # (rng, attributes) -> list[Part], unnormalised, unnamed
    infer: Callable  # (parts) -> attributes, the inverse of build
    heldout: list  # attribute combinations (partial dicts) never seen in training


from . import furniture, household, nature, vehicles  # noqa: E402
from . import handheld, props, storage, structures, tabletop, transport, wild  # noqa: E402

# Groups that keep their caption tables (NOUNS, PHRASES, ATTRIBUTE_NOUNS, PARAPHRASE_ATTRIBUTE_NOUNS)
# and default looks (PALETTE, CATEGORY_PALETTE, LABEL_KINDS, CATEGORY_KINDS, PLURALS) beside their
# grammars; captions.py and appearance.py merge them. The first four groups' tables live there.
GROUPS = (storage, props, tabletop, handheld, transport, structures, wild)

CATEGORIES = {
    "chair": furniture.CHAIR, "table": furniture.TABLE, "stool": furniture.STOOL,
    "bench": furniture.BENCH, "sofa": furniture.SOFA, "bed": furniture.BED,
    "bookshelf": furniture.BOOKSHELF,
    "desk lamp": household.DESK_LAMP, "floor lamp": household.FLOOR_LAMP,
    "vase": household.VASE, "mug": household.MUG, "bottle": household.BOTTLE,
    "traffic cone": household.TRAFFIC_CONE,
    "mushroom": nature.MUSHROOM, "tree": nature.TREE, "snowman": nature.SNOWMAN,
    "house": nature.HOUSE,
    "rocket": vehicles.ROCKET, "car": vehicles.CAR, "airplane": vehicles.AIRPLANE,
}
for _group in GROUPS:
    CATEGORIES.update(_group.CATEGORIES)
