"""Timestep schedules and weightings w(t) for score distillation.

A schedule chooses the diffusion timesteps of each optimisation step:
`schedule.timesteps(step, total_steps, batch) -> LongTensor (batch,)`, indices into the
denoiser's `alphas_cumprod` (T,), drawn on the CPU from the schedule's own seeded
torch.Generator so a run repeats (callers move them to their device). Every schedule is built
the same way, `SCHEDULES[name](alphas_cumprod, config)`. A fraction f of the range maps to the
index round(f (T - 1)), as in sds.py.

A weighting is `w(alphas_cumprod, t) -> (B,)`, the factor on (eps_hat - eps) in the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch


def _index(fraction: float, num_timesteps: int) -> int:
    return int(round(fraction * (num_timesteps - 1)))


def _check_fractions(low: float, high: float) -> None:
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= t_min < t_max <= 1, got {low}, {high}")


def _check_steps(total_steps: int, batch: int) -> None:
    if total_steps < 1 or batch < 1:
        raise ValueError(f"need total_steps >= 1 and batch >= 1, got {total_steps}, {batch}")


# 1. Uniform timesteps (DreamFusion)

@dataclass
class RandomScheduleConfig:
    """Attributes:
        t_min, t_max: The range as fractions of T. DreamFusion (Poole et al. 2022) draws
            t ~ U(0.02, 0.98), away from the very low and very high noise levels.
        seed: Seed of the schedule's generator when none is given.
    """

    t_min: float = 0.02
    t_max: float = 0.98
    seed: int = 0


class RandomSchedule:
    """t ~ U{round(t_min (T-1)), ..., round(t_max (T-1))}, independently per sample, whatever
    the step (DreamFusion's SDS; for T = 1000 the indices 20 .. 979).

    Args:
        alphas_cumprod: The denoiser's schedule (T,); only its length is used.
        config: See RandomScheduleConfig.
        generator: Draws the timesteps; a CPU generator seeded with config.seed if None.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, config: Optional[RandomScheduleConfig] = None,
                 generator: Optional[torch.Generator] = None):
        self.config = config or RandomScheduleConfig()
        _check_fractions(self.config.t_min, self.config.t_max)
        self.num_timesteps = len(alphas_cumprod)
        self.generator = generator or torch.Generator().manual_seed(self.config.seed)

    def timesteps(self, step: int, total_steps: int, batch: int) -> torch.Tensor:
        """Returns (batch,) int64 timesteps; `step` and `total_steps` are not used."""
        _check_steps(total_steps, batch)
        low = _index(self.config.t_min, self.num_timesteps)
        high = _index(self.config.t_max, self.num_timesteps)
        return torch.randint(low, high + 1, (batch,), generator=self.generator)


# 2. Uniform timesteps under a falling upper bound (threestudio's max_step_percent)

@dataclass
class AnnealedScheduleConfig:
    """threestudio's `max_step_percent: [start_step, start_value, end_value, end_step]`, a
    linear ramp of the upper bound, with the steps written as fractions of the run.

    Attributes:
        t_min: Lower bound, fraction of T (DreamFusion's 0.02).
        t_max_start, t_max_end: The upper bound before and after the ramp. 0.98 -> 0.5 is
            ProlificDreamer's annealing (Wang et al. 2023: at once after 5k of 25k iterations;
            threestudio's anneal_start_step 5000); 0.5 is also the bound of Magic3D's fine
            stage (threestudio's magic3d-refine: [0.02, 0.5]).
        ramp_start, ramp_end: Where the ramp begins and ends, as fractions of total_steps.
            Ours: a linear ramp over the first half. ramp_start == ramp_end makes it a step
            (ProlificDreamer's: 0.2, 0.2).
        seed: Seed of the schedule's generator when none is given.
    """

    t_min: float = 0.02
    t_max_start: float = 0.98
    t_max_end: float = 0.5
    ramp_start: float = 0.0
    ramp_end: float = 0.5
    seed: int = 0


