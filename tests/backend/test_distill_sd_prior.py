"""Stable Diffusion as the SDS prior: loading, the Denoiser contract, and distillation end to end
on tiny random SD components (their predictions are noise; the wiring is what is tested)."""

import math
import sys
from pathlib import Path

import pytest
import torch

from backend.distill.cameras import CameraConfig
from backend.distill.field import FieldConfig, RadianceField
from backend.distill.guidance.base import View
from backend.distill.guidance.perp_neg import view_prompt
from backend.distill.guidance.sds import ScoreDistillation, SDSConfig
from backend.distill.guidance.stable_diffusion import DEFAULT_MODEL, PriorConfig, StableDiffusionPrior
from backend.distill.trainer import DistillConfig, distill
from backend.distill.volume import RenderConfig
from backend.errors import ModelUnavailable
from backend.models import LoadOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

TINY = PriorConfig(image_size=16)  # the tiny VAE halves: (B, 4, 8, 8) latents


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_sd.text_pipeline(tmp_path_factory.mktemp("sd"))


@pytest.fixture
def prior(folder):
    return StableDiffusionPrior.from_pretrained(str(folder), LoadOptions(device="cpu"), TINY,
                                                generator=torch.Generator().manual_seed(0))


def record_unet_conditions(prior):
    """Spy: the encoder_hidden_states of every UNet call."""
    calls = []
    hook = prior.unet.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs["encoder_hidden_states"].clone()), with_kwargs=True)
    return calls, hook


def test_sds_steps_train_the_field_with_the_prompt_and_the_negative(prior):
    torch.manual_seed(0)
    field = RadianceField(FieldConfig(resolutions=(4, 8), features=2, hidden=8))
    before = [p.detach().clone() for p in field.parameters()]
    weights = {name: p.clone() for name, p in prior.unet.named_parameters()}
    guidance = ScoreDistillation(prior, SDSConfig(guidance_scale=7.5), total_steps=3, to_model_space=prior.to_latents,
                                 generator=torch.Generator().manual_seed(0))
    steps = []
    calls, hook = record_unet_conditions(prior)
    try:
        distill(field, guidance, "a red ball", DistillConfig(steps=3, cameras=CameraConfig(resolution=16),
                                                             rendering=RenderConfig(samples=8), preview_every_s=1e9),
                negative_prompt="blurry", on_step=lambda step, views, loss: steps.append((views, loss)))
    finally:
        hook.remove()

    assert all(math.isfinite(loss) for _, loss in steps) and len(steps) == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, field.parameters()))
    # Two UNet calls a step: the view's prompt, then the negative prompt as the unconditional half.
    assert len(calls) == 6
    negative = prior.encode(["blurry"])
    for (views, _), conditional, unconditional in zip(steps, calls[0::2], calls[1::2]):
        assert torch.equal(conditional, prior.encode([view_prompt("a red ball", views[0])]))
        assert torch.equal(unconditional, negative)
    assert not torch.equal(calls[0], negative)
    # Frozen: the prior takes no gradients and its weights do not move.
    assert not any(p.requires_grad for m in (prior.unet, prior.vae, prior.text_encoder) for p in m.parameters())
    assert all(torch.equal(p, weights[name]) for name, p in prior.unet.named_parameters())


def test_gradients_reach_the_renders_through_the_vae(prior):
    renders = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1), requires_grad=True)
    latents = prior.to_latents(renders)
    assert latents.shape == (2, 4, 8, 8) and latents.dtype == renders.dtype
    guidance = ScoreDistillation(prior, SDSConfig(guidance_scale=7.5), to_model_space=prior.to_latents,
                                 generator=torch.Generator().manual_seed(0))
    views = [View(elevation=0.0, azimuth=a, distance=3.0, fov_y=40.0) for a in (0.0, 90.0)]
    guidance(renders, views, "a red ball", 1).loss.backward()
    assert renders.grad is not None and renders.grad.abs().sum() > 0


def test_no_condition_is_the_empty_prompt_and_one_prompt_serves_the_batch(prior):
    x_t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([100, 700])
    assert torch.equal(prior.predict_noise(x_t, t, None, []), prior.predict_noise(x_t, t, prior.encode(["", ""]), []))
    one = prior.predict_noise(x_t, t, prior.encode(["a cat"]), [])
    both = prior.predict_noise(x_t, t, prior.encode(["a cat"] * 2), [])
    assert one.shape == x_t.shape and torch.allclose(one, both, atol=1e-6)
    assert prior.encode(["a cat"]).shape == (1, 77, tiny_sd.CROSS_ATTENTION)


