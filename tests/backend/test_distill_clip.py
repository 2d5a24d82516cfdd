"""DreamFields' pieces: CLIP guidance moves renders towards the prompt (tiny random CLIP: any
differentiable scorer must rise under its own gradient), and the transmittance target pushes
opacity down only while the renders are more opaque than the target allows."""

import sys
from pathlib import Path

import pytest
import torch

from backend.distill.guidance.clip import ClipGuidance, ClipConfig
from backend.distill.trainer import TransmittanceTarget
from backend.models import LoadOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return ClipGuidance.from_pretrained(str(tiny_sd.clip_model(tmp_path_factory.mktemp("clip"))),
                                        LoadOptions(device="cpu"), ClipConfig(crop=1.0))


def test_clip_guidance_raises_the_renders_similarity_to_the_prompt(clip):
    image = torch.full((1, 3, 48, 48), 0.5, requires_grad=True)
    optimiser = torch.optim.Adam([image], lr=0.02)
    similarities = []
    for step in range(1, 31):
        output = clip(image.clamp(0, 1), [None], "a red ball", step)
        optimiser.zero_grad()
        output.loss.backward()
        optimiser.step()
        similarities.append(output.info["clip_similarity"])
    assert similarities[-1] > similarities[0] + 0.1, similarities
    other = clip(image.detach().clamp(0, 1), [None], "zzz qqq", 0).info["clip_similarity"]
    assert similarities[-1] > other  # towards this prompt, not just any text
    for i in range(40):  # one embedding per prompt, and never more than a handful kept
        clip.text_embedding(f"prompt {i}")
    assert len(clip._texts) <= 16


def test_transmittance_target_pushes_opacity_down_only_above_the_target():
    target = TransmittanceTarget(start=0.4, end=0.88, anneal_steps=500, weight=0.5)
    for opacity_value, step, pushes in ((0.9, 1, True), (0.3, 1, False), (0.3, 500, True), (0.05, 500, False)):
        opacity = torch.full((1, 1, 8, 8), opacity_value, requires_grad=True)
        target.loss(opacity, step).backward()
        gradient = float(opacity.grad.mean())
        # At step 1 tau = 0.4: transmittance 0.1 is below it (push), 0.7 above (nothing); at step 500 tau = 0.88.
        assert (gradient > 0) == pushes and (gradient == 0) == (not pushes), (opacity_value, step, gradient)
