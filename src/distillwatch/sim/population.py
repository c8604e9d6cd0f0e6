"""Populations: the principals (accounts or reseller end users) of one archetype.

A :class:`Population` holds per-principal arrays (ids, time zone, mean daily
rate, home IP, user agent, a stable ``slot``) plus the account side-table rows
it owns and its label. Principals of a reseller are its end users: they share
the reseller's ``account_id`` and carry an ``end_user_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distillwatch.sim import infra
from distillwatch.sim.profiles import Profile

DAY_MS = 86_400_000


def hex_ids(rng: np.random.Generator, n: int, prefix: str) -> np.ndarray:
    """Opaque random identifiers (ids never reveal archetype or label)."""
    return np.array(
        [f"{prefix}{x:012x}" for x in rng.integers(0, 1 << 48, n).tolist()], dtype=object
    )


@dataclass
class Population:
    """Principals of one archetype in one scenario."""

    profile: Profile
    account_id: np.ndarray  # object[str] per principal
    end_user_id: np.ndarray | None  # object[str] per principal, or None
    tz: np.ndarray
    rate: np.ndarray
    ip_base: np.ndarray  # uint32
    ua: np.ndarray  # object[str]
    slot: np.ndarray  # int64
    start_day: np.ndarray  # first active day (aged accounts wake up later)
    shared_nets: np.ndarray | None
    accounts: list[dict[str, object]]  # account side-table rows owned by this population
    campaign_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.account_id)

    def counts(self, rng: np.random.Generator, day: int, weekday: int) -> np.ndarray:
        """Requests per principal on ``day`` (Poisson around the principal's rate)."""
        p = self.profile
        active = (rng.random(self.size) < p.p_active) & (day >= self.start_day)
        lam = self.rate * (p.weekend_factor if weekday >= 5 else 1.0)
        c = np.clip(
            rng.poisson(lam),
            int(p.rate[2] * min(1.0, float(np.min(self.rate)) / p.rate[2])),
            int(p.rate[3]),
        )
        return np.where(active, c, 0).astype(np.int64)


def make_population(
    rng: np.random.Generator,
    profile: Profile,
    n: int,
    start_ms: int,
    *,
    tier: str | list[str] = "pay_as_you_go",
    verified: float = 0.5,
    countries: np.ndarray | None = None,
    created_days_before: tuple[float, float] = (30.0, 700.0),
    created_burst: bool = False,
    payment_pool: int | None = None,
    email_domains: list[str] | None = None,
    shared_nets: np.ndarray | None = None,
    reseller_of: str | None = None,
    campaign_id: str | None = None,
    start_day: tuple[int, int] = (0, 0),
    reseller: bool = False,
) -> Population:
    """Create ``n`` principals of ``profile``.

    ``created_burst`` packs sign-ups into a few hour-long waves (hydra account
    farms); ``payment_pool`` makes principals share that many payment
    fingerprints; ``reseller_of`` turns principals into end users of that
    reseller account (no account rows of their own).
    """
    med, sig, lo, hi = profile.rate
    rate = np.clip(rng.lognormal(np.log(med), sig, n), lo, hi)
    if countries is None:
        countries = rng.choice(infra.BENIGN_COUNTRIES, n)
    tz = infra.tz_of(countries)
    if profile.ip_mode in ("corp", "datacenter") and shared_nets is None:
        octs = infra.CORP_OCTETS if profile.ip_mode == "corp" else infra.CLOUD_OCTETS
        shared_nets = infra.subnets(rng, max(1, n // 8), octs)
    ip_base = infra.base_ips(rng, profile.ip_mode, n, shared_nets)
    uas = infra.UA[profile.ua_kind]
    ua = np.array(uas, dtype=object)[rng.integers(0, len(uas), n)]
    slot = rng.integers(0, 1 << 30, n)
    sd = rng.integers(start_day[0], start_day[1] + 1, n)
    ids = hex_ids(rng, n, "org_")
    rows: list[dict[str, object]] = []
    if reseller_of is not None:
        acct = np.full(n, reseller_of, dtype=object)
        end_users = hex_ids(rng, n, "user_")
        return Population(
            profile,
            acct,
            end_users,
            tz,
            rate,
            ip_base,
            ua,
            slot,
            sd,
            shared_nets,
            rows,
            campaign_id,
        )
    if created_burst:
        waves = start_ms - rng.uniform(created_days_before[0], created_days_before[1], 4) * DAY_MS
        created = waves[rng.integers(0, 4, n)] + rng.uniform(0, 3_600_000, n)
    else:
        created = start_ms - rng.uniform(created_days_before[0], created_days_before[1], n) * DAY_MS
    if payment_pool:
        pay = hex_ids(rng, payment_pool, "pm_")[rng.integers(0, payment_pool, n)]
        pay = np.where(rng.random(n) < 0.5, pay, hex_ids(rng, n, "pm_"))
    else:
        pay = hex_ids(rng, n, "pm_")
    domains = email_domains or ["gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com"]
    dom = np.array(domains, dtype=object)[rng.integers(0, len(domains), n)]
    tiers = [tier] if isinstance(tier, str) else tier
    tier_arr = np.array(tiers, dtype=object)[rng.integers(0, len(tiers), n)]
    ver = rng.random(n) < verified
    for i in range(n):
        rows.append(
            {
                "account_id": ids[i],
                "created_at": int(created[i]),
                "tier": tier_arr[i],
                "verified": bool(ver[i]),
                "payment_fingerprint": pay[i],
                "email_domain": dom[i],
                "country": str(countries[i]),
                "reseller": reseller,
            }
        )
    return Population(
        profile, ids, None, tz, rate, ip_base, ua, slot, sd, shared_nets, rows, campaign_id
    )
