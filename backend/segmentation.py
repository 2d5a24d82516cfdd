"""The object in a photo with a busy background, by Segment Anything (Kirillov et al. 2023).

transformers' own SamModel (no remote code), `facebook/sam-vit-base` by default (375 MB,
safetensors), prompted with one point at the photo's centre, where a photo's subject is. Of the
three masks SAM proposes, the one it scores highest that is neither a speck nor the whole frame
is the object. The pre- and post-processing (resize to 1024 on the long side, pad, ImageNet
normalisation; the 256² mask logits back to the photo) are ours, to need no image-processor
extras.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError, ModelUnavailable

DEFAULT_MODEL = "facebook/sam-vit-base"
PIXEL_MEAN = (123.675, 116.28, 103.53)  # SAM's normalisation, on 0-255 values
PIXEL_STD = (58.395, 57.12, 57.375)
MIN_SHARE, MAX_SHARE = 0.01, 0.9  # of the photo: smaller is a speck, larger the background too


class ObjectSegmenter:
    """`segmenter(rgb)` -> the (H, W) mask in [0, 1] of the object at the photo's centre."""

    def __init__(self, model, device: torch.device):
        self.model = model.to(device).eval()
        self.device = device

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_MODEL, options: Any = None) -> "ObjectSegmenter":
        from transformers import SamModel

        from .hub import resolve_model_source
        from .models import LoadOptions

        options = options or LoadOptions()
        folder = resolve_model_source(source, options.allow_downloads, options.cache_dir)
        try:
            model = SamModel.from_pretrained(folder, use_safetensors=True)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(f"Model {source} could not be loaded from {folder}: {error}. Fix: point it at a "
                                   "complete Segment Anything folder (config.json, safetensors)") from error
        return cls(model, torch.device(options.device))

    @torch.no_grad()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The object's soft mask.

        Raises:
            InputError: no proposal is a plausible object (all specks, or all the whole frame).
        """
        height, width = rgb.shape[:2]
        size = self.model.config.vision_config.image_size
        scale = size / max(height, width)
        inner = (max(1, round(height * scale)), max(1, round(width * scale)))
        image = torch.from_numpy(np.array(rgb[..., :3], np.float32)).permute(2, 0, 1)[None]
        image = F.interpolate(image, size=inner, mode="bilinear", align_corners=False, antialias=True)
        image = (image - torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)) / torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
        image = F.pad(image, (0, size - inner[1], 0, size - inner[0]))  # padded after normalising, as SAM was
        centre = torch.tensor([[[[inner[1] / 2, inner[0] / 2]]]])  # (x, y) in the padded frame
        out = self.model(pixel_values=image.to(self.device), input_points=centre.to(self.device),
                         input_labels=torch.ones(1, 1, 1, dtype=torch.long, device=self.device), multimask_output=True)
        logits = to_image_masks(out.pred_masks[0, 0].float().cpu(), size, inner, (height, width))  # (3, H, W)
        return choose_mask(logits, out.iou_scores[0, 0].float().cpu())


def to_image_masks(low_res: torch.Tensor, size: int, inner: tuple[int, int], original: tuple[int, int]) -> torch.Tensor:
    """(M, s, s) mask logits over the padded square -> (M, H, W) over the photo: up to the square,
    the padding cut off, then to the photo's size."""
    square = F.interpolate(low_res[None], size=(size, size), mode="bilinear", align_corners=False)
    cropped = square[..., :inner[0], :inner[1]]
    return F.interpolate(cropped, size=original, mode="bilinear", align_corners=False)[0]


def choose_mask(logits: torch.Tensor, scores: torch.Tensor) -> np.ndarray:
    """The best-scored proposal covering between MIN_SHARE and MAX_SHARE of the photo, softened
    over a logit's width so outlines stay antialiased."""
    shares = (logits > 0).float().mean(dim=(1, 2))
    plausible = [i for i in torch.argsort(scores, descending=True).tolist() if MIN_SHARE <= shares[i] <= MAX_SHARE]
    if not plausible:
        raise InputError("could not find one object at the middle of the photo: centre the object, fill more of "
                         "the frame with it, or cut it out first (an image with transparency)")
    return torch.sigmoid(logits[plausible[0]]).numpy()
