"""Signals -> risk -> graduated action, with the reasons an analyst checks.

Each signal group (harvest, automation, identity) is a noisy-OR of its
weighted signal scores. Risk is a logistic function of the three groups, the
harvest x automation interaction (distillation needs both: legitimate heavy
users are automated but do not harvest, curious humans harvest but are not
automated), the evasion x automation interaction (disposable identities:
young accounts and rotating networks, not the tier prior, doing automated
work: the hydra shape even when what it asks carries no harvest cue; not for
identity-verified accounts, whose identity is not disposable) and campaign
membership (a malicious campaign's risk, weighted by its margin over review
up to ``risk.campaign_full_at``, or by the member's own evasion score when
that is larger: a thin campaign is weak evidence except against a disposable
identity). An identity-verified campaign member not tied to the campaign's
farm by a hard fact has its risk bounded by the larger of its own and its
campaign's (``actions.verified_campaign_cap``): membership takes it as far as
the group's evidence goes, never further. Actions follow ascending risk thresholds;
without campaign evidence an entity must also have ``min_requests_enforce``
requests before anything stronger than ``review``, and outside a malicious
campaign trusted and established customers (``actions.trusted_tiers``,
``established_*``) and entities at one person's scale (``actions.individual_*``,
:meth:`Scorer.individual`) are held at ``review`` on their own traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from distillwatch.ingest.schema import TIERS
from distillwatch.scoring.config import ACTIONS, Settings
from distillwatch.signals import ALL_SIGNALS, Signal
from distillwatch.signals.base import ScorePlan, score_many
from distillwatch.signals.state import StateView

GROUPS = ("harvest", "automation", "identity")
# the identity signals that describe a disposable identity (how the account
# behaves), not who the customer is (tier and verification): the evasion term
EVASION = ("account_age_ramp", "infra_rotation")
# the reason a verdict held at review by the trusted-customer rule carries
# (the gateway reads it back from the verdict file: gateway.verdicts)
TRUSTED_REASON = "trusted_customer"
# the reason a verified campaign member whose risk its campaign's bounded carries
VERIFIED_MEMBER_REASON = "verified_member"
# the reason an entity held at review at an individual's scale carries
INDIVIDUAL_REASON = "individual_scale"
# automation signals that an individual's use never shows (scripted pacing,
# traffic at every hour of the day): either one at SCRIPTED_AT or more ends the
# individual hold (0.8: a log-gap spread under ~0.8, well below the ~1.3 of
# random (Poisson) arrivals and the > 2 of real people; 21 or more hours a day)
SCRIPTED = ("around_the_clock", "timing_regularity")
SCRIPTED_AT = 0.8


@dataclass
class ScoreResult:
    """Scores of a batch of entities, aligned with the view's rows."""

    risk: np.ndarray
    action: np.ndarray  # int8 index into ACTIONS
    groups: dict[str, np.ndarray]
    measures: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    n: np.ndarray
    # entities held at review by the trusted-customer rule although their risk
    # asked for more (None: no entity was)
    held: np.ndarray | None = None
    # of those, the ones held as established customers (not on a trusted tier)
    established: np.ndarray | None = None
    # verified campaign members whose risk the campaign's own bounded
    # (settings.verified_campaign_cap; None: no entity's was)
    capped: np.ndarray | None = None
    # entities held at review at an individual's scale (None: no entity was)
    individual: np.ndarray | None = None


