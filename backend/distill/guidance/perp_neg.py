"""Perp-Neg (Armandpour et al. 2023, "Re-imagine the Negative Prompt Algorithm: Transform 2D
Diffusion into 3D, alleviate Janus problem and Beyond", arXiv:2304.04968), and DreamFusion's
view-dependent prompts it builds on.

A plain negative prompt subtracts everything it shares with the positive one ("a corgi, side
view" minus "a corgi, front view" also removes the corgi). Perp-Neg subtracts only the part of
each negative direction perpendicular to the positive direction, so views can be pushed apart
without erasing the object, which is what keeps SDS from painting a face on every side (the
Janus problem).

The prompt side is pure: `perp_neg_prompts(prompt, view)` returns strings and weights; the
caller encodes them and runs the denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence, Union

import torch

from .base import View


def perpendicular_component(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The part of `a` perpendicular to `b`, per sample: a - (<a, b> / |b|^2) b.

    Args:
        a, b: (B, ...) tensors of one shape; the dot product runs over all but the first axis.
        eps: Floor on |b|^2, so that b = 0 returns `a` unchanged rather than NaN.

    Returns:
        (B, ...) tensor shaped like `a`.
    """
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    flat_a, flat_b = a.flatten(1), b.flatten(1)  # (B, D)
    dot = (flat_a * flat_b).sum(1)  # (B,)
    coefficient = dot / (flat_b * flat_b).sum(1).clamp_min(eps)  # (B,)
    return a - coefficient.view(-1, *[1] * (a.dim() - 1)) * b


def combine_perp_neg(eps_uncond: torch.Tensor, eps_pos: torch.Tensor, eps_negs: Sequence[torch.Tensor],
                     neg_weights: Sequence[Union[float, torch.Tensor]], guidance_scale: float) -> torch.Tensor:
    """Perp-Neg's guided noise prediction.

        eps = eps_u + s [ d_pos - sum_i w_i perp(d_neg_i, d_pos) ],
        d_pos = eps_pos - eps_u,   d_neg_i = eps_neg_i - eps_u.

    The paper writes eps_u + w_pos d_pos - sum_i w_neg_i perp(d_neg_i, d_pos) with the negative
    weights apart from w_pos; stable-dreamfusion and threestudio factor the guidance scale out
    of both, as here, so the paper's w_neg_i = s w_i. Their weights carry the minus sign
    (negative_w = -2, added); ours are positive for "away from". With no negatives this is
    classifier-free guidance; a negative parallel to d_pos changes nothing.

    Args:
        eps_uncond: (B, C, H, W) unconditional prediction.
        eps_pos: (B, C, H, W) prediction for the positive prompt.
        eps_negs: K predictions (B, C, H, W), one per negative prompt.
        neg_weights: K weights w_i, each a float or a (B,) tensor (one per view).
        guidance_scale: s.

    Returns:
        (B, C, H, W) guided prediction.
    """
    if len(eps_negs) != len(neg_weights):
        raise ValueError(f"need one weight per negative, got {len(eps_negs)} and {len(neg_weights)}")
    d_pos = eps_pos - eps_uncond
    direction = d_pos.clone()
    for eps_neg, weight in zip(eps_negs, neg_weights):
        w = torch.as_tensor(weight, dtype=d_pos.dtype, device=d_pos.device)
        w = w.view(-1, *[1] * (d_pos.dim() - 1)) if w.dim() else w
        direction = direction - w * perpendicular_component(eps_neg - eps_uncond, d_pos)
    return eps_uncond + guidance_scale * direction


@dataclass(frozen=True)
class ViewPromptConfig:
    """Thresholds of the view suffixes and Perp-Neg's weights.

    Attributes:
        overhead_threshold: Elevation (degrees) above which a view is "overhead" (DreamFusion's
            suffixes; threestudio's 60).
        front_threshold: |azimuth| below which a view is "front" (threestudio's 45).
        back_threshold: A view is "back" when |azimuth| > 180 - back_threshold (45).
        negative_w: Magnitude of the negative weights (stable-dreamfusion's --negative_w -2,
            "vary between 0 and -4": larger fights Janus harder but can flatten faces).
        front_decay_factor: Decay of the front negative away from the front (its 2).
        side_decay_factor: Decay of the side negative away from the side (its 10).
    """

    overhead_threshold: float = 60.0
    front_threshold: float = 45.0
    back_threshold: float = 45.0
    negative_w: float = 2.0
    front_decay_factor: float = 2.0
    side_decay_factor: float = 10.0


