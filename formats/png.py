"""A PNG encoder for 8-bit images (numpy and the standard library: Blender ships no PIL).

A repaint sends the texture the mesh shows now, byte for byte; the backend keeps every texel
outside the selection as sent, so the encoding must be lossless and exact.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """(H, W) or (H, W, C) uint8, C in 1, 3, 4, row 0 at the top -> PNG bytes.

    Args:
        level: zlib level; 1 is several times faster than 6 for a few percent more bytes.
    """
    array = np.ascontiguousarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in COLOUR_TYPES or 0 in array.shape[:2]:
        raise ValueError(f"an 8-bit image with 1, 3 or 4 channels is needed, got {array.dtype} {array.shape}")
    height, width, channels = array.shape
    rows = np.empty((height, 1 + width * channels), np.uint8)
    rows[:, 0] = 0  # filter "None" per row: exact and simple; zlib does the compressing
    rows[:, 1:] = array.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
