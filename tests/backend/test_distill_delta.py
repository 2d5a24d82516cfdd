"""DDS and PDS keep what the source prompt describes; SDS does not. A toy with an exact prior.

The "images" are 2x1x1 tensors. Under either prompt, channel 0 is a two-mode mixture (means
+-1.5, std 0.3), the content both prompts describe alike; channel 1 is N(-2, 0.3^2) under
"source" and N(+2, 0.3^2) under "target", the content the edit changes. The unconditional prior
mixes the two prompts equally. Every noised density is again a Gaussian mixture, so the optimal
denoiser eps*(x_t, t, y) = -sigma grad log p_t(x_t | y) is closed-form and serves as the prior.

64 source samples are then edited towards "target" with (a) SDS, (b) DDS and (c) PDS, with the
same optimizer, learning rate, steps and timestep range. SDS pulls channel 0 towards the modes
of the noised prior (it shrinks +-1.5 towards the origin, see test_distill_vsd_toy.py), while
the source term of DDS and PDS cancels channel 0's update exactly (the prior factorises over
the channels, so equal channel-0 inputs give equal channel-0 predictions). On channel 1 both
translate each source sample by the difference of the two means, the target's distribution.
"""

from __future__ import annotations

import time

import pytest
import torch

from backend.distill.guidance.base import View
from backend.distill.guidance.delta import (DDSConfig, DeltaDenoisingScore, PDSConfig,
                                            PosteriorDistillationSampling)
from backend.distill.guidance.sds import ScoreDistillation, SDSConfig
from tests.fixtures.mixture_prior import ddpm_linear_alphas_cumprod, mixture_noise

PROMPTS = {"source": 0, "target": 1}
# Components (channel 0, channel 1) and the prompt each belongs to
MEANS = torch.tensor([[-1.5, -2.0], [1.5, -2.0], [-1.5, 2.0], [1.5, 2.0]])  # (K, 2)
OWNER = torch.tensor([0, 0, 1, 1])  # (K,)
DATA_STD = 0.3
PARTICLES = 64
STEPS = 1500
LR = 0.05
VIEWS = [View(elevation=0.0, azimuth=0.0, distance=1.0, fov_y=40.0)] * PARTICLES


class PromptMixtureDenoiser:
    """The exact eps*(x_t, t, y) of the prompt-conditional mixture under DDPM's linear schedule."""

    def __init__(self):
        self.alphas_cumprod = ddpm_linear_alphas_cumprod()

    def encode(self, prompts):
        return torch.tensor([PROMPTS[p] for p in prompts])  # (B,) prompt ids

    def predict_noise(self, x_t, t, condition, views):
        keep = None if condition is None else OWNER.unsqueeze(0) == condition.unsqueeze(1)  # each prompt's components
        return mixture_noise(x_t, self.alphas_cumprod[t], MEANS, DATA_STD, keep)


def source_samples(n: int, seed: int) -> torch.Tensor:
    """n samples of the "source" distribution, (n, 2, 1, 1)."""
    gen = torch.Generator().manual_seed(seed)
    means = MEANS[torch.randint(0, 2, (n,), generator=gen)]
    return (means + DATA_STD * torch.randn(n, 2, generator=gen)).view(n, 2, 1, 1)