class AnnealedSchedule:
    """t ~ U{round(t_min (T-1)), ..., round(t_max(step) (T-1))} with
    t_max(step) = t_max_start + (t_max_end - t_max_start) clamp((p - ramp_start) / (ramp_end -
    ramp_start), 0, 1), p = step / total_steps: large noise first for the coarse shape, small
    noise later for detail.

    Args:
        alphas_cumprod: The denoiser's schedule (T,); only its length is used.
        config: See AnnealedScheduleConfig.
        generator: Draws the timesteps; a CPU generator seeded with config.seed if None.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, config: Optional[AnnealedScheduleConfig] = None,
                 generator: Optional[torch.Generator] = None):
        self.config = cfg = config or AnnealedScheduleConfig()
        _check_fractions(cfg.t_min, cfg.t_max_start)
        _check_fractions(cfg.t_min, cfg.t_max_end)
        if not 0.0 <= cfg.ramp_start <= cfg.ramp_end <= 1.0:
            raise ValueError(f"need 0 <= ramp_start <= ramp_end <= 1, got {cfg.ramp_start}, {cfg.ramp_end}")
        self.num_timesteps = len(alphas_cumprod)
        self.generator = generator or torch.Generator().manual_seed(cfg.seed)

    def t_max(self, step: int, total_steps: int) -> float:
        """The upper bound at `step`, as a fraction of T."""
        cfg = self.config
        progress = step / total_steps
        if cfg.ramp_end > cfg.ramp_start:
            ramp = min(max((progress - cfg.ramp_start) / (cfg.ramp_end - cfg.ramp_start), 0.0), 1.0)
        else:
            ramp = 1.0 if progress >= cfg.ramp_end else 0.0
        return cfg.t_max_start + (cfg.t_max_end - cfg.t_max_start) * ramp

    def timesteps(self, step: int, total_steps: int, batch: int) -> torch.Tensor:
        """Returns (batch,) int64 timesteps under the bound of `step`."""
        _check_steps(total_steps, batch)
        low = _index(self.config.t_min, self.num_timesteps)
        high = _index(self.t_max(step, total_steps), self.num_timesteps)
        return torch.randint(low, high + 1, (batch,), generator=self.generator)


# 3. Time-prioritised, non-increasing timesteps (DreamTime)

@dataclass
class DreamTimeConfig:
    """DreamTime (Huang et al. 2023, arXiv:2306.12422). Prior constants are fractions of T
    (the paper's are for T = 1000).

    Attributes:
        prior: "gaussian", W_p(t) = exp(-(t - m)^2 / (2 s^2)), the paper's (m = 500, s = 125);
            or "piecewise": exp(-(t - m1)^2 / (2 s1^2)) above m1, 1 on [m2, m1], exp(-(t -
            m2)^2 / (2 s2^2)) below m2, the flat-topped prior of the threestudio-based
            `time_prior = [m1, m2, s1, s2] = [800, 500, 300, 100]` (DreamCraft3D) and other
            reimplementations (DreamCraft3D's code writes (t - m1^2), not (t - m1)^2; we
            follow the formula).
        m, s: The Gaussian's centre and width (0.5, 0.125 of T).
        m1, m2, s1, s2: The piecewise prior's (0.8, 0.5, 0.3, 0.1 of T).
        diffusion_weight: Multiply by W_d(t) = sqrt((1 - a_t) / a_t), the paper's diffusion
            training weight term. The threestudio-based code uses the prior alone (False).
        jitter: Add a uniform integer offset in [-jitter, jitter] to each sample (0: off, the
            paper's deterministic schedule).
        seed: Seed of the jitter generator when none is given.
    """

    prior: str = "gaussian"
    m: float = 0.5
    s: float = 0.125
    m1: float = 0.8
    m2: float = 0.5
    s1: float = 0.3
    s2: float = 0.1
    diffusion_weight: bool = True
    jitter: int = 0
    seed: int = 0


def dreamtime_weights(alphas_cumprod: torch.Tensor, config: Optional[DreamTimeConfig] = None) -> torch.Tensor:
    """DreamTime's normalised weight over timesteps, W(t) = W_d(t) W_p(t) / Z.

    Args:
        alphas_cumprod: a_t of the denoiser (T,), index t = 0 .. T-1.
        config: The prior and whether W_d is used; see DreamTimeConfig.

    Returns:
        (T,) float64 weights summing to 1.
    """
    cfg = config or DreamTimeConfig()
    a = alphas_cumprod.detach().double().cpu()
    T = len(a)
    t = torch.arange(T, dtype=torch.float64)
    if cfg.prior == "gaussian":
        w_p = torch.exp(-(t - cfg.m * T) ** 2 / (2 * (cfg.s * T) ** 2))
    elif cfg.prior == "piecewise":
        m1, m2, s1, s2 = cfg.m1 * T, cfg.m2 * T, cfg.s1 * T, cfg.s2 * T
        w_p = torch.ones_like(t)
        w_p = torch.where(t > m1, torch.exp(-(t - m1) ** 2 / (2 * s1 ** 2)), w_p)
        w_p = torch.where(t < m2, torch.exp(-(t - m2) ** 2 / (2 * s2 ** 2)), w_p)
    else:
        raise ValueError(f"prior must be 'gaussian' or 'piecewise', got {cfg.prior!r}")
    if cfg.diffusion_weight and not bool((a > 0).all()):
        raise ValueError("W_d = sqrt((1 - a_t) / a_t) needs a_t > 0 (a zero-terminal-SNR schedule: "
                         "set diffusion_weight=False)")
    w = w_p * torch.sqrt((1 - a) / a) if cfg.diffusion_weight else w_p
    return w / w.sum()


def dreamtime_table(weights: torch.Tensor, total_steps: int) -> torch.Tensor:
    """DreamTime's timestep for every step, t(i) = argmin_t | sum_{s=t}^{T-1} W(s) - i / N |.

    The mass at or above t(i) is the share of the run already spent, so t(i) is non-increasing
    and sweeps high noise first (t(0) = T - 1), then spends steps where W is large.

    Args:
        weights: W (T,) summing to 1 (`dreamtime_weights`).
        total_steps: N, the run's length.

    Returns:
        (N,) int64 timesteps, t(0) .. t(N-1); ties go to the smaller t.
    """
    tail = weights.flip(0).cumsum(0).flip(0)  # (T,) sum_{s>=t} W(s), falling from 1
    targets = torch.arange(total_steps, dtype=tail.dtype) / total_steps  # (N,) i / N
    return (tail[None, :] - targets[:, None]).abs().argmin(dim=1)


class DreamTimeSchedule:
    """Time-prioritised SDS (TP-SDS): every sample of step i gets t(i) of `dreamtime_table`.

    Args:
        alphas_cumprod: The denoiser's schedule (T,).
        config: See DreamTimeConfig.
        generator: Draws the jitter; a CPU generator seeded with config.seed if None.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, config: Optional[DreamTimeConfig] = None,
                 generator: Optional[torch.Generator] = None):
        self.config = config or DreamTimeConfig()
        if self.config.jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {self.config.jitter}")
        self.weights = dreamtime_weights(alphas_cumprod, self.config)
        self.generator = generator or torch.Generator().manual_seed(self.config.seed)
        self._table: Optional[torch.Tensor] = None  # (N,) for the last total_steps asked

    def table(self, total_steps: int) -> torch.Tensor:
        """(N,) timesteps of a run of `total_steps`, computed once per length."""
        if self._table is None or len(self._table) != total_steps:
            self._table = dreamtime_table(self.weights, total_steps)
        return self._table

    def timesteps(self, step: int, total_steps: int, batch: int) -> torch.Tensor:
        """Returns (batch,) int64 timesteps t(step) (+ jitter); steps past the end keep t(N-1)."""
        _check_steps(total_steps, batch)
        t = self.table(total_steps)[min(max(step, 0), total_steps - 1)].repeat(batch)
        if self.config.jitter:
            j = self.config.jitter
            t = t + torch.randint(-j, j + 1, (batch,), generator=self.generator)
        return t.clamp(0, len(self.weights) - 1)


SCHEDULES: dict[str, type] = {
    "random": RandomSchedule,
    "annealed": AnnealedSchedule,
    "dreamtime": DreamTimeSchedule,
}


# 4. Weightings w(t)

def sds_weight(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """DreamFusion's w(t) = sigma_t^2 = 1 - a_t. Returns (B,) for timesteps t (B,)."""
    return 1 - alphas_cumprod[t]


def uniform_weight(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """w(t) = 1. Returns (B,) ones."""
    return torch.ones_like(alphas_cumprod[t])


WEIGHTINGS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sds": sds_weight,
    "uniform": uniform_weight,
}
