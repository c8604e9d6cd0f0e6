"""Campaign state: the members' :class:`EntityState` rows folded into one row per campaign.

A campaign is scored with the very signals and scorer that score accounts, on
an aggregate view: counters and histograms are summed (volume, CoT share,
capability concentration and timing are those of the whole campaign),
HyperLogLog sketches are merged by elementwise max (distinct templates, IPs,
prefixes of the union), first/last times are min/max, busiest-day count is
summed (an upper proxy), active days is the max over members (a lower bound
of the union) and profile columns are averaged over members that have them.
"""

from __future__ import annotations

import numpy as np

from distillwatch.signals.state import BlockColumns, EntityState, StateView

MIN_COLS = ("first_ts", "first_review_ms", "first_enforce_ms")
MAX_COLS = ("last_ts", "last_day", "active_days", "reseller")
MEAN_COLS = ("tier", "verified", "created_ms")


Part = tuple[EntityState, np.ndarray, np.ndarray]


def aggregate_state(
    state: EntityState,
    rows: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    more: tuple[Part, ...] = (),
) -> StateView:
    """One StateView row per group; ``rows[i]`` (a state row) belongs to ``group[i]``.

    ``more``: further (state, rows, group) parts folded into the same groups
    (campaigns whose members are accounts and resellers' end users).
    """
    parts = ((state, rows, group), *more)
    group = np.concatenate([np.asarray(g, dtype=np.int64) for _, _, g in parts])
    order = np.argsort(group, kind="stable")
    group = group[order]
    present, starts = np.unique(group, return_index=True)
    # the members' whole rows, gathered once per block in group order: each
    # column below is then a (contiguous) copy of a view, not two gathers
    num, hll = (
        _gathered([getattr(st, block) for st, _, _ in parts], [r for _, r, _ in parts], order)
        for block in ("num", "hll")
    )
    blocks = BlockColumns(num, hll)
    out: dict[str, np.ndarray] = {}
    for name, col in state.cols.items():
        vals = np.ascontiguousarray(blocks[name])
        shape = (n_groups, *col.shape[1:])
        if len(group) == 0:
            out[name] = np.zeros(shape, dtype=col.dtype)
            continue
        if name.startswith("hll_"):
            acc = np.zeros(shape, dtype=col.dtype)
            acc[present] = np.maximum.reduceat(vals, starts)
        elif name in MIN_COLS or name in MAX_COLS:
            fill = np.inf if name in MIN_COLS else -np.inf
            red = np.fmin if name in MIN_COLS else np.fmax
            acc = np.full(shape, np.nan)
            got = red.reduceat(np.where(np.isnan(vals), fill, vals), starts)
            acc[present] = np.where(np.isinf(got), np.nan, got)
        elif name in MEAN_COLS:
            known = ~np.isnan(vals)
            total = np.add.reduceat(np.where(known, vals, 0.0), starts)
            cnt = np.add.reduceat(known.astype(np.float64), starts)
            acc = np.full(shape, np.nan)
            acc[present] = np.divide(total, cnt, out=np.full(total.shape, np.nan), where=cnt > 0)
        else:
            acc = np.zeros(shape, dtype=col.dtype)
            acc[present] = np.add.reduceat(vals, starts)
        if name == "first_ts":
            acc = np.nan_to_num(acc)
        out[name] = acc
    return StateView(out, [f"campaign:{g}" for g in range(n_groups)])


def _gathered(blocks: list[np.ndarray], rows: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """Rows ``rows[j]`` of each ``blocks[j]``, concatenated, then taken in ``order``
    (one gather for a single part)."""
    if len(blocks) == 1:
        return blocks[0][np.asarray(rows[0], dtype=np.int64)[order]]
    return np.concatenate(
        [b[np.asarray(r, dtype=np.int64)] for b, r in zip(blocks, rows, strict=True)]
    )[order]
