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