def test_v_prediction_models_answer_with_epsilon(prior):
    v_prior = StableDiffusionPrior(prior.unet, prior.vae, prior.text_encoder, prior.tokenizer, prior.alphas_cumprod,
                                   prediction_type="v_prediction")
    x_t, t = torch.randn(1, 4, 8, 8), torch.tensor([500])
    condition = prior.encode(["a cat"])
    v, a = prior.predict_noise(x_t, t, condition, []), prior.alphas_cumprod[500]
    assert torch.allclose(v_prior.predict_noise(x_t, t, condition, []), a.sqrt() * v + (1 - a).sqrt() * x_t, atol=1e-6)


def test_missing_weights_say_which_model_and_how_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        StableDiffusionPrior.from_pretrained(str(tmp_path / "nowhere"), LoadOptions())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="stable-diffusion-2-1-base.*--model-source"):
        StableDiffusionPrior.from_pretrained(options=LoadOptions(cache_dir=str(tmp_path), allow_downloads=True))


@pytest.mark.real_weights
def test_real_sd_predicts_the_noise_of_a_noised_image_when_cached():
    from backend.hub import is_available_offline

    if not is_available_offline(DEFAULT_MODEL):
        pytest.skip(f"{DEFAULT_MODEL} is not in the local Hugging Face cache")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else None
    prior = StableDiffusionPrior.from_pretrained(options=LoadOptions(device, dtype))
    image = torch.linspace(0, 1, 64, device=device).view(1, 1, 1, 64).expand(1, 3, 64, 64)  # a grey ramp
    x0 = prior.to_latents(image)
    noise, t = torch.randn(x0.shape, device=device, dtype=x0.dtype), torch.tensor([500], device=device)
    a = prior.alphas_cumprod[t].view(-1, 1, 1, 1)
    eps = prior.predict_noise(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, prior.encode(["a grey gradient"]), [])
    assert torch.cosine_similarity(eps.flatten().float(), noise.flatten().float(), dim=0) > 0.7


class LinearDenoiser:
    """A prior whose noise prediction is its condition, spread over the image: what Perp-Neg
    does to the conditions can then be read off its predictions. Records each answer."""

    alphas_cumprod = torch.linspace(0.99, 0.01, 1000)

    def __init__(self):
        self.answers = []

    def encode(self, prompts):
        return torch.tensor([[float(sum(map(ord, p)) % 97), float(len(p))] for p in prompts])  # (B, 2)

    def predict_noise(self, x_t, t, condition, views):
        condition = torch.zeros(len(x_t), 2) if condition is None else condition.expand(len(x_t), 2)
        self.answers.append(condition[:, :, None, None].expand(-1, -1, *x_t.shape[2:]).clone())
        return self.answers[-1]


def test_perp_neg_mixes_the_view_prompts_and_removes_the_negatives_parallel_part():
    from backend.distill.cameras import view_at
    from backend.distill.guidance.perp_neg import combine_perp_neg, perp_neg_prompts

    denoiser = LinearDenoiser()
    guidance = ScoreDistillation(denoiser, SDSConfig(guidance_scale=7.5, perp_neg=True), generator=torch.Generator())
    views = [view_at(10.0, 45.0, 3.0, 40.0, 4), view_at(10.0, 150.0, 3.0, 40.0, 4)]
    guidance(torch.full((2, 2, 4, 4), 0.5, requires_grad=True), views, "a corgi", step=1)
    uncond, pos, neg0, neg1 = denoiser.answers  # the order the guidance asks in
    # The positive condition is each view's mix of the view prompts' encodings.
    expected = torch.stack([sum(w * denoiser.encode([p])[0] for p, w in perp_neg_prompts("a corgi", v).positive)
                            for v in views])
    assert torch.allclose(pos[:, :, 0, 0], expected)
    weights = [torch.tensor([perp_neg_prompts("a corgi", v).negatives[k][1] for v in views]) for k in range(2)]
    assert weights[0][0] == pytest.approx(2 * math.exp(-1)) and weights[1][1] == 2.0  # 45°: front; 150°: front
    guided = combine_perp_neg(uncond, pos, [neg0, neg1], weights, 7.5)
    # What the negatives changed is perpendicular to the positive direction, and not nothing.
    d_pos, change = (pos - uncond).flatten(1), (guided - uncond - 7.5 * (pos - uncond)).flatten(1)
    cosine = (change * d_pos).sum(1) / (change.norm(dim=1) * d_pos.norm(dim=1))
    assert cosine.abs().max() < 1e-5 and change.norm(dim=1).min() > 0