SUFFIXES = {"front": "front view", "side": "side view", "back": "back view", "overhead": "overhead view"}
# stable-dreamfusion switches a negative off near its own view: r above / below these.
_NEAR, _FAR = 0.8, 0.2


def _wrap(azimuth: float) -> float:
    return (azimuth + 180.0) % 360.0 - 180.0  # to [-180, 180)


def view_direction(view: View, config: ViewPromptConfig = ViewPromptConfig()) -> str:
    """DreamFusion's view bin: "overhead" when elevation > overhead_threshold, else "front"
    when |azimuth| < front_threshold, "back" when |azimuth| > 180 - back_threshold, else
    "side" (bounds belong to "side")."""
    azimuth = abs(_wrap(view.azimuth))
    if view.elevation > config.overhead_threshold:
        return "overhead"
    if azimuth < config.front_threshold:
        return "front"
    if azimuth > 180.0 - config.back_threshold:
        return "back"
    return "side"


def view_prompt(prompt: str, view: View, config: ViewPromptConfig = ViewPromptConfig()) -> str:
    """The prompt with DreamFusion's view suffix, e.g. "a corgi, side view"."""
    return f"{prompt}, {SUFFIXES[view_direction(view, config)]}"


class PerpNegPrompts(NamedTuple):
    """What to encode for one view.

    Attributes:
        positive: (prompt, weight) pairs whose text embeddings are mixed linearly,
            sum_k weight_k E(prompt_k), into the positive condition; weights sum to 1.
        negatives: (prompt, w_i) pairs for `combine_perp_neg`; always two, so views batch
            together; w_i = 0 means the negative does nothing (and may be skipped).
    """

    positive: list[tuple[str, float]]
    negatives: list[tuple[str, float]]


def perp_neg_prompts(prompt: str, view: View, config: ViewPromptConfig = ViewPromptConfig()) -> PerpNegPrompts:
    """Perp-Neg's view-interpolated prompts, as stable-dreamfusion's get_pos_neg_text_embeddings.

    With a = |azimuth| in [0, 180] and n = negative_w:
    - a < 90: r = 1 - a / 90 (1 at the front, 0 at the side); positive r front + (1 - r) side;
      negatives front with n exp(-r front_decay) (0 if r > 0.8) and side with
      n exp(-(1 - r) side_decay) (0 if r < 0.2).
    - a >= 90: r = 2 - a / 90 (1 at the side, 0 at the back); positive r side + (1 - r) back;
      negatives side with n exp(-r side_decay) / 2 (0 if r > 0.8) and front with n.
    - overhead (elevation > overhead_threshold, threestudio's rule): the overhead prompt alone,
      both negative weights 0.
    E.g. with the defaults, azimuth 0: front 0, side 2; 45: front 2/e = 0.736, side 2 e^-5 =
    0.0135; 90: side 0, front 2; 180: side 1, front 2.

    threestudio's variant uses shifted exponentials a exp(-b r) + c instead, with (a, b, c) =
    (4, 0.5, -2.426) front/side, (1, 0.5, -0.606) side/back, (1, 0.5, 0.967) front at the back.

    Args:
        prompt: The user's prompt, without a view suffix.
        view: The camera; its azimuth is wrapped to [-180, 180).
        config: Thresholds and weights; see ViewPromptConfig.

    Returns:
        PerpNegPrompts(positive, negatives).
    """
    cfg = config
    front, side, back, overhead = (f"{prompt}, {SUFFIXES[d]}" for d in ("front", "side", "back", "overhead"))
    if view.elevation > cfg.overhead_threshold:
        return PerpNegPrompts([(overhead, 1.0)], [(front, 0.0), (side, 0.0)])
    azimuth = abs(_wrap(view.azimuth))
    n = cfg.negative_w
    if azimuth < 90.0:
        r = 1.0 - azimuth / 90.0
        front_w = 0.0 if r > _NEAR else n * math.exp(-r * cfg.front_decay_factor)
        side_w = 0.0 if r < _FAR else n * math.exp(-(1.0 - r) * cfg.side_decay_factor)
        return PerpNegPrompts([(front, r), (side, 1.0 - r)], [(front, front_w), (side, side_w)])
    r = 2.0 - azimuth / 90.0
    side_w = 0.0 if r > _NEAR else n * math.exp(-r * cfg.side_decay_factor) / 2.0
    return PerpNegPrompts([(side, r), (back, 1.0 - r)], [(side, side_w), (front, n)])