def edit(method: str, x_src: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Optimise particles from x_src towards "target" with one method; returns them (N, 2)."""
    denoiser = PromptMixtureDenoiser()
    gen = torch.Generator().manual_seed(seed)
    identity = lambda x: x  # noqa: E731  (the toy's "renders" are its model space)
    common = dict(total_steps=STEPS, to_model_space=identity, generator=gen)
    # CFG 1: the target is then p(x | target) itself, not a sharpened version of it
    if method == "sds":
        guidance = ScoreDistillation(denoiser, SDSConfig(guidance_scale=1.0, view_dependent=False), **common)
    elif method == "dds":
        guidance = DeltaDenoisingScore(denoiser, DDSConfig(source_prompt="source", guidance_scale=1.0), **common)
    else:
        guidance = PosteriorDistillationSampling(denoiser, PDSConfig(source_prompt="source", guidance_scale=1.0),
                                                 **common)
    x = x_src.clone().requires_grad_()
    optimizer = torch.optim.Adam([x], lr=LR)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, STEPS, eta_min=LR / 50)
    for step in range(STEPS):
        optimizer.zero_grad()
        extra = {} if method == "sds" else {"source_renders": x_src}
        guidance(x, VIEWS, "target", step, **extra).loss.backward()
        optimizer.step()
        decay.step()
    return x.detach().flatten(1)


def report(name: str, x: torch.Tensor, x_src: torch.Tensor) -> dict[str, float]:
    """Drift of the kept content (channel 0) and the edited content's statistics (channel 1)."""
    drift = (x[:, 0] - x_src[:, 0]).pow(2).mean().sqrt().item()
    mean, std = x[:, 1].mean().item(), x[:, 1].std().item()
    shift = (x[:, 1] - x_src[:, 1] - 4.0).pow(2).mean().sqrt().item()  # vs. translating by +4
    print(f"{name:>4}: channel 0 drift (RMS) {drift:.2e} | channel 1 mean {mean:+.3f} std {std:.3f} "
          f"(target +2.000, 0.300) | RMS from source + 4: {shift:.3f}")
    return {"drift": drift, "mean": mean, "std": std, "shift": shift}


@pytest.fixture
def one_thread():
    # Tiny tensors: one thread is faster than two shared cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_delta_methods_keep_the_shared_content_where_sds_moves_it(one_thread):
    start = time.perf_counter()
    x_src = source_samples(PARTICLES, seed=1)
    flat = x_src.flatten(1)
    print()
    sds = report("SDS", edit("sds", x_src), flat)
    dds = report("DDS", edit("dds", x_src), flat)
    pds = report("PDS", edit("pds", x_src), flat)
    print(f"DDS / SDS drift: {dds['drift'] / sds['drift']:.4f}, PDS / SDS: {pds['drift'] / sds['drift']:.4f}, "
          f"runtime {time.perf_counter() - start:.1f} s")

    assert sds["drift"] > 0.3  # SDS pulls the kept modes at +-1.5 inwards
    for r in (dds, pds):
        assert r["drift"] <= 0.2 * sds["drift"]
        assert abs(r["mean"] - 2.0) < 0.2 and 0.15 < r["std"] < 0.45  # the target's channel 1
        assert r["shift"] < 0.05  # each sample keeps its own deviation: a translation by +4
    assert sds["std"] < 0.1  # SDS instead collapses channel 1 onto the target's mode


def test_dds_and_pds_are_zero_without_an_edit():
    """Same prompt, x == x_src: the two terms are the same computation, with CFG and a negative."""
    denoiser = PromptMixtureDenoiser()
    x_src = source_samples(8, seed=3)
    for cls, config in ((DeltaDenoisingScore, DDSConfig(source_prompt="source")),
                        (PosteriorDistillationSampling, PDSConfig(source_prompt="source"))):
        guidance = cls(denoiser, config, to_model_space=lambda x: x, generator=torch.Generator().manual_seed(0))
        x = x_src.clone().requires_grad_()
        out = guidance(x, VIEWS[:8], "source", step=0, negative_prompt="target", source_renders=x_src)
        out.loss.backward()
        assert torch.equal(x.grad, torch.zeros_like(x)) and out.info["grad_norm"] == 0.0


class FixedSchedule:
    def __init__(self, t):
        self.t = t

    def timesteps(self, step, total_steps, batch):
        return torch.full((batch,), self.t)


@pytest.mark.parametrize("t", [20, 300, 900])
def test_pds_is_dds_under_the_posterior_weight(t):
    """With exact DDPM posterior coefficients, z_tgt - z_src = c0 sqrt(1 - a_t) / (sqrt(a_t)
    sigma_t) (eps_hat_tgt - eps_hat_src): the x0 and eps' terms cancel."""
    denoiser = PromptMixtureDenoiser()
    x_src = source_samples(8, seed=4).double()
    x = x_src + 0.5 * torch.randn(x_src.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    grads = {}
    for name, cls, config in (("dds", DeltaDenoisingScore, DDSConfig(source_prompt="source", guidance_scale=3.0)),
                              ("pds", PosteriorDistillationSampling,
                               PDSConfig(source_prompt="source", guidance_scale=3.0, stride=2))):
        guidance = cls(denoiser, config, schedule=FixedSchedule(t), to_model_space=lambda v: v,
                       generator=torch.Generator().manual_seed(0))  # same first noise draw
        xr = x.clone().requires_grad_()
        guidance(xr, VIEWS[:8], "target", step=0, source_renders=x_src).loss.backward()
        grads[name] = xr.grad * 8
    a = denoiser.alphas_cumprod.double()
    a_t, a_prev = a[t], a[t - 2]
    beta = 1 - a_t / a_prev
    sigma = (beta * (1 - a_prev) / (1 - a_t)).sqrt()
    chi = a_prev.sqrt() * beta / (1 - a_t) * (1 - a_t).sqrt() / (a_t.sqrt() * sigma)
    torch.testing.assert_close(grads["pds"], chi * grads["dds"], rtol=1e-6, atol=1e-8)
    assert grads["dds"].abs().max() > 1e-3


def test_source_renders_are_required():
    guidance = DeltaDenoisingScore(PromptMixtureDenoiser(), DDSConfig(source_prompt="source"))
    x = torch.rand(2, 2, 1, 1)
    with pytest.raises(ValueError):
        guidance(x, VIEWS[:2], "target", step=0)
    with pytest.raises(ValueError):
        guidance(x, VIEWS[:2], "target", step=0, source_renders=x[:1])
