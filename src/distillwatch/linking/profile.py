"""Harvest profile of a malicious campaign, as corroboration for joining it.

A farm that rotates IPs and paraphrases its prompts still runs one
harvesting pipeline: its accounts ask for the same *kind* of output (the
same share of chain-of-thought coercion, grading, reasoning-effort and
single-turn tasks, the same capability mix). :class:`CampaignProfiles`
learns that shape from each malicious campaign's aggregate state and scores
how much better an unlinked account's traffic so far is explained by it than
by the background (all accounts outside malicious campaigns): a naive-Bayes
log-likelihood ratio over the per-request flags and capability areas the
state already counts.

It is *corroboration*, never evidence on its own: the attacher adds
``profile_weight x ramp(LLR, lo, hi)`` to the summed weight of the link keys
an account shares with that campaign, only when it shares at least one
(:mod:`distillwatch.linking.attach`). With ``profile_weight`` below
``min_weight`` an account that shares nothing with the campaign never joins
on its profile, however farm-like its traffic, and one weak key match
(a template seen with the farm's client, ...) needs a farm-like profile to
count as a join instead of waiting for a second match.

Catches: members of a paraphrasing, IP-rotating farm that match one of its
keys and harvest what it harvests, at their first requests instead of after
a second key match. Misses: campaigns whose traffic looks like the
background (the ratio stays near 0: no bonus), accounts with no key match at
all (they wait for the graph rebuild), and it assumes the flags are
independent (naive Bayes overstates correlated flags such as CoT coercion and
reasoning harvest, which is why the ratio is mapped through a ramp and the
bonus is capped). A legitimate account only gains from it if it both shares
a conjunctive key with a malicious campaign and asks for the same outputs.
"""

from __future__ import annotations

import numpy as np

from distillwatch.signals.base import ramp
from distillwatch.signals.state import EntityState, StateView

# per-request flags the state counts (state column -> one Bernoulli each)
FLAGS = (
    "cot_hi",
    "rubric_hi",
    "datagen_hi",
    "single_turn",
    "reasoning_harvest",
    "maxlen_hit",
    "prob_harvest",
    "new_model",
)
P_FLOOR = 0.02  # probabilities clipped to [P_FLOOR, 1 - P_FLOOR]: bounded per-request ratios


def _flag_counts(cols: dict[str, np.ndarray], rows: np.ndarray | slice) -> np.ndarray:
    """(rows, flags) counts."""
    return np.stack([np.asarray(cols[f][rows], dtype=np.float64) for f in FLAGS], axis=-1)


class CampaignProfiles:
    """Log-ratios of campaign vs background per flag and capability area."""

    def __init__(self) -> None:
        self.pos = np.zeros((0, len(FLAGS)))  # log pC/pB      (per campaign, flag)
        self.neg = np.zeros((0, len(FLAGS)))  # log (1-pC)/(1-pB)
        self.cap = np.zeros((0, 0))  # log qC/qB       (per campaign, area)

    def fit(self, camp: StateView, malicious: np.ndarray, state: EntityState) -> None:
        """Profiles of every campaign of ``camp`` (the aggregated view, one row per
        campaign) against the accounts of ``state`` outside the malicious ones."""
        k = len(state)
        c = state.cols
        bad = np.flatnonzero(malicious)
        n_b = float(c["n"][:k].sum() - camp["n"][bad].sum())
        f_b = _flag_counts(c, slice(0, k)).sum(axis=0) - _flag_counts(camp.cols, bad).sum(axis=0)
        cap_b = c["cap"][:k].sum(axis=0) - camp["cap"][bad].sum(axis=0)
        n_c = np.asarray(camp["n"], dtype=np.float64)[:, None]
        p_b = np.clip((np.maximum(f_b, 0.0) + 1.0) / (max(n_b, 0.0) + 2.0), P_FLOOR, 1 - P_FLOOR)
        p_c = np.clip(
            (_flag_counts(camp.cols, slice(None)) + 1.0) / (n_c + 2.0), P_FLOOR, 1 - P_FLOOR
        )
        self.pos = np.log(p_c / p_b)
        self.neg = np.log((1.0 - p_c) / (1.0 - p_b))
        areas = c["cap"].shape[1]
        q_b = (np.maximum(cap_b, 0.0) + 1.0) / (max(n_b, 0.0) + areas)
        q_c = (np.asarray(camp["cap"], dtype=np.float64) + 1.0) / (n_c + areas)
        self.cap = np.log(np.clip(q_c, P_FLOOR / areas, 1.0) / np.clip(q_b, P_FLOOR / areas, 1.0))

    def llr(self, v: StateView, camps: np.ndarray) -> np.ndarray:
        """Log-likelihood ratio (nats) of each entity of ``v`` under campaign
        ``camps[i]``'s profile vs the background (0 for an unknown campaign)."""
        out = np.zeros(len(v))
        ok = (camps >= 0) & (camps < len(self.pos))
        if not ok.any():
            return out
        c = camps[ok]
        k = _flag_counts(v.cols, slice(None))[ok]
        n = np.asarray(v["n"], dtype=np.float64)[ok][:, None]
        flags = (k * self.pos[c] + (n - k) * self.neg[c]).sum(axis=1)
        areas = (np.asarray(v["cap"], dtype=np.float64)[ok] * self.cap[c]).sum(axis=1)
        out[ok] = flags + areas
        return out

    def bonus(
        self, v: StateView, camps: np.ndarray, weight: float, lo: float, hi: float
    ) -> np.ndarray:
        """``weight x ramp(llr, lo, hi)``: the corroboration added to key weight."""
        return weight * ramp(self.llr(v, camps), lo, hi)
