"""SDS timestep schedules, weightings and Perp-Neg against numbers worked out from the papers'
formulas (by hand, or by small numpy loops written apart from the code under test)."""

import math

import numpy as np
import pytest
import torch

from backend.distill.guidance.base import View
from backend.distill.guidance.perp_neg import (ViewPromptConfig, combine_perp_neg, perp_neg_prompts,
                                               perpendicular_component, view_direction, view_prompt)
from backend.distill.guidance.schedules import (SCHEDULES, WEIGHTINGS, AnnealedSchedule, AnnealedScheduleConfig,
                                                DreamTimeConfig, DreamTimeSchedule, RandomSchedule,
                                                RandomScheduleConfig, dreamtime_table, dreamtime_weights)

torch.set_num_threads(1)

# A made-up a_t for T = 10, falling like a real one.
TINY_ALPHAS = torch.tensor([0.98, 0.93, 0.85, 0.75, 0.62, 0.48, 0.35, 0.22, 0.12, 0.05], dtype=torch.float64)


def sd_alphas_cumprod() -> torch.Tensor:
    """Stable Diffusion's schedule: 'scaled_linear' betas 0.00085 .. 0.012, T = 1000."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0)


def view(azimuth: float, elevation: float = 0.0) -> View:
    return View(elevation=elevation, azimuth=azimuth, distance=2.0, fov_y=40.0)


def reference_dreamtime(alphas, prior, N):
    """DreamTime written out in loops: W = W_d W_p / Z, t(i) = argmin_t |sum_{s>=t} W(s) - i/N|."""
    T = len(alphas)
    w = [prior(t) * math.sqrt((1 - alphas[t]) / alphas[t]) for t in range(T)]
    w = np.array(w) / sum(w)
    tails = [w[t:].sum() for t in range(T)]
    return [min(range(T), key=lambda t: abs(tails[t] - i / N)) for i in range(N)]


# 1. Random and annealed schedules

def test_random_schedule_stays_in_dreamfusion_range_and_repeats_per_seed():
    alphas = sd_alphas_cumprod()
    t = RandomSchedule(alphas).timesteps(0, 100, 20000)
    assert t.dtype == torch.int64 and t.shape == (20000,)
    # round(0.02 * 999) = 20, round(0.98 * 999) = 979, both reached in 20000 draws.
    assert int(t.min()) == 20 and int(t.max()) == 979
    again = RandomSchedule(alphas).timesteps(0, 100, 20000)
    other = RandomSchedule(alphas, RandomScheduleConfig(seed=1)).timesteps(0, 100, 20000)
    assert torch.equal(t, again) and not torch.equal(t, other)


def test_random_schedule_rejects_an_empty_range():
    with pytest.raises(ValueError):
        RandomSchedule(TINY_ALPHAS, RandomScheduleConfig(t_min=0.5, t_max=0.5))


def test_annealed_upper_bound_falls_linearly_then_holds():
    schedule = AnnealedSchedule(sd_alphas_cumprod())
    # 0.98 + (0.5 - 0.98) * clamp(p / 0.5, 0, 1)
    assert schedule.t_max(0, 100) == pytest.approx(0.98)
    assert schedule.t_max(25, 100) == pytest.approx(0.74)
    assert schedule.t_max(50, 100) == pytest.approx(0.5)
    assert schedule.t_max(99, 100) == pytest.approx(0.5)
    bounds = [schedule.t_max(step, 100) for step in range(100)]
    assert all(b >= c for b, c in zip(bounds, bounds[1:]))
    early, late = schedule.timesteps(0, 100, 4000), schedule.timesteps(60, 100, 4000)
    assert int(late.max()) <= 500 < 900 < int(early.max())  # round(0.5 * 999) = 500
    assert int(late.min()) >= 20


def test_annealed_schedule_with_equal_ramp_ends_is_a_step():
    schedule = AnnealedSchedule(sd_alphas_cumprod(), AnnealedScheduleConfig(ramp_start=0.2, ramp_end=0.2))
    assert schedule.t_max(19, 100) == pytest.approx(0.98)
    assert schedule.t_max(20, 100) == pytest.approx(0.5)


# 2. DreamTime

def test_dreamtime_matches_hand_argmin_for_tiny_T():
    # m = 0.5 T = 5, s = 0.125 T = 1.25 (the paper's 500, 125 scaled to T = 10), N = 8.
    prior = lambda t: math.exp(-(t - 5.0) ** 2 / (2 * 1.25 ** 2))  # noqa: E731
    expected = reference_dreamtime(TINY_ALPHAS.tolist(), prior, 8)
    # Worked out: tails sum_{s>=t} W = [1, 1, .9995, .9928, .9467, .7836, .4851, .2012, .0511,
    # .0075]; i/N = 1/8 sits between .0511 (t = 8, off by .0739) and .2012 (t = 7, .0762).
    assert expected == [9, 8, 7, 6, 6, 6, 5, 4]
    table = DreamTimeSchedule(TINY_ALPHAS).table(8)
    assert table.tolist() == expected
    weights = dreamtime_weights(TINY_ALPHAS)
    assert float(weights.sum()) == pytest.approx(1.0)
    assert float(weights[5]) == pytest.approx(0.2986, abs=1e-4)


def test_dreamtime_prior_alone_and_piecewise_prior_for_tiny_T():
    # Without W_d the same Gaussian gives another table.
    gaussian = DreamTimeSchedule(TINY_ALPHAS, DreamTimeConfig(diffusion_weight=False)).table(8)
    assert gaussian.tolist() == [9, 7, 6, 6, 5, 5, 5, 4]
    # Piecewise [m1, m2, s1, s2] = [8, 5, 3, 1] (800, 500, 300, 100 scaled), prior alone:
    # W_p = exp(-(t-5)^2 / 2) below 5, 1 on [5, 8], exp(-(t-8)^2 / 18) above 8.
    piecewise = DreamTimeSchedule(TINY_ALPHAS, DreamTimeConfig(prior="piecewise", diffusion_weight=False)).table(8)
    assert piecewise.tolist() == [9, 9, 9, 8, 7, 6, 6, 5]


def test_dreamtime_on_stable_diffusion_schedule_is_non_increasing_from_high_to_low():
    alphas = sd_alphas_cumprod()
    for config in (DreamTimeConfig(), DreamTimeConfig(prior="piecewise", diffusion_weight=False)):
        table = DreamTimeSchedule(alphas, config).table(1000)
        assert (table[1:] <= table[:-1]).all()
        assert int(table[0]) == 999  # i = 0 asks for no mass above t
        assert int(table[-1]) < 300 and int(table[500]) > 300


def test_dreamtime_timesteps_fill_the_batch_and_jitter_stays_close():
    alphas = sd_alphas_cumprod()
    plain = DreamTimeSchedule(alphas)
    table = plain.table(200)
    assert plain.timesteps(37, 200, 4).tolist() == [int(table[37])] * 4
    assert plain.timesteps(500, 200, 1).tolist() == [int(table[-1])]  # past the end: t(N-1)
    jittered = DreamTimeSchedule(alphas, DreamTimeConfig(jitter=5))
    t = jittered.timesteps(37, 200, 256)
    assert (t - table[37]).abs().max() <= 5 and len(set(t.tolist())) > 1
    assert torch.equal(t, DreamTimeSchedule(alphas, DreamTimeConfig(jitter=5)).timesteps(37, 200, 256))


def test_dreamtime_table_of_uniform_weights_is_a_linear_sweep():
    # W = 1/T: the tail at t is (T - t) / T, so t(i) = T - i T / N exactly, clipped to T - 1.
    table = dreamtime_table(torch.full((10,), 0.1, dtype=torch.float64), 5)
    assert table.tolist() == [9, 8, 6, 4, 2]


def test_registry_builds_every_schedule_from_alphas_cumprod():
    assert set(SCHEDULES) == {"random", "annealed", "dreamtime"}
    for cls in SCHEDULES.values():
        t = cls(TINY_ALPHAS).timesteps(3, 10, 4)
        assert t.shape == (4,) and t.dtype == torch.int64
        assert int(t.min()) >= 0 and int(t.max()) <= 9


def test_weightings():
    alphas = torch.tensor([0.9, 0.5, 0.1])
    t = torch.tensor([0, 2, 1])
    assert torch.allclose(WEIGHTINGS["sds"](alphas, t), torch.tensor([0.1, 0.9, 0.5]))
    assert torch.equal(WEIGHTINGS["uniform"](alphas, t), torch.ones(3))


# 3. Perp-Neg

def test_perpendicular_component_by_hand_per_sample_and_for_zero_b():
    a = torch.tensor([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0]]).view(3, 2, 1, 1)
    b = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]).view(3, 2, 1, 1)
    perp = perpendicular_component(a, b).view(3, 2)
    assert torch.allclose(perp, torch.tensor([[0.0, 4.0], [3.0, 0.0], [3.0, 4.0]]))


def test_perpendicular_component_is_orthogonal_and_completes_a():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    perp = perpendicular_component(a, b)
    a_np, b_np = a.flatten(1).numpy(), b.flatten(1).numpy()
    for k in range(3):
        assert abs(float((perp[k] * b[k]).sum())) < 1e-4
        parallel = (a_np[k] @ b_np[k]) / (b_np[k] @ b_np[k]) * b_np[k]
        assert np.allclose((a[k] - perp[k]).flatten().numpy(), parallel, atol=1e-5)


def test_combine_without_negatives_is_classifier_free_guidance():
    g = torch.Generator().manual_seed(1)
    eps_u, eps_p, eps_n = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(3))
    cfg = eps_u + 7.5 * (eps_p - eps_u)
    assert torch.allclose(combine_perp_neg(eps_u, eps_p, [], [], 7.5), cfg)
    assert torch.allclose(combine_perp_neg(eps_u, eps_p, [eps_n], [0.0], 7.5), cfg)


def test_combine_removes_only_the_perpendicular_part_of_a_negative():
    eps_u = torch.tensor([0.5, -1.0]).view(1, 2, 1, 1).repeat(2, 1, 1, 1)
    eps_pos = eps_u + torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)  # d_pos = [1, 0]
    eps_neg = eps_u + torch.tensor([2.0, 3.0]).view(1, 2, 1, 1)  # d_neg = [2, 3], perp = [0, 3]
    weights = torch.tensor([0.5, 0.0])  # per view: the second view ignores the negative
    eps = combine_perp_neg(eps_u, eps_pos, [eps_neg], [weights], 10.0).view(2, 2)
    # 10 ([1, 0] - 0.5 [0, 3]) = [10, -15] on eps_u; a plain negative prompt would also have
    # taken 0.5 * 2 * 10 = 10 off the positive direction.
    assert torch.allclose(eps[0], torch.tensor([0.5 + 10.0, -1.0 - 15.0]))
    assert torch.allclose(eps[1], torch.tensor([0.5 + 10.0, -1.0]))
    # A negative along d_pos changes nothing; two negatives add.
    along = eps_u + 3 * (eps_pos - eps_u)
    assert torch.allclose(combine_perp_neg(eps_u, eps_pos, [along], [2.0], 10.0), eps_u + 10 * (eps_pos - eps_u))
    both = combine_perp_neg(eps_u, eps_pos, [eps_neg, eps_neg], [0.25, 0.25], 10.0).view(2, 2)
    assert torch.allclose(both[0], eps[0])


def test_view_prompt_suffixes():
    expected = {0.0: "front", 30.0: "front", 45.0: "side", 90.0: "side", -90.0: "side", 135.0: "side",
                136.0: "back", 180.0: "back", -180.0: "back", -150.0: "back", 330.0: "front"}
    for azimuth, direction in expected.items():
        assert view_direction(view(azimuth)) == direction, azimuth
    assert view_prompt("a corgi", view(0.0)) == "a corgi, front view"
    assert view_prompt("a corgi", view(90.0)) == "a corgi, side view"
    assert view_prompt("a corgi", view(180.0)) == "a corgi, back view"
    assert view_prompt("a corgi", view(-90.0)) == "a corgi, side view"
    assert view_prompt("a corgi", view(0.0, elevation=80.0)) == "a corgi, overhead view"
    assert view_prompt("a corgi", view(0.0, elevation=60.0)) == "a corgi, front view"
    assert view_direction(view(40.0), ViewPromptConfig(front_threshold=30.0)) == "side"


def test_perp_neg_weights_at_key_azimuths():
    f, s, b, o = "a corgi, front view", "a corgi, side view", "a corgi, back view", "a corgi, overhead view"

    def check(azimuth, positive, negatives, elevation=0.0):
        got = perp_neg_prompts("a corgi", view(azimuth, elevation))
        assert [p for p, _ in got.positive] == [p for p, _ in positive]
        assert [w for _, w in got.positive] == pytest.approx([w for _, w in positive])
        assert [p for p, _ in got.negatives] == [p for p, _ in negatives]
        assert [w for _, w in got.negatives] == pytest.approx([w for _, w in negatives], abs=1e-12)

    # Front, r = 1: the front negative is off (r > 0.8), the side one is 2 exp(0) = 2.
    check(0.0, [(f, 1.0), (s, 0.0)], [(f, 0.0), (s, 2.0)])
    # r = 0.5: front 2 exp(-0.5 * 2) = 2/e, side 2 exp(-0.5 * 10) = 2 e^-5.
    check(45.0, [(f, 0.5), (s, 0.5)], [(f, 0.7357588823428847), (s, 0.013475893998170934)])
    check(-45.0, [(f, 0.5), (s, 0.5)], [(f, 0.7357588823428847), (s, 0.013475893998170934)])
    # r = 1/3, off the symmetric point: front 2 exp(-2/3), side 2 exp(-20/3).
    check(60.0, [(f, 1 / 3), (s, 2 / 3)], [(f, 1.026834238065184), (s, 0.0025452676026796158)])
    # Side, r = 1 of the side-back half: side off, front the full 2.
    check(90.0, [(s, 1.0), (b, 0.0)], [(s, 0.0), (f, 2.0)])
    # r = 0.5 between side and back: side 2 exp(-0.5 * 10) / 2 = e^-5.
    check(-135.0, [(s, 0.5), (b, 0.5)], [(s, 0.006737946999085467), (f, 2.0)])
    # Back, r = 0: side 2 exp(0) / 2 = 1, front 2.
    check(180.0, [(s, 0.0), (b, 1.0)], [(s, 1.0), (f, 2.0)])
    # Overhead: the overhead prompt alone, negatives off.
    check(45.0, [(o, 1.0)], [(f, 0.0), (s, 0.0)], elevation=80.0)
