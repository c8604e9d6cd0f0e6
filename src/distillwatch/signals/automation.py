"""Automation signals: how machine-like and pipeline-like the traffic is.

Automation alone is not abuse (batch jobs, eval harnesses and agents are
automated); it is the other half of the distillation shape, combined with
harvest evidence in scoring.
"""

from __future__ import annotations

import numpy as np

from distillwatch.signals.base import RampSignal, ShareSignal, Signal, clip, ramp
from distillwatch.signals.state import StateView


class VolumeRate(Signal):
    """Busiest day's request count (event-time UTC days).

    Catches: bulk harvesters on one or a few accounts. Misses: hydra
    networks that spread thin (tens of requests per account per day): that is
    what campaign linking is for. Enterprise batch jobs are high too.
    """

    name = "volume_rate"
    group = "automation"
    min_requests = 50
    unit = " requests/day"

    def measure(self, v: StateView) -> np.ndarray:
        return v["max_day_count"]

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        return ramp(np.log10(np.maximum(m, 1.0)), 2.3, 3.7)

    def detail(self, value: float) -> str:
        return f"up to {value:,.0f} requests in one day"


class AroundTheClock(Signal):
    """Number of UTC hours of the day carrying traffic (of 24), over several days.

    Catches: scripts that run 24x7. Misses: attackers that follow a
    diurnal pattern or spread over accounts in one time zone. Batch jobs and
    global resellers also run around the clock.
    """

    name = "around_the_clock"
    group = "automation"
    min_requests = 60

    def measure(self, v: StateView) -> np.ndarray:
        hours = v["hours"]
        n = np.maximum(v["n"], 1.0)[:, None]
        # np.sum of the Boolean matrix without its Python-level wrappers
        return np.add.reduce(hours / n >= 0.01, axis=1).astype(np.float64)

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        multi_day = ramp(v["active_days"], 1, 3)
        return ramp(m, 15, 22) * multi_day

    def detail(self, value: float) -> str:
        return f"active in {value:.0f} of 24 hours of the day"


class TimingRegularity(RampSignal):
    """Spread (std) of log inter-arrival gaps; low spread means scripted pacing.

    Catches: fixed-interval and narrowly jittered senders. Misses: randomised
    timing with heavy-tailed delays, and accounts with few requests.
    Human traffic is bursty (std of log gaps typically above 2).
    """

    name = "timing_regularity"
    group = "automation"
    min_requests = 30
    unit = " (std of log gap)"

    ramp_lo = 0.6
    ramp_hi = 1.6
    falling = True

    def measure(self, v: StateView) -> np.ndarray:
        k = np.maximum(v["gap_n"], 1.0)
        mean = v["gap_log_sum"] / k
        var = np.maximum(v["gap_log_sq"] / k - mean * mean, 0.0)
        return np.sqrt(var)

    def detail(self, value: float) -> str:
        return f"inter-arrival spread {value:.2f} (log-seconds std; humans are usually > 2)"


class SingleTurnShare(ShareSignal):
    """Share of requests that are single-turn (no prior assistant turn).

    Catches: data-generation pipelines that send isolated tasks. Misses:
    attackers that fake conversations. Batch jobs are single-turn too; real
    chat and agent users are mostly multi-turn, which keeps them low here.
    """

    name = "single_turn_share"
    group = "automation"
    unit = " of requests"

    share_of = "single_turn"
    ramp_lo = 0.6
    ramp_hi = 0.95

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests are single-turn"


class TemplateReuse(RampSignal):
    """Near-duplicate rate: 1 - distinct near-duplicate clusters / requests.

    SEAT-style: many prompts from one fill-in-the-slots template (LSH band of
    the slot-normalised MinHash). Catches: templated task streams. Misses:
    paraphrased prompts. Enterprise classification jobs are templated too.
    """

    name = "template_reuse"
    group = "automation"
    min_requests = 30
    unit = " near-duplicate rate"
    sketches = ("near",)

    ramp_lo = 0.5
    ramp_hi = 0.95

    def measure(self, v: StateView) -> np.ndarray:
        n = np.maximum(v["n"], 1.0)
        return clip(1.0 - v.distinct("near") / n, 0.0, 1.0)

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests are near-duplicates of earlier ones (same template)"


class ParamUniformity(RampSignal):
    """Distinct parameter signatures (max_tokens, temperature, n, logprobs, ...).

    Catches: one script, one configuration, thousands of calls. Misses:
    attackers that randomise parameters. Applications also use fixed
    parameters; a weak signal by design.
    """

    name = "param_uniformity"
    group = "automation"
    min_requests = 50
    unit = " distinct parameter signatures"
    sketches = ("params",)

    ramp_lo = 1.5
    ramp_hi = 4.0
    falling = True

    def measure(self, v: StateView) -> np.ndarray:
        return v.distinct("params")

    def detail(self, value: float) -> str:
        return f"{value:.0f} distinct parameter settings over all requests"
