"""DreamFields' guidance (Jain et al. 2022, "Zero-Shot Text-Guided Object Generation with Dream
Fields"): renders should look like the prompt to CLIP.

The loss is 1 - cos(g(render), h(prompt)), g and h CLIP's image and text encoders (their
projected, normalised embeddings). Each render is randomly cropped and resized to CLIP's input
size first (the paper's augmentations keep CLIP from being fooled by one exact framing; the
random backgrounds come from the trainer). The transmittance regulariser that keeps the field
sparse needs the renders' opacity, so it lives in the trainer (DistillConfig.transmittance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

from ..checkpoint import generator_states, set_generator_states
from .base import GuidanceOutput, View

DEFAULT_MODEL = "openai/clip-vit-base-patch16"  # DreamFields' strongest: ViT-B/16


@dataclass
class ClipConfig:
    """Parameters of ClipGuidance.

    Attributes:
        crop: Each render is cropped to a random square of this fraction of its side, or more.
        crops_per_render: Augmented copies scored per render (their losses are averaged).
    """

    crop: float = 0.8
    crops_per_render: int = 1


class ClipGuidance:
    """`guidance(renders, views, prompt, step) -> GuidanceOutput` scoring renders with CLIP.

    Args:
        model: A transformers CLIPModel (frozen here).
        tokenizer: Its tokenizer.
        image_size: CLIP's input side.
        mean, std: Its pixel normalisation.
        config: See ClipConfig.
        generator: Draws the crops.
    """

    def __init__(self, model: Any, tokenizer: Any, image_size: int, mean: Sequence[float], std: Sequence[float],
                 config: ClipConfig = ClipConfig(), generator: Optional[torch.Generator] = None):
        self.model, self.tokenizer, self.image_size, self.config = model.requires_grad_(False).eval(), tokenizer, image_size, config
        self.device = next(model.parameters()).device
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self.generator = generator or torch.Generator().manual_seed(0)
        self._texts: dict[str, torch.Tensor] = {}

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_MODEL, options: Any = None, config: ClipConfig = ClipConfig(),
                        generator: Optional[torch.Generator] = None) -> "ClipGuidance":
        """Load CLIP from the Hugging Face cache or a local folder (safetensors only).

        Raises:
            ModelUnavailable: not on this machine and downloads are off (the message names the fix).
        """
        from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

        from ...hub import resolve_model_source
        from ...models import LoadOptions

        options = options or LoadOptions()
        folder = resolve_model_source(source, options.allow_downloads, options.cache_dir)
        model = CLIPModel.from_pretrained(folder, use_safetensors=True, dtype=torch.float32).to(options.device)
        processor = CLIPImageProcessor.from_pretrained(folder)
        size = int(model.config.vision_config.image_size)  # what its position embeddings were trained for
        return cls(model, CLIPTokenizer.from_pretrained(folder), size, processor.image_mean, processor.image_std,
                   config, generator)

    def text_embedding(self, prompt: str) -> torch.Tensor:
        """(1, D) normalised CLIP embedding of the prompt, computed once per prompt."""
        if prompt not in self._texts:
            if len(self._texts) >= 16:  # a run uses one prompt (view suffixes are not used here)
                self._texts.clear()
            ids = self.tokenizer([prompt], padding="max_length", truncation=True,
                                 max_length=self.tokenizer.model_max_length, return_tensors="pt").input_ids
            with torch.no_grad():
                self._texts[prompt] = F.normalize(_features(self.model.get_text_features(input_ids=ids.to(self.device))),
                                                  dim=-1)
        return self._texts[prompt]

    def image_embedding(self, renders: torch.Tensor) -> torch.Tensor:
        """(B, D) normalised CLIP embeddings of renders (B, 3, H, W) in [0, 1], differentiably."""
        x = F.interpolate(renders, (self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return F.normalize(_features(self.model.get_image_features(pixel_values=(x - self.mean) / self.std)), dim=-1)

    def __call__(self, renders: torch.Tensor, views: Sequence[View], prompt: str, step: int,
                 negative_prompt: Optional[str] = None) -> GuidanceOutput:
        """One step: the mean of 1 - cos over the renders' random crops (negative_prompt unused)."""
        crops = torch.cat([self._crop(renders) for _ in range(self.config.crops_per_render)])
        similarity = (self.image_embedding(crops.to(self.device)) * self.text_embedding(prompt)).sum(-1)  # (B k,)
        loss = (1 - similarity).mean()
        return GuidanceOutput(loss, torch.zeros(len(renders), dtype=torch.long),
                              {"clip_similarity": float(similarity.detach().mean())})

    def checkpoint_state(self) -> dict[str, Any]:
        """The crops' random state, for an exact resume."""
        return generator_states(crops=self.generator)

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        set_generator_states(state, crops=self.generator)

    def _crop(self, renders: torch.Tensor) -> torch.Tensor:
        """A random square crop per batch (its side a random fraction in [crop, 1] of the render's)."""
        height, width = renders.shape[-2:]
        fraction = self.config.crop + (1 - self.config.crop) * float(torch.rand(1, generator=self.generator))
        side = max(1, round(min(height, width) * fraction))
        top = int(torch.randint(0, height - side + 1, (1,), generator=self.generator))
        left = int(torch.randint(0, width - side + 1, (1,), generator=self.generator))
        return renders[..., top:top + side, left:left + side]


def _features(output: Any) -> torch.Tensor:
    """The projected embeddings: transformers 4 returns them, 5 a ModelOutput holding them."""
    return output if torch.is_tensor(output) else output.pooler_output
