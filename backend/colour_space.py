"""sRGB <-> linear conversions (IEC 61966-2-1): glTF base colours and Blender's colour sockets are
linear, while colour tables, vertex colours and preview images are sRGB."""

from __future__ import annotations

import numpy as np


def srgb_to_linear(values) -> np.ndarray:
    c = np.asarray(values, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values) -> np.ndarray:
    c = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)
