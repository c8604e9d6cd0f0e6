"""Tooling groups inside a reseller: end users that send one pipeline's configuration.

A reseller's end users share its IPs, client and usually its app's system
prompt and parameters, so they link to each other only on content (see
:mod:`distillwatch.linking.evidence`). Attackers hiding among them send
diverse tasks (no shared templates for hours) but run one harvesting
pipeline: the same system prompts with the same parameter configurations
(``reseller+tooling`` keys), which the reseller's other end users do not send.
Each attacking end user stays below the per-entity evidence floor
(``actions.min_requests_enforce``) for hours, and when they all start with
the log the activation-cohort rule (:mod:`distillwatch.linking.cohort`,
which needs a warm-up) cannot group them.

:func:`tooling_groups` groups end users of one reseller that share a
*minority* tooling key: held by at least ``min_members`` of them, those
being at least ``min_share`` of its holders (the rest are already placed in
a campaign), and by at most ``max_share`` of the end users the reseller has
shown so far (a configuration most of its end users send is the reseller's
own app default, not a pipeline brought by a few). Members must hold
``min_keys`` such keys (default 1). Like an activation cohort, a group is
only a *candidate* campaign: it is scored on its members' pooled traffic and
acted on only when that is malicious, so a team that signs up on a reseller
with its own SDK configuration is grouped but not enforced unless its
traffic harvests (then each member would be enforced on its own once it
crossed the evidence floor; the group only pools the members' evidence).
The pooled traffic is scored without :data:`CIRCULAR` signals (a group
sharing one configuration has few parameter settings by construction), and
the linker checks for a new or grown group at most every ``rebuild_every``
(:func:`group_due`). An end user that sends a key a malicious group was
formed on joins it at that request (the attacher counts such a key as a
whole join), as the next rebuild would group it.

Catches: attacking end users of a reseller that bring their own system
prompt x parameter configuration, within hours of their first requests
(when their pooled traffic is a harvest). Misses: attackers that use the
reseller's default configuration (the key is held by most end users), or
randomise system prompt and parameters per end user (no shared key), and
resellers where the attackers are most of the end users seen (early in a
log, when the reseller has shown few end users yet, a group may wait for
more of its customers to appear). A tenant app of a multi-tenant reseller
whose users' pooled traffic is a harvest (single-turn chain-of-thought
requests at volume) would be enforced as a group, light users included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from distillwatch.linking.cohort import key_groups
from distillwatch.linking.evidence import KIND_CODE
from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import Scorer, ScoreResult
from distillwatch.signals.state import StateView

TOOLING = KIND_CODE["reseller+tooling"]
# Signals a tooling group's pooled traffic is not scored on: its members were
# grouped *because* they send one configuration, so its few distinct parameter
# settings are how it was found, not evidence of automation.
CIRCULAR = ("param_uniformity",)


@dataclass(frozen=True)
class GroupParams:
    """Tooling-group settings (module docstring); max_share 0: off."""

    max_share: float = 0.5
    min_members: int = 3
    min_share: float = 0.5
    min_keys: int = 1


def tooling_rows(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The ``reseller+tooling`` rows (key, node, a = reseller key, kind) of
    evidence arrays, distinct per (node, key) (so they can be fed back in)."""
    keep = [p["kind"] == TOOLING for p in parts]
    cols: dict[str, np.ndarray] = {}
    for c, dt in (("key", np.uint64), ("node", np.int64), ("a", np.uint64)):
        got = [p[c][k] for p, k in zip(parts, keep, strict=True)]
        cols[c] = np.concatenate(got).astype(dt) if got else np.zeros(0, dt)
    if len(cols["key"]):
        f = pl.DataFrame(cols).unique(["node", "key"])
        cols = {c: f[c].to_numpy() for c in ("key", "node", "a")}
    cols["kind"] = np.full(len(cols["key"]), TOOLING, np.int8)
    return cols


