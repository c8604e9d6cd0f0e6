"""The event at which an entity's online decision first reached review / enforce.

The replay folds a whole event-time window, then scores. When that score
first puts an entity at ``review`` or above (or ``challenge`` or above), the
decision an inline gateway would have made happened at one of the entity's
events *inside* the window, not at the window's end: a harvester sending 400
requests in ten minutes is stopped at the request that tipped it, and a new
account that joins a known campaign at its first request. Recording the
window's end instead would count every request before it as served.

:func:`crossing_times` finds that event. It replays only the entities that
newly crossed (few per window) on a scratch :class:`EntityState` that starts
from their state before the window, folding their window events one by one
in event order (in growing chunks past ``EXACT_EVENTS``) with the same fold and
the same scorer, and returns, per entity and level, the time of the last event
folded when the action first reached the level. Decisions use only the
entity's events up to that time plus campaign risk known before the window's
link rebuild (the caller passes that risk), so they are causal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from distillwatch.signals.state import EntityState, StateView

EXACT_EVENTS = 32  # events folded one at a time; then chunks growing by half
Score = Callable[[StateView, np.ndarray], np.ndarray]


def snapshot(state: EntityState, keys: pl.Series) -> StateView:
    """State before a window of the entities ``keys`` that are not yet enforced.

    Entities already at ``challenge`` or above have no first time left to
    find, so they are not copied; the replay passes only the entities with
    more than one event in the window (for one event, that event is the time).
    """
    get = state.index.get
    uniq = keys.drop_nulls().unique().to_list()
    rows = np.fromiter((get(k, -1) for k in uniq), dtype=np.int64, count=len(uniq))
    rows = rows[rows >= 0]
    rows = rows[np.isnan(state.cols["first_enforce_ms"][rows])]
    return state.view(rows)


def _rounds(rank: np.ndarray) -> np.ndarray:
    """Round of each event from its rank in its entity: exact, then growing chunks."""
    top = int(rank.max()) + 1 if len(rank) else 0
    bounds = list(range(min(top, EXACT_EVENTS)))
    b = EXACT_EVENTS
    while b < top:
        bounds.append(b)
        b += max(1, b // 2)
    return np.searchsorted(np.asarray(bounds, dtype=np.int64), rank, side="right") - 1


def crossing_times(
    state: EntityState,
    before: StateView,
    feat: pl.DataFrame,
    keys: pl.Series,
    rows: np.ndarray,
    need: tuple[np.ndarray, np.ndarray],
    risk: np.ndarray,
    score: Score,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``rows``: event times (ms) at which its action first reached
    ``review`` and ``challenge`` (where ``need[0]`` / ``need[1]`` ask for them).

    ``state``: after the window; ``before``: :func:`snapshot` taken before it;
    ``feat``/``keys``: the window's feature rows and their entity keys;
    ``risk``: campaign risk per row (known before the window's link rebuild);
    ``score``: actions of a view given campaign risk. NaN where the scratch
    replay never reached the level (then the caller keeps its own time).
    """
    found = (np.full(len(rows), np.nan), np.full(len(rows), np.nan))
    if len(rows) == 0:
        return found
    names = [state.keys[i] for i in rows.tolist()]
    scratch = _scratch(state, before, rows, names)
    sel = keys.is_in(pl.Series(names, dtype=pl.String).implode()).fill_null(False)
    sub = feat.filter(sel).with_columns(keys.filter(sel).alias("_entity"))
    sub = sub.sort("ts", maintain_order=True).with_columns(
        pl.int_range(pl.len()).over("_entity").alias("_rank")
    )
    pos = {k: i for i, k in enumerate(names)}
    ent = np.fromiter((pos[k] for k in sub["_entity"].to_list()), np.int64, sub.height)
    rnd = _rounds(sub["_rank"].to_numpy())
    todo = need[0] | need[1]
    for r in range(int(rnd.max()) + 1):
        keep = (rnd == r) & todo[ent]
        if not keep.any():
            continue
        part = sub.filter(pl.Series(keep))
        touched = scratch.update(part, part["_entity"])
        action = score(scratch.view(touched), risk[touched])
        for lvl, (want, t) in enumerate(zip(need, found, strict=True), start=1):
            hit = touched[want[touched] & np.isnan(t[touched]) & (action >= lvl)]
            t[hit] = scratch.cols["last_ts"][hit]
        todo = (need[0] & np.isnan(found[0])) | (need[1] & np.isnan(found[1]))
        if not todo.any():
            break
    return found


def _scratch(
    state: EntityState, before: StateView, rows: np.ndarray, names: list[str]
) -> EntityState:
    """EntityState of ``rows`` as they were before the window (new entities: empty)."""
    scratch = EntityState(capacity=max(len(rows), 1))
    scratch.rows_for(pl.Series(names, dtype=pl.String))  # row i <-> rows[i]
    prev = {k: i for i, k in enumerate(before.keys)}
    had = np.array([prev.get(k, -1) for k in names], dtype=np.int64)
    old = had >= 0
    for name, col in scratch.cols.items():
        if name in EntityState.PROFILE:  # fixed facts: as now
            col[: len(rows)] = state.cols[name][rows]
        if old.any():
            col[np.flatnonzero(old)] = before.cols[name][had[old]]
    return scratch
