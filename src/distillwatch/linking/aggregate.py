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

from distillwatch.signals.state import EntityState, StateView

MIN_COLS = ("first_ts", "first_review_ms", "first_enforce_ms")
MAX_COLS = ("last_ts", "last_day", "active_days", "reseller")
MEAN_COLS = ("tier", "verified", "created_ms")


def aggregate_state(
    state: EntityState, rows: np.ndarray, group: np.ndarray, n_groups: int
) -> StateView:
    """One StateView row per group; ``rows[i]`` (a state row) belongs to ``group[i]``."""
    out: dict[str, np.ndarray] = {}
    rows = np.asarray(rows, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    for name, col in state.cols.items():
        vals = col[rows]
        shape = (n_groups, *col.shape[1:])
        if name.startswith("hll_"):
            acc = np.zeros(shape, dtype=col.dtype)
            np.maximum.at(acc, group, vals)
        elif name in MIN_COLS:
            acc = np.full(shape, np.inf)
            np.fmin.at(acc, group, vals)
            acc[np.isinf(acc)] = np.nan
        elif name in MAX_COLS:
            acc = np.full(shape, -np.inf)
            np.fmax.at(acc, group, vals)
            acc[np.isinf(acc)] = np.nan
        elif name in MEAN_COLS:
            known = ~np.isnan(vals)
            total = np.zeros(shape)
            cnt = np.zeros(shape)
            np.add.at(total, group[known], vals[known])
            np.add.at(cnt, group[known], 1.0)
            acc = np.divide(total, cnt, out=np.full(shape, np.nan), where=cnt > 0)
        else:
            acc = np.zeros(shape, dtype=col.dtype)
            np.add.at(acc, group, vals)
        if name == "first_ts":
            acc = np.nan_to_num(acc)
        out[name] = acc
    return StateView(out, [f"campaign:{g}" for g in range(n_groups)])