def tooling_groups(
    rows: dict[str, np.ndarray],
    reseller_of: np.ndarray,
    candidate: np.ndarray,
    p: GroupParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Group label per node (-1: none) from distinct ``reseller+tooling`` rows
    (:func:`tooling_rows`), and the keys the groups were formed on (sorted);
    ``reseller_of``: each node's reseller key (0: not an end user),
    ``candidate``: the nodes a group may take (module docstring)."""
    n = len(candidate)
    labels = np.full(n, -1, np.int64)
    none = labels, np.zeros(0, np.uint64)
    if p.max_share <= 0 or len(rows["key"]) == 0 or not candidate.any():
        return none
    eu = reseller_of[:n][reseller_of[:n] != 0]
    res_keys, res_users = np.unique(eu, return_counts=True)
    if len(res_keys) == 0:
        return none
    pos = np.minimum(np.searchsorted(res_keys, rows["a"]), len(res_keys) - 1)
    users = np.where(res_keys[pos] == rows["a"], res_users[pos], 0)
    f = pl.DataFrame(
        {
            "node": rows["node"],
            "key": rows["key"],
            "cand": candidate[rows["node"]],
            "users": users,
        }
    )
    held = f.group_by("key").agg(
        pl.len().alias("df"), pl.col("cand").sum().alias("k"), pl.col("users").max()
    )
    ok = held.filter(
        (pl.col("k") >= p.min_members)
        & (pl.col("k") >= p.min_share * pl.col("df"))
        & (pl.col("df") <= p.max_share * pl.col("users"))
    )
    mine = f.filter(pl.col("cand")).join(ok.select("key"), on="key", how="semi")
    if mine.height == 0:
        return none
    mine = mine.select("node", "key", pl.col("key").alias("ck"))
    labels = key_groups(mine, n, p.min_keys, p.min_members)
    used = mine["key"].to_numpy()[labels[mine["node"].to_numpy()] >= 0]
    return labels, np.unique(used)


def due_groups(
    rows: dict[str, np.ndarray],
    reseller_of: np.ndarray,
    eu: np.ndarray,
    camp: np.ndarray,
    held: np.ndarray,
    fresh: np.ndarray,
    grouped: np.ndarray,
    p: GroupParams,
) -> np.ndarray:
    """Labels (-1: none) of the tooling groups of the evidence so far (``rows``)
    that may call for a graph rebuild: with a ``fresh`` end user in no campaign
    (``camp`` -1) and no member in a malicious campaign (``held``; an end user
    joins a malicious group by attachment on its keys). The linker rebuilds
    when one's pooled traffic reaches ``review``. ``eu``: the end-user nodes;
    ``grouped``: the nodes placed by a tooling group at the last rebuild
    (candidates again, as in a rebuild)."""
    cand = eu & (grouped | (camp < 0))
    grp, _ = tooling_groups(rows, reseller_of, cand, p)
    inside = grp >= 0
    if not (inside & fresh & (camp < 0)).any():
        return np.full(len(grp), -1, np.int64)
    g = grp[inside]
    new = np.zeros(int(g.max()) + 1, bool)
    np.logical_or.at(new, g, fresh[inside] & (camp[inside] < 0))
    bad = np.zeros(len(new), bool)
    np.logical_or.at(bad, g, held[inside])
    keep = new & ~bad
    return np.where(inside & keep[np.maximum(grp, 0)], grp, -1)


class GroupScorer:
    """Scores tooling groups' pooled traffic with the campaign scorer's settings
    less the :data:`CIRCULAR` signals."""

    def __init__(self) -> None:
        self._for: Settings | None = None
        self._scorer: Scorer | None = None

    def scorer(self, settings: Settings) -> Scorer:
        if self._scorer is None or self._for is not settings:
            w = {
                g: {k: v for k, v in sig.items() if k not in CIRCULAR}
                for g, sig in settings.weights.items()
            }
            self._scorer, self._for = Scorer(replace(settings, weights=w)), settings
        return self._scorer

    def rescore(
        self, view: StateView, res: ScoreResult, rows: np.ndarray, settings: Settings
    ) -> ScoreResult:
        """``res`` (scores of ``view``) with its ``rows`` (the tooling groups)
        scored without the circular signals (their scores then 0)."""
        if len(rows) == 0:
            return res
        sub = self.scorer(settings).score(view.subset(rows))
        risk, action = res.risk.copy(), res.action.copy()
        risk[rows], action[rows] = sub.risk, sub.action
        groups = {g: v.copy() for g, v in res.groups.items()}
        for g, v in groups.items():
            v[rows] = sub.groups[g]
        scores = {k: v.copy() for k, v in res.scores.items()}
        for k, v in scores.items():
            v[rows] = sub.scores.get(k, 0.0)
        return replace(res, risk=risk, action=action, groups=groups, scores=scores)
