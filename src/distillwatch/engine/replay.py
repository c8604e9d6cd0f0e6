"""Causal replay: event-time micro-batches, state carried forward, decisions as if online.

:class:`Replay` folds one window of feature rows at a time into account and
end-user state, lets the campaign linker observe it, scores the entities the
window touched and records ``first_review_ms`` / ``first_enforce_ms``.

The time recorded is the earliest at which the decision was knowable:

* the entity's own last event in the window, when the decision needs only
  the entity's own events (all at or before that event) and campaign risk
  that was known before the window's link rebuild (a campaign flagged in an
  earlier window, or an attachment made from this entity's own evidence);
  this is what an inline gateway does: the request that joins a known
  campaign is itself refused;
* otherwise the window's last event time (a campaign found or re-scored from
  every account's events in this window).

A decision at time t therefore uses only events at or before t.
:meth:`Replay.hindsight` then scores every entity on its final state and
final campaigns; it may change the final action, never the ``first_*`` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from distillwatch.engine.firsts import crossing_times, snapshot
from distillwatch.features.model_launch import ModelLaunchTracker
from distillwatch.ingest.schema import TIERS
from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import Scorer, ScoreResult
from distillwatch.signals.state import EntityState, StateView, entity_keys

LEVELS = ("account", "end_user")
PROFILE_COLS = ("tier", "verified", "created_ms", "reseller")


class Linker(Protocol):
    """What the replay needs from campaign linking (see :mod:`distillwatch.linking`)."""

    def observe(self, feat: pl.DataFrame, window_end_ms: int) -> None: ...

    def refresh(
        self,
        now_ms: int,
        state: EntityState,
        scorer: Scorer,
        end_users: EntityState | None = None,
    ) -> None: ...

    def campaign_risk(self, account_ids: pl.Series, early: bool = False) -> np.ndarray: ...

    def farm_tied(self, account_ids: list[str]) -> np.ndarray: ...

    def campaign_of(self, account_id: str) -> str | None: ...

    def link_reasons(self, account_id: str) -> list[dict[str, object]]: ...

    def campaign_records(self) -> list[dict[str, object]]: ...


def account_profiles(accounts: pl.DataFrame | None) -> pl.DataFrame:
    """Numeric profile columns per account_id from the accounts side table."""
    schema = {
        "account_id": pl.String,
        "tier": pl.Float64,
        "verified": pl.Float64,
        "created_ms": pl.Float64,
        "reseller": pl.Float64,
    }
    if accounts is None or accounts.height == 0:
        return pl.DataFrame(schema=schema)
    tiers = {t: float(i) for i, t in enumerate(TIERS)}
    return accounts.select(
        pl.col("account_id"),
        pl.col("tier").replace_strict(tiers, default=None, return_dtype=pl.Float64).alias("tier"),
        pl.col("verified").cast(pl.Float64),
        pl.col("created_at").dt.epoch("ms").cast(pl.Float64).alias("created_ms"),
        pl.col("reseller").cast(pl.Float64),
    ).unique("account_id", keep="last")


@dataclass
class Decision:
    """Scores of all entities of one level after hindsight."""

    state: EntityState
    result: ScoreResult
    campaign_risk: np.ndarray


class Replay:
    """Stateful causal replay over time-ordered feature windows."""

    def __init__(
        self,
        settings: Settings,
        accounts: pl.DataFrame | None = None,
        linker: Linker | None = None,
    ) -> None:
        self.settings = settings
        self.scorer = Scorer(settings)
        self.states = {lvl: EntityState() for lvl in LEVELS}
        self.models = ModelLaunchTracker()
        profiles = account_profiles(accounts).select("account_id", *PROFILE_COLS)
        self._profile_of: dict[str, tuple[float, ...]] = {
            r[0]: tuple(np.nan if v is None else float(v) for v in r[1:])
            for r in profiles.iter_rows()
        }
        self.linker = linker
        self.windows = 0
        self.last_ms = 0
        self.start_ms: int | None = None

    def _attach_profiles(self, state: EntityState, rows: np.ndarray, level: str) -> None:
        """Account-table facts for new entities.

        End users get none: tier, verification and sign-up date describe the
        account (the reseller or the app), not its anonymous customers, so an
        end user starts from the neutral prior instead of inheriting a
        verified reseller's trust.
        """
        if len(rows) == 0:
            return
        start = np.nan if self.start_ms is None else float(self.start_ms)
        state.set_profile(rows, {"log_start_ms": np.full(len(rows), start)})
        if not self._profile_of or level != "account":
            return
        unknown = (np.nan,) * len(PROFILE_COLS)
        vals = np.array(
            [self._profile_of.get(state.keys[i].split("\x1f", 1)[0], unknown) for i in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(PROFILE_COLS))
        state.set_profile(rows, {c: vals[:, j] for j, c in enumerate(PROFILE_COLS)})

    def step(self, feat: pl.DataFrame, window_end_ms: int) -> None:
        """Fold one event-time window and make the online decisions for it."""
        if feat.height == 0:
            return
        feat = self.models.annotate(feat)
        decided_at = int(feat["ts"].dt.epoch("ms").max())  # type: ignore[arg-type]
        if self.start_ms is None:
            self.start_ms = int(feat["ts"].dt.epoch("ms").min())  # type: ignore[arg-type]
        self.last_ms = max(self.last_ms, decided_at)
        if self.linker is not None:
            self.linker.observe(feat, window_end_ms)
            if self.windows % self.settings.score_every == 0:
                self.linker.refresh(decided_at, *self._link_states())
        self.windows += 1
        for level, state in self.states.items():
            keys = entity_keys(feat, level)
            # entities with one event here need no search for it: only the
            # others' pre-window state is kept for crossing_times
            counts = keys.drop_nulls().value_counts(name="count")
            multi = counts.filter(counts["count"] > 1).get_column(keys.name)
            prior = snapshot(state, multi)
            before = len(state)
            touched = state.update(feat, keys)
            if len(state) > before:
                self._attach_profiles(state, np.arange(before, len(state)), level)
            # only entities not yet enforced have a first time left to record
            touched = touched[np.isnan(state.cols["first_enforce_ms"][touched])]
            if len(touched) == 0:
                continue
            view = state.view(touched)
            camp = self._campaign_risk(view.keys, level)
            action = self._actions(view, camp)
            early, early_risk = self._early_action(view, action, camp, level)
            new = self._new_firsts(state, touched, action)
            ref = tuple(n & (early >= lvl) for lvl, n in enumerate(new, start=1))
            own = state.cols["last_ts"][touched]  # each entity's last event here
            times = [np.where(r, own, decided_at) for r in ref]
            in_multi = self._rows_mask(state, multi)[touched]
            many = (ref[0] | ref[1]) & in_multi
            if many.any():
                i = np.flatnonzero(many)
                found = crossing_times(
                    state,
                    prior,
                    feat,
                    keys,
                    touched[i],
                    (ref[0][i], ref[1][i]),
                    early_risk[i],
                    self._actions,
                )
                for t, f in zip(times, found, strict=True):
                    t[i] = np.where(np.isnan(f), t[i], f)
            for col, n, t in zip(("first_review_ms", "first_enforce_ms"), new, times, strict=True):
                state.cols[col][touched[n]] = t[n]

    @staticmethod
    def _rows_mask(state: EntityState, keys: pl.Series) -> np.ndarray:
        """Boolean per state row: is its key one of ``keys`` (all in ``state``)?
        One dict lookup per key instead of a set lookup per touched row."""
        index = state.index
        mask = np.zeros(len(state), bool)
        mask[np.fromiter((index[k] for k in keys.to_list()), np.int64, len(keys))] = True
        return mask

    def _actions(self, view: StateView, camp: np.ndarray | None) -> np.ndarray:
        """The actions of :meth:`_score`, asking the linker about farm ties
        only where the answer changes an action: the scorer runs with no
        candidate tied, then with every candidate tied, and the linker (a join
        over all hard evidence) is asked about the rows whose actions differ."""
        res = self.scorer.score(view, camp)
        if camp is None or self.linker is None:
            return res.action
        ask = np.flatnonzero(self.scorer.tie_candidates(view, camp))
        if len(ask) == 0:
            return res.action
        sub = view.subset(ask)
        tied = self.scorer.score(sub, camp[ask], np.ones(len(ask), dtype=bool)).action
        differ = np.flatnonzero(tied != res.action[ask])
        if len(differ) == 0:
            return res.action
        rows = ask[differ]
        ties = self.linker.farm_tied([view.keys[i] for i in rows.tolist()])
        action = res.action.copy()
        action[rows] = np.where(ties, tied[differ], res.action[rows])
        return action

    def _score(self, view: StateView, camp: np.ndarray | None) -> ScoreResult:
        """The scorer on ``view`` with its campaign risk; for the campaign
        members whose score depends on it (verified members, members of thin
        campaigns: :meth:`Scorer.tie_candidates`) the linker also says which
        are tied to the farm by a hard fact."""
        tied = None
        if camp is not None and self.linker is not None:
            ask = np.flatnonzero(self.scorer.tie_candidates(view, camp))
            if len(ask):
                tied = np.zeros(len(camp), dtype=bool)
                tied[ask] = self.linker.farm_tied([view.keys[i] for i in ask.tolist()])
        return self.scorer.score(view, camp, tied)

    def _link_states(self) -> tuple[EntityState, Scorer, EntityState]:
        return self.states["account"], self.scorer, self.states["end_user"]

    def _campaign_risk(self, keys: list[str], level: str, early: bool = False) -> np.ndarray | None:
        """Risk of each entity's campaign: its own (an end user of a reseller can be a
        campaign member) or its account's, whichever is higher."""
        if self.linker is None:
            return None
        ids = pl.Series("account_id", keys, dtype=pl.String)
        risk = self.linker.campaign_risk(ids, early=early)
        if level != "account":  # end-user keys are account + "\x1f" + end user
            accts = ids.str.split("\x1f").list.first()
            risk = np.maximum(risk, self.linker.campaign_risk(accts, early=early))
        return risk

    def _early_action(
        self, view: StateView, action: np.ndarray, camp: np.ndarray | None, level: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Action and campaign risk each entity had at its own events (module docstring).

        The action equals ``action`` wherever the campaign risk used was known
        before this window's rebuild; elsewhere the entity is re-scored with
        the campaign risk as it was known then.
        """
        if camp is None:
            return action, np.zeros(len(action))
        before = self._campaign_risk(view.keys, level, early=True)
        assert before is not None
        changed = np.flatnonzero(before != camp)
        if len(changed) == 0:
            return action, camp
        early = action.copy()
        early[changed] = self._actions(view.subset(changed), before[changed])
        return early, before

    @staticmethod
    def _new_firsts(
        state: EntityState, rows: np.ndarray, action: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows reaching review / challenge for the first time."""
        c = state.cols
        return (
            (action >= 1) & np.isnan(c["first_review_ms"][rows]),
            (action >= 2) & np.isnan(c["first_enforce_ms"][rows]),
        )

    def hindsight(self) -> dict[str, Decision]:
        """Final scores of every entity on its final state and final campaigns."""
        if self.linker is not None:
            self.linker.refresh(self.last_ms, *self._link_states())
        out: dict[str, Decision] = {}
        for level, state in self.states.items():
            rows = np.arange(len(state))
            view = state.view(rows)
            camp = self._campaign_risk(view.keys, level)
            res = self._score(view, camp)
            out[level] = Decision(state, res, np.zeros(len(rows)) if camp is None else camp)
        return out
