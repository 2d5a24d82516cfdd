"""How close a distilled result is to a known asset: image PSNR, silhouette IoU, Chamfer distance."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..geometry.sampling import sample_surface


def psnr(images: torch.Tensor, targets: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (all pixels of all images together)."""
    mse = float(((images.float() - targets.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def silhouette_iou(opacity: torch.Tensor, masks: torch.Tensor, level: float = 0.5) -> float:
    """Intersection over union of the pixels where `opacity` > level and the boolean `masks`."""
    predicted, masks = opacity > level, masks.bool()
    union = float((predicted | masks).sum())
    return 1.0 if union == 0 else float((predicted & masks).sum()) / union


def chamfer_distance(vertices_a: np.ndarray, faces_a: np.ndarray, vertices_b: np.ndarray, faces_b: np.ndarray,
                     samples: int = 100000, seed: int = 0) -> float:
    """Symmetric Chamfer distance between two surfaces: the mean distance from points sampled
    on each (by area) to the other's samples, averaged over both directions."""
    from scipy.spatial import cKDTree

    a = sample_surface(vertices_a, faces_a, samples, np.random.default_rng(seed))
    b = sample_surface(vertices_b, faces_b, samples, np.random.default_rng(seed + 1))
    return 0.5 * (float(cKDTree(b).query(a)[0].mean()) + float(cKDTree(a).query(b)[0].mean()))
