"""ProlificDreamer's eps_phi: a LoRA on the prior's own UNet, told the camera.

VSD (vsd.py) needs the score of the particles' own renders, learnt while they move. The paper
learns it as a low-rank adaptation of the frozen prior (rank 4 on the attention projections)
whose timestep embedding gets the camera added: the camera-to-world matrix, flattened, through a
two-layer MLP (Wang et al. 2023, Sec. 4 and App. C). Here the adapter (peft, through diffusers'
adapter support) lives on the prior's UNet and is switched on only inside this module's
forward, so the prior itself answers as before and no second copy of the UNet is held.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .base import View

ADAPTER = "vsd_particles"
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]  # the attention projections


class CameraLoRA(nn.Module):
    """eps_phi(x_t, t, camera) for `VariationalScoreDistillation`.

    Args:
        prior: A StableDiffusionPrior; its UNet gets the adapter (off unless this module runs).
        prompt: The run's prompt: eps_phi is conditioned on its text embedding, as the prior is.
        rank: LoRA rank (ProlificDreamer: 4).
    """

    def __init__(self, prior, prompt: str, rank: int = 4):
        super().__init__()
        from peft import LoraConfig

        unet = prior.unet
        if ADAPTER in getattr(unet, "peft_config", {}):
            unet.delete_adapters(ADAPTER)  # a previous run's: every run learns its own particles' score
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=TARGETS),
                         adapter_name=ADAPTER)
        unet.disable_adapters()  # the prior stays the prior (this also freezes the adapter: thawed below)
        # Trained in fp32 whatever the UNet's dtype (peft casts inputs to the adapter's dtype).
        self.lora = nn.ParameterList()
        for name, parameter in unet.named_parameters():
            if ADAPTER in name:
                parameter.data = parameter.data.float()
                parameter.requires_grad_(True)
                self.lora.append(parameter)
        width = unet.time_embedding.linear_2.out_features
        self.camera = nn.Sequential(nn.Linear(16, width), nn.SiLU(), nn.Linear(width, width)).to(prior.device)
        nn.init.zeros_(self.camera[2].weight)  # starts as the prior plus a LoRA of small weights
        nn.init.zeros_(self.camera[2].bias)
        object.__setattr__(self, "prior", prior)  # not a submodule: its weights are not ours to train
        with torch.no_grad():
            self.condition = prior.encode([prompt])

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, views: Optional[Sequence[View]]) -> torch.Tensor:
        """(B, 4, h, w) noise predicted for the particles' noised latents; views None: no camera."""
        prior, unet = self.prior, self.prior.unet
        cameras = torch.zeros(len(x_t), 16, device=x_t.device)
        if views is not None:
            cameras = torch.stack([torch.linalg.inv(v.camera.view_matrix()).reshape(-1) for v in views]).to(x_t.device)
        condition = self.condition.to(x_t.device, unet.dtype).expand(len(x_t), -1, -1)
        unet.enable_adapters()
        unet.class_embedding = _Float32(self.camera)  # added to the timestep embedding
        try:
            out = unet(x_t.to(unet.dtype), t.to(x_t.device), encoder_hidden_states=condition,
                       class_labels=cameras).sample.to(x_t.dtype)
        finally:
            unet.class_embedding = None
            unet.disable_adapters()
            for parameter in self.lora:  # peft's switch freezes them too; the backward is still to come
                parameter.requires_grad_(True)
        if prior.prediction_type == "v_prediction":  # as the prior converts v to epsilon
            a = prior.alphas_cumprod[t.to(prior.device)].view(-1, 1, 1, 1).to(x_t.dtype)
            out = a.sqrt() * out + (1 - a).sqrt() * x_t
        return out


class _Float32(nn.Module):
    """Runs the camera MLP in fp32 (its weights' dtype) for a UNet in another dtype."""

    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.mlp = mlp

    def forward(self, cameras: torch.Tensor) -> torch.Tensor:
        return self.mlp(cameras.float())
