"""ProlificDreamer's particle denoiser on tiny random SD components: a LoRA on the prior's own
UNet, camera-conditioned, trained by VSD, while the prior itself keeps answering as before."""

import sys
from pathlib import Path

import pytest
import torch

from backend.distill.cameras import view_at
from backend.distill.guidance.camera_lora import CameraLoRA
from backend.distill.guidance.stable_diffusion import PriorConfig, StableDiffusionPrior
from backend.distill.guidance.vsd import VariationalScoreDistillation, VSDConfig
from backend.models import LoadOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_sd.text_pipeline(tmp_path_factory.mktemp("sd"))


def test_vsd_trains_the_camera_lora_and_leaves_the_prior_as_it_was(folder):
    prior = StableDiffusionPrior.from_pretrained(str(folder), LoadOptions(device="cpu"), PriorConfig(image_size=16),
                                                 generator=torch.Generator().manual_seed(0))
    x_t, t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([300, 700])
    views = [view_at(10.0, 0.0, 3.0, 40.0, 16), view_at(30.0, 120.0, 3.0, 40.0, 16)]
    condition = prior.encode(["a vase"])
    answer = prior.predict_noise(x_t, t, condition, views)
    base = {name: p.detach().clone() for name, p in prior.unet.named_parameters()}

    lora = CameraLoRA(prior, "a vase", rank=4)
    assert len(lora.lora) > 0 and all(p.requires_grad for p in lora.lora)
    assert torch.equal(prior.predict_noise(x_t, t, condition, views), answer)  # adapter off for the prior
    start = {id(p): p.detach().clone() for p in lora.parameters()}
    vsd = VariationalScoreDistillation(prior, lora, VSDConfig(particle_lr=1e-2, camera_dropout=0.0),
                                       to_model_space=prior.to_latents)
    renders = torch.rand(2, 3, 16, 16, requires_grad=True)
    for step in range(1, 4):
        output = vsd(renders, views, "a vase", step)
        output.loss.backward()
    assert renders.grad is not None and torch.isfinite(renders.grad).all() and renders.grad.abs().sum() > 0
    moved = {id(p) for p in lora.parameters() if not torch.equal(p.detach(), start[id(p)])}
    assert any(id(p) in moved for p in lora.lora) and any(id(p) in moved for p in lora.camera.parameters())
    for name, p in prior.unet.named_parameters():  # the frozen prior: only the adapter's weights moved
        if name in base:
            assert torch.equal(p.detach(), base[name]), name
    assert torch.equal(prior.predict_noise(x_t, t, condition, views), answer)
    with torch.no_grad():  # trained with cameras: eps_phi now tells views apart
        one = lora(x_t, t, views)
        swapped = lora(x_t, t, views[::-1])
        free = lora(x_t, t, None)
    assert not torch.allclose(one, swapped) and not torch.allclose(one, free)
    assert prior.unet.class_embedding is None  # switched back off after each call
    CameraLoRA(prior, "a cup")  # a second run replaces the first run's adapter
    assert torch.equal(prior.predict_noise(x_t, t, condition, views), answer)
