"""UV-space padding: give every texel no triangle owns the colour of the nearest painted one.

Mip levels and bilinear filtering average texels across chart borders; a border of
black (or of another chart's colour) then shows as a seam when the object is seen from
afar. Filling every empty texel with its nearest painted neighbour (an unlimited "extend"
margin, as Blender's bake does) keeps all mip levels seam-free.
"""

from __future__ import annotations

import torch
from scipy import ndimage


def pad_texture(color: torch.Tensor, filled: torch.Tensor, max_distance: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill empty texels with the colour of the nearest filled texel (chessboard distance, in texels).

    Args:
        color: (H, W, C) float texture.
        filled: (H, W) bool, texels that hold a painted colour.
        max_distance: Pad only this many texels out (None = every empty texel).

    Returns:
        (padded (H, W, C) on color's device, new filled mask (H, W)). A texture with no
        filled texel is returned unchanged.
    """
    filled_np = filled.detach().cpu().numpy().astype(bool)
    if filled_np.all() or not filled_np.any():
        return color, filled
    want_distance = max_distance is not None
    # Chessboard distance: square rings of dilation, like a bake margin, and ~3x faster than exact EDT.
    result = ndimage.distance_transform_cdt(~filled_np, metric="chessboard", return_distances=want_distance,
                                            return_indices=True)
    distance, (rows, cols) = result if want_distance else (None, result)
    source = torch.from_numpy(rows * filled_np.shape[1] + cols).to(color.device).view(-1)  # (H*W,) nearest filled texel
    padded = color.reshape(-1, color.shape[-1])[source].view_as(color)
    reach = torch.ones_like(filled, dtype=torch.bool)
    if max_distance is not None:
        reach = torch.from_numpy(distance <= max_distance).to(color.device)
        padded = torch.where(reach[..., None], padded, color)
    return padded, filled | reach