class Scorer:
    """Applies the configured signals and policy to state views."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signals: list[Signal] = [cls() for cls in ALL_SIGNALS]
        self.by_name = {s.name: s for s in self.signals}
        self._thr = np.array([settings.thresholds[a] for a in ACTIONS[1:]])
        self._trusted = np.array([float(TIERS.index(t)) for t in settings.trusted_tiers])
        self._established = np.array([float(TIERS.index(t)) for t in settings.established_tiers])
        # what score() needs from the settings, worked out once (the gateway
        # scores one account per call: these were a fixed cost of every call)
        names = list(dict.fromkeys(n for g in GROUPS for n in settings.weights.get(g, {})))
        self._names = names
        self._weighted = [self.by_name[n] for n in names]
        self._plan = ScorePlan(self._weighted)
        # each group's noisy-OR as a running product over its signals' rows of
        # the stacked scores: names are in group order and a signal belongs to
        # one group, so each group is one run of rows (weights in that order)
        self._weights = np.array(
            [[float(settings.weights[g][n])] for g in GROUPS for n in settings.weights.get(g, {})]
        )
        assert len(self._weights) == len(names)
        self._runs: list[tuple[str, int]] = []  # (group, first row) of non-empty groups
        self._empty: list[str] = []
        at = 0
        for g in GROUPS:
            width = len(settings.weights.get(g, {}))
            if width:
                self._runs.append((g, at))
            else:
                self._empty.append(g)
            at += width
        self._run_starts = np.array([a for _, a in self._runs], dtype=np.intp)
        self._evasion_rows = np.array([i for i, n in enumerate(names) if n in EVASION], np.intp)
        self._full_at = float(settings.risk.get("campaign_full_at", 0.0))

    def score(
        self,
        v: StateView,
        campaign_risk: np.ndarray | None = None,
        farm_tied: np.ndarray | None = None,
    ) -> ScoreResult:
        """Risk and action of each entity of ``v``; ``campaign_risk``: its
        malicious campaign's risk (0: none); ``farm_tied``: campaign members
        that share a hard fact with the campaign's farm (they take the whole
        campaign term, and the verified-member cap does not apply to them;
        None: none do)."""
        cfg = self.settings
        groups: dict[str, np.ndarray] = {}
        # every weighted signal scored in one stacked pass (signals.base.score_many)
        ms, ss = score_many(self._weighted, v, plan=self._plan)
        measures = dict(zip(self._names, ms, strict=True))
        scores = dict(zip(self._names, ss, strict=True))
        evasion: np.ndarray | float = 0.0
        if self._runs:
            # noisy-OR: the product of (1 - w s) in weight order, as a running product
            kept_terms = 1.0 - self._weights * ss
            if len(self._evasion_rows):  # the evasion signals' own noisy-OR
                evasion = 1.0 - np.multiply.reduce(kept_terms[self._evasion_rows], axis=0)
                # a verified identity is not a disposable one
                evasion = np.where(v["verified"] == 1.0, 0.0, evasion)
            keep = np.multiply.reduceat(kept_terms, self._run_starts, axis=0)
            for (g, _), kept in zip(self._runs, 1.0 - keep, strict=True):
                groups[g] = kept
        for g in self._empty:
            groups[g] = 1.0 - np.ones(len(v))
        r = cfg.risk
        camp = np.zeros(len(v)) if campaign_risk is None else np.nan_to_num(campaign_risk)
        # thin campaigns (just above review) count in full only for members
        # whose own identity looks disposable (young, rotating networks)
        # (or tied to the campaign's farm by a hard fact)
        camp_w = np.maximum(self._campaign_weight(camp), evasion)
        if farm_tied is not None:
            camp_w = np.where(farm_tied, 1.0, camp_w)
        own_logit = (
            r["bias"]
            + r["harvest"] * groups["harvest"]
            + r["automation"] * groups["automation"]
            + r["identity"] * groups["identity"]
            + r["harvest_x_automation"] * groups["harvest"] * groups["automation"]
            + r.get("evasion_x_automation", 0.0) * evasion * groups["automation"]
        )
        risk = 1.0 / (1.0 + np.exp(-(own_logit + r["campaign"] * camp_w * camp)))
        capped = None
        if cfg.verified_campaign_cap:
            capped = (camp > 0) & (v["verified"] == 1.0)
            if farm_tied is not None:
                capped &= ~farm_tied
            if capped.any():
                # proportion for accountable identities: membership lifts a
                # verified member at most to its campaign's risk
                bound = np.maximum(1.0 / (1.0 + np.exp(-own_logit)), camp)
                capped &= risk > bound
                risk = np.where(capped, bound, risk)
            if not capped.any():
                capped = None
        # the method np.searchsorted dispatches to (same values, no wrapper)
        action = self._thr.searchsorted(risk, side="right").astype(np.int8)
        thin = v["n"] < cfg.min_requests_enforce
        if cfg.campaign_enforce:
            thin &= camp <= 0
        held = established = None
        if (len(self._trusted) or len(self._established)) and (action >= 2).any():
            trusted, established = self._trusted_held(v, camp)
            held = (trusted | established) & (action >= 2) & ~thin
            established &= held & ~trusted
            thin |= held
        individual = None
        if cfg.individual_max_daily and (action >= 2).any():
            # outside any malicious campaign (holding members of thin
            # campaigns too served the held-out evasive farm's content-linked
            # members longer, leakage 2.8 -> 3.2%, and helped no probe kind)
            outside = camp <= 0
            individual = self.individual(v, evasion, scores) & outside & (action >= 2) & ~thin
            thin |= individual
            if not individual.any():
                individual = None
        action = np.where(thin, np.minimum(action, 1), action).astype(np.int8)
        return ScoreResult(
            risk, action, groups, measures, scores, v["n"], held, established, capped, individual
        )

    def individual(
        self, v: StateView, evasion: np.ndarray | float, scores: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Entities whose traffic stays at one person's scale.

        At most ``individual_max_daily`` requests on the busiest day and
        ``individual_max_daily_tokens`` output tokens per active day (what a
        person reads; a harvest of long reasoning outputs takes far more), on at
        most ``individual_max_prefixes`` networks (one more per 4 requests, up
        to that), an evasion score (young account, rotating networks) below
        ``individual_max_evasion``, and neither scripted pacing nor traffic
        around the clock. Outside any malicious campaign such an entity is held
        at review on its own traffic (:meth:`score`): a student who appends
        "Show your work." to each homework question, or a developer trying
        prompts, asks what a harvester asks, in a harvester's words, at a
        person's volume; an analyst decides. Catches: wrong enforcement of
        individuals, verified or not, whatever the accounts table says.
        Misses, on purpose: a harvest spread over many such accounts is only
        reviewed until linking ties them into a campaign (then each member is
        enforced with it); one account harvesting at a human pace from one
        address is reviewed, not stopped.
        """
        cfg = self.settings
        ok = _bounded_footprint(
            v,
            cfg.individual_max_prefixes,
            cfg.individual_max_daily,
            cfg.individual_max_daily_tokens,
        )
        ok &= np.asarray(evasion) < cfg.individual_max_evasion
        for name in SCRIPTED:
            if name in scores:
                ok &= scores[name] < SCRIPTED_AT
        return ok

    def tie_candidates(self, v: StateView, camp: np.ndarray) -> np.ndarray:
        """Rows whose score depends on whether they are tied to their
        campaign's farm by a hard fact (the ``farm_tied`` argument of
        :meth:`score`): verified members (``verified_campaign_cap``) and
        members of thin campaigns (below ``risk.campaign_full_at``)."""
        ask = np.zeros(len(camp), dtype=bool)
        if self.settings.verified_campaign_cap:
            ask |= v["verified"] == 1.0
        if self._full_at > 0:
            ask |= camp < self._full_at
        out: np.ndarray = ask & (camp > 0)
        return out

    def _campaign_weight(self, camp: np.ndarray) -> np.ndarray | float:
        """How much of the campaign term a member gets: from 0 for a campaign at
        the review threshold to all of it at ``risk.campaign_full_at`` (absent
        or 0: all of it for any malicious campaign). A campaign just above
        review is thin evidence: it alone does not enforce its members."""
        full = self._full_at
        if full <= 0:
            return 1.0
        review = self.settings.thresholds["review"]
        out: np.ndarray = np.clip((camp - review) / max(full - review, 1e-9), 0.0, 1.0)
        return out

    def _trusted_held(self, v: StateView, camp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Trusted and established customers (:meth:`accountable`) outside any
        malicious campaign.

        Catches: wrong enforcement of legitimate workloads that ask what
        harvesters ask (LLM-as-judge eval pipelines grading responses,
        step-by-step tutoring products). Misses, on purpose: such an account
        harvesting alone is only reviewed (an analyst, and the customer
        relationship, decide); one inside a campaign is enforced with it
        (unless only content ties it there: linking.accountable).
        """
        trusted, established = self.accountable(v)
        outside = camp <= 0
        return trusted & outside, established & outside

    def accountable(self, v: StateView) -> tuple[np.ndarray, np.ndarray]:
        """Trusted and established customers, whatever their campaign.

        Trusted (``trusted_tiers``): verified, aged accounts on a trusted tier.
        Established (``established_tiers``): verified, aged accounts on a paying
        tier that also keep to at most ``established_max_prefixes`` networks,
        ``established_max_daily`` requests on their busiest day and
        ``established_max_daily_tokens`` output tokens per active day: an
        accountable customer (identity checked, paying, one place) at a
        volume where an analyst's look is in proportion, not a disposable
        account behind rotating proxies nor an industrial harvest (a bulk
        chain-of-thought harvest takes millions of output tokens a day; an
        LLM-as-judge pipeline's short verdicts a small fraction of that).
        """
        cfg = self.settings
        verified = v["verified"] == 1.0
        age = v["last_ts"] - v["created_ms"]  # NaN (unknown sign-up) counts as old enough
        with np.errstate(invalid="ignore"):
            aged = ~(age < cfg.trusted_min_age_ms)
        base = verified & aged
        trusted = base & np.isin(v["tier"], self._trusted)
        established = base & np.isin(v["tier"], self._established)
        if established.any():
            established &= _bounded_footprint(
                v,
                cfg.established_max_prefixes,
                cfg.established_max_daily,
                cfg.established_max_daily_tokens,
            )
        return trusted, established

    def reasons(self, res: ScoreResult, i: int) -> list[dict[str, Any]]:
        """Top contributing signals of entity ``i``, as contract reasons."""
        cfg = self.settings
        contrib: list[tuple[float, str]] = []
        for g in GROUPS:
            for name, w in cfg.weights.get(g, {}).items():
                s = float(res.scores[name][i])
                if s >= cfg.risk.get("reason_min_score", 0.3):
                    contrib.append((w * s * cfg.risk[g], name))
        contrib.sort(reverse=True)
        out: list[dict[str, Any]] = []
        risk = float(res.risk[i])
        if res.held is not None and res.held[i]:
            who = (
                "verified, established account on one network"
                if res.established is not None and res.established[i]
                else "verified account on a trusted tier"
            )
            out.append(
                _reason(
                    TRUSTED_REASON,
                    risk,
                    f"{who}, tied to no malicious campaign by payment, infrastructure or"
                    f" sign-up: {_HELD.format(risk)}",
                )
            )
        if res.individual is not None and res.individual[i]:
            out.append(
                _reason(
                    INDIVIDUAL_REASON,
                    risk,
                    "an individual's scale (few requests a day from one or two networks,"
                    " human pacing, no sign of a disposable identity), in no malicious"
                    f" campaign: {_HELD.format(risk)}",
                )
            )
        if res.capped is not None and res.capped[i]:
            out.append(
                _reason(
                    VERIFIED_MEMBER_REASON,
                    risk,
                    "identity-verified account: its campaign lifts its risk at most to the"
                    " campaign's own (the larger of its own risk and its campaign's:"
                    f" {risk:.2f}); its own traffic may enforce it",
                )
            )
        for _, name in contrib[: int(cfg.risk.get("reasons", 4))]:
            value = float(res.measures[name][i])
            out.append(_reason(name, value, self.by_name[name].detail(value)))
        return out


# the end of a held-at-review reason's detail (its risk filled in)
_HELD = "held at review for an analyst (its own risk {:.2f} would enforce)"


def _reason(signal: str, value: float, detail: str) -> dict[str, Any]:
    """One contract reason (``{signal, value, detail}``; value rounded to 4 places)."""
    return {"signal": signal, "value": round(value, 4), "detail": detail}


def _bounded_footprint(
    v: StateView, max_prefixes: int, max_daily: int, max_daily_tokens: int
) -> np.ndarray:
    """Entities on at most ``max_prefixes`` networks (/24 or /48; at most one more per
    4 requests, up to that: a new network per request is no stable footprint, however
    few requests so far), with at most ``max_daily`` requests on their busiest day and
    ``max_daily_tokens`` output tokens per active day (the established-customer and
    individual holds)."""
    nets = np.minimum(max_prefixes, 1.0 + v["n"] / 4.0)
    ok: np.ndarray = v.distinct("prefixes") <= nets + 0.5
    ok &= v["max_day_count"] <= max_daily
    ok &= v["out_tokens"] / np.maximum(v["active_days"], 1.0) <= max_daily_tokens
    return ok
