"""The prompt's counts reach the built-in model as tokens: the parser reads English quantities,
and the denoiser's output depends on the count a token carries."""

import pytest
import torch

from backend.parts.diffusion import DenoiserConfig, PartDenoiser, TextCondition
from backend.parts.prompt_counts import COUNT_DIM, MAX_MENTIONS, count_mentions, with_count_tokens


@pytest.mark.parametrize("prompt, expected", [
    ("a chair with four legs", [(4, "legs")]),
    ("a chair with 4 legs", [(4, "legs")]),
    ("a four-legged chair with a pair of arms and no back", [(4, "legged chair"), (2, "arms"), (0, "back")]),
    ("a rocket with 3 fins and two stages", [(3, "fins"), (2, "stages")]),
    ("a table with a single pedestal", [(1, "pedestal")]),
    ("a tree with three levels of foliage", [(3, "levels of foliage")]),
    ("one stool: three feet", [(3, "feet")]),  # the object's own count is not a part count
    ("an office chair on wheels", []),
    ("I want 400 legs", []),  # beyond MAX_COUNT: ignored, not clipped
    ("3", []),
])
def test_count_mentions(prompt, expected):
    assert count_mentions(prompt) == expected


def test_mentions_are_capped():
    prompt = "a thing with " + " and ".join(f"{n} legs" for n in range(1, 12))
    assert len(count_mentions(prompt)) == MAX_MENTIONS


class _Encoder:
    """Embeds a phrase as a fixed function of its text (the real one is MiniLM)."""

    def encode(self, texts):
        return torch.stack([torch.full((4,), float(len(t))) for t in texts])


def test_count_tokens_follow_the_token_states():
    tokens, mask = torch.randn(2, 3, 4), torch.tensor([[True, True, True], [True, True, False]])
    out, out_mask = with_count_tokens(_Encoder(), ["a chair with three legs", "a stool"], tokens, mask)
    assert out.shape == (2, 4, 4 + COUNT_DIM) and out_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert torch.equal(out[:, :3, :4], tokens) and not out[:, :3, 4:].any()
    assert torch.equal(out[0, 3, :4], torch.full((4,), 4.0)) and out[0, 3, 4 + 3] == 1 and out[0, 3, 4:].sum() == 1


def test_the_denoiser_reads_the_count():
    torch.manual_seed(0)
    net = PartDenoiser(DenoiserConfig(token_dim=6, text_dim=4, width=16, depth=1, heads=2, count_dim=COUNT_DIM))
    tokens, mask = with_count_tokens(_Encoder(), ["a chair with three legs"], torch.randn(1, 2, 4), torch.ones(1, 2, dtype=torch.bool))
    x, t, pooled = torch.randn(1, 5, 6), torch.tensor([500]), torch.randn(1, 4)
    three = net(x, t, TextCondition(pooled, tokens.clone(), mask))
    assert torch.equal(three, net(x, t, TextCondition(pooled, tokens.clone(), mask)))
    tokens[0, -1, 4 + 3], tokens[0, -1, 4 + 4] = 0.0, 1.0  # the same words, four instead of three
    assert not torch.allclose(three, net(x, t, TextCondition(pooled, tokens, mask)))
