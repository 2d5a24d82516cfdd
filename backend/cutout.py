"""The object in an uploaded photo: its mask, then the object centred in a square frame.

Image-to-3D models learned from renders of one object, centred, on a flat background; a photo
must be brought to that. The mask comes from the alpha channel when the image has one, else
from a plain background (a product shot, a render, a generated image), found from the border's
colour. A busy background is refused with what to do, never turned into a blob.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError

MIN_SIDE = 32  # pixels: below this there is nothing to reconstruct
BORDER_AGREEMENT = 0.75  # share of border pixels that must be near the background's colour
COLOUR_TOLERANCE = 0.08  # max channel difference still counted as background (soft over as much again)
MAX_OBJECT_SHARE = 0.9  # an "object" filling more of the frame means no background was found
class BusyBackground(InputError):
    """The photo's edge is not one colour: its object cannot be cut out by colour alone."""


BUSY_BACKGROUND = ("the background is not plain: cut the object out first (an image with transparency), or "
                   "photograph it against a plain wall or sheet")


Segmenter = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 -> (H, W) mask in [0, 1]


def foreground_mask(rgba: np.ndarray, segment: Optional[Segmenter] = None) -> tuple[np.ndarray, str]:
    """Where the object is, in [0, 1], and how that was found: "alpha", "plain background", or
    "segmented" (a busy background, by `segment`, e.g. backend/segmentation.py's SAM).

    Args:
        rgba: (H, W, 3|4) uint8.
        segment: For photos whose background is not plain; None refuses them.

    Raises:
        InputError: too small, a busy background (without `segment`), or no object found, each
            saying what to do.
    """
    height, width = rgba.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InputError(f"the image is {width}x{height}: too small to reconstruct; use one at least "
                         f"{MIN_SIDE} pixels on each side (512 or more is best)")
    pixels = np.asarray(rgba, np.float32) / 255.0
    if pixels.shape[2] == 4 and (pixels[..., 3] < 0.99).any():
        mask, how = pixels[..., 3], "alpha"
    else:
        try:
            mask, how = _plain_background_mask(pixels[..., :3]), "plain background"
        except BusyBackground:
            if segment is None:
                raise
            mask, how = np.asarray(segment(np.asarray(rgba)[..., :3]), np.float32), "segmented"
    share = float((mask > 0.5).mean())
    if (mask > 0.5).sum() < 16:
        raise InputError("could not find an object in the image: it is empty or blank"
                         + (" (every pixel is transparent)" if how == "alpha" else ""))
    if share > MAX_OBJECT_SHARE:
        raise InputError(f"the object fills {share:.0%} of the image, so no background could be told from it: "
                         "leave a margin around the object, or use an image with transparency")
    return mask, how


def _plain_background_mask(rgb: np.ndarray) -> np.ndarray:
    """Object = what differs from the border's colour, except background-coloured areas the object
    encloses (a white label on a white-backed product stays object)."""
    from scipy import ndimage

    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    near = np.abs(border - background).max(-1) <= COLOUR_TOLERANCE
    if near.mean() < BORDER_AGREEMENT:
        raise BusyBackground(f"{BUSY_BACKGROUND} (only {near.mean():.0%} of the image's edge is one colour)")
    distance = np.abs(rgb - background).max(-1)
    soft = np.clip((distance - COLOUR_TOLERANCE) / COLOUR_TOLERANCE, 0, 1)  # antialiased outlines stay soft
    regions, _ = ndimage.label(soft < 0.5)
    outside = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    connected = np.isin(regions, outside[outside > 0])
    return np.where(connected, soft, np.maximum(soft, 1.0))


def centre_object(rgba: np.ndarray, mask: np.ndarray, size: int, fill: float,
                  background: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The object centred in a square `size` frame, its larger side `fill` of the frame's, on `background`.

    Returns:
        ((3, size, size) colour in [0, 1], (size, size) mask in [0, 1]).
    """
    rows, cols = np.nonzero(mask > 0.5)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(bottom - top, right - left) / fill
    centre_row, centre_col = (top + bottom) / 2, (left + right) / 2
    back = torch.tensor([*background, 0.0], dtype=torch.float32).view(1, 4, 1, 1)
    rgb = np.asarray(rgba, np.float32)[..., :3] / 255.0
    composite = rgb * mask[..., None] + np.asarray(background, np.float32) * (1 - mask[..., None])
    stacked = torch.from_numpy(np.concatenate([composite, mask[..., None]], -1).astype(np.float32)).permute(2, 0, 1)[None]
    # Sample the square window around the object: background and empty beyond the photo's edge.
    height, width = mask.shape
    ys = (centre_row + (torch.arange(size) + 0.5 - size / 2) * side / size) / height * 2 - 1
    xs = (centre_col + (torch.arange(size) + 0.5 - size / 2) * side / size) / width * 2 - 1
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1)[None].float()  # (1, S, S, 2) as (x, y)
    if side / size > 2:  # shrinking a lot: average first, so fine detail does not alias
        stacked = F.interpolate(stacked, scale_factor=2 * size / side, mode="area")
    window = F.grid_sample(stacked - back, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + back
    return window[0, :3].clamp(0, 1), window[0, 3].clamp(0, 1)


def cut_out(rgba: np.ndarray, size: int, fill: float, background: Sequence[float],
            segment: Optional[Segmenter] = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`foreground_mask` then `centre_object`; the third value says how the object was found."""
    mask, how = foreground_mask(rgba, segment)
    image, window_mask = centre_object(rgba, mask, size, fill, background)
    return image, window_mask, how
