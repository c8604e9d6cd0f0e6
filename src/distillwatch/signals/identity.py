"""Identity signals: who is behind the traffic and how the account behaves over its life."""

from __future__ import annotations

import numpy as np

from distillwatch.ingest.schema import TIERS
from distillwatch.signals.base import Signal, clip, ramp
from distillwatch.signals.state import MS_PER_DAY, StateView

# Prior risk per tier (index = TIERS position); unknown tier -> 0.5.
TIER_PRIOR = {
    "free": 0.7,
    "pay_as_you_go": 0.5,
    "startup_program": 0.8,
    "education": 0.8,
    "research_program": 0.35,
    "enterprise": 0.1,
}
_PRIOR = np.array([TIER_PRIOR[t] for t in TIERS])
# an identity-verified account's prior is this share of its tier's: a verified
# identity costs an attacker more than a sign-up
VERIFIED_FACTOR = 0.4


class TierTrust(Signal):
    """Prior from the account table: tier and identity verification.

    Catches: the tiers abused in the public cases (startup and education
    programmes, free sign-ups) without verification. Misses: abuse through
    verified or enterprise accounts (stolen or resold); with no accounts table
    every account gets the neutral 0.5.
    """

    name = "tier_trust"
    group = "identity"
    min_requests = 1

    def measure(self, v: StateView) -> np.ndarray:
        tier = v["tier"]
        known = ~np.isnan(tier)
        prior = np.full(len(tier), 0.5)
        if np.logical_or.reduce(known, axis=None):  # (else the assignment selects nothing)
            prior[known] = _PRIOR[tier[known].astype(np.int64)]
        verified = v["verified"]
        prior = np.where(verified == 1.0, prior * VERIFIED_FACTOR, prior)
        return prior

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        return m

    def detail(self, value: float) -> str:
        return f"tier/verification prior {value:.2f} (0 trusted, 1 untrusted)"


class AccountAgeRamp(Signal):
    """Fast ramp: heavy use within days of sign-up, or a dormant account waking up.

    Catches: freshly created hydra accounts going straight to work, and aged
    accounts that stayed idle for a month or more *of the observed log* and
    then carry traffic. Misses: accounts with no ``created_at``; patient
    attackers who warm accounts up slowly; dormancy before the log starts.
    """

    name = "account_age_ramp"
    group = "identity"
    min_requests = 10
    unit = " days from sign-up to first request"

    def measure(self, v: StateView) -> np.ndarray:
        created = v["created_ms"]
        lag = (v["first_ts"] - created) / MS_PER_DAY
        return np.where(np.isnan(created), np.nan, lag)

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        known = ~np.isnan(v["created_ms"])
        if not np.logical_or.reduce(known, axis=None):
            # no sign-up date (always so without an accounts table, as in the
            # gateway): the np.where below would give 0 everywhere
            return np.zeros(len(known))
        young = 1.0 - ramp(m, 2.0, 14.0)
        # dormancy only counts for idle time the log actually covers: an old
        # account whose first request comes when the log starts is not "woken up"
        observed_from = np.fmax(v["created_ms"], v["log_start_ms"])
        idle_seen = (v["first_ts"] - observed_from) / MS_PER_DAY
        dormant = np.where(np.isnan(v["log_start_ms"]), 0.0, ramp(idle_seen, 30.0, 90.0))
        busy = ramp(v["n"] / np.maximum(v["active_days"], 1.0), 5.0, 30.0)
        return np.where(known, np.maximum(young, dormant) * busy, 0.0)

    def detail(self, value: float) -> str:
        return f"first request {value:.1f} days after sign-up"


class InfraRotation(Signal):
    """Distinct network prefixes (/24, /48) per request: rotating proxies.

    Catches: residential-proxy and IP-rotation services that give nearly
    every request a new network. Misses: attackers on a few static proxies
    (linking catches shared ones). Mobile users change networks, but not per
    request.
    """

    name = "infra_rotation"
    group = "identity"
    min_requests = 20
    unit = " distinct prefixes per request"
    sketches = ("prefixes",)

    def measure(self, v: StateView) -> np.ndarray:
        n = np.maximum(v["n"], 1.0)
        return clip(v.distinct("prefixes") / n, 0.0, 1.0)

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        return ramp(m, 0.25, 0.7) * ramp(v.distinct("prefixes"), 4.0, 10.0)

    def detail(self, value: float) -> str:
        return f"{value:.0%} of requests come from a network prefix not seen before"
