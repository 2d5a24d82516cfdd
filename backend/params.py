"""Checks of request parameters that every model shares: numeric ranges and seeds."""

from __future__ import annotations

import math
import secrets
from typing import Any

from .errors import InputError

# Numeric parameters' allowed ranges, {name: (low, high)}; integer bounds mean whole numbers.
Limits = dict[str, tuple[float, float]]
SEED_LIMITS: Limits = {"seed": (0, 2**63 - 1)}  # what torch and numpy generators accept


def check_limits(params: dict[str, Any], limits: Limits) -> None:
    """Refuse a numeric parameter outside its range, NaN or infinite; None leaves it to its default.

    Raises:
        InputError: naming the parameter, its range and the value sent.
    """
    for name, (low, high) in limits.items():
        value = params.get(name)
        if value is None:
            continue
        whole = isinstance(low, int) and isinstance(high, int)
        kind = (int,) if whole else (int, float)
        finite = not isinstance(value, float) or math.isfinite(value)  # an int of any size compares exactly
        if isinstance(value, bool) or not isinstance(value, kind) or not finite or not low <= value <= high:
            raise InputError(f"{name} must be {'a whole number' if whole else 'a number'} from {low} to {high}, got {value!r}")


def draw_seed() -> int:
    """A fresh seed for a request that gave none; results store it, so a run can be repeated."""
    return secrets.randbelow(2**31)


# Caps on what a request's parameters may hold. A prompt is read by a text encoder of 64-77
# tokens: a few thousand characters is far more than any model uses, and a bound on memory,
# on the stored record and on every `GET /jobs` that returns it.
MAX_TEXT_CHARS = 4000
MAX_LIST_ITEMS = 64
MAX_OBJECT_KEYS = 32
MAX_DEPTH = 4


def check_value(name: str, value: Any, depth: int = 0) -> None:
    """Refuse a parameter value that cannot be stored and sent back as it came: text over
    MAX_TEXT_CHARS or not encodable as UTF-8 (a lone UTF-16 surrogate), lists, objects or nesting
    past their caps. The types a parameter must have are checked by the registry.

    Raises:
        InputError: naming the parameter and the cap.
    """
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise InputError(f"{name} is {len(value):,} characters long; the limit is {MAX_TEXT_CHARS:,}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"{name} is not valid text: character {e.start} is a lone UTF-16 surrogate; "
                             "send the text as UTF-8") from None
    elif isinstance(value, (list, dict)):
        if depth >= MAX_DEPTH:
            raise InputError(f"{name} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                raise InputError(f"{name} has {len(value):,} items; the limit is {MAX_LIST_ITEMS}")
            for i, element in enumerate(value):
                check_value(f"{name}[{i}]", element, depth + 1)
        else:
            if len(value) > MAX_OBJECT_KEYS:
                raise InputError(f"{name} has {len(value):,} keys; the limit is {MAX_OBJECT_KEYS}")
            for key, element in value.items():
                check_value(f"{name} key", key, depth + 1)
                check_value(f"{name}.{key[:40]}", element, depth + 1)
