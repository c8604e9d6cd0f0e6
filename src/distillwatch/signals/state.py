"""Per-entity running aggregates: the state every signal reads.

An *entity* is an account, or an end user inside an account (key
``account_id + "\\x1f" + end_user_id``). :class:`EntityState` keeps one row per
entity in NumPy columns (counters, time statistics, hour-of-day histogram,
HyperLogLog sketches) and folds in one micro-batch of feature rows at a time,
vectorised. Because the engine feeds micro-batches in event-time order, the
state after a batch depends only on events at or before its end: decisions
made from it are causal.

The same class backs the gateway's in-memory state (batches of one);
``view`` hands signals a read-only :class:`StateView` of chosen rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from distillwatch.features.classifiers import CAPABILITIES
from distillwatch.features.columns import Features, column
from distillwatch.signals import sketch

# boolean/float feature columns summed per entity: state column <- feature column
SUMS: dict[str, str] = {
    "cot_sum": "cot",
    "single_turn": "single_turn",
    "tool_use": "tool_use",
    "maxlen_hit": "maxlen_hit",
    "long_request": "long_request",
    "prob_harvest": "prob_harvest",
    "reasoning_harvest": "reasoning_harvest",
    "new_model": "new_model",
}
# thresholded counts: state column <- (feature column, threshold)
HIGHS: dict[str, tuple[str, float]] = {"cot_hi": ("cot", 0.75), "rubric_hi": ("rubric", 0.5)}
# distinct-count sketches: sketch name <- feature column of 64-bit keys
SKETCHES: dict[str, str] = {
    "templates": "template_key",
    "near": "lsh_0",
    "texts": "text_key",
    "params": "param_sig",
    "ips": "ip_key",
    "prefixes": "ip_prefix",
    "uas": "ua_key",
    "end_users": "eu_key",
}
N_CAP = len(CAPABILITIES)
MS_PER_DAY = 86_400_000


def _lengths(starts: np.ndarray, n: int) -> np.ndarray:
    """``np.diff(np.append(starts, n))``: run lengths from run starts.

    The same int64 values without np.diff's and np.append's Python-level
    wrappers, a fixed cost that counted on the gateway's one-row batches (as do
    ``a.nonzero()[0]`` for ``np.flatnonzero(a)`` and slice comparisons for
    ``np.diff(a) != 0`` in :class:`EntityState`)."""
    out = np.empty(len(starts), dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=out[:-1])
    np.subtract(n, starts[-1:], out=out[-1:])
    return out


def entity_keys(feat: pl.DataFrame, level: str) -> pl.Series:
    """Entity key per row: the account, or account + end user (null when absent)."""
    if level == "account":
        return feat["account_id"]
    return feat.select(
        pl.when(pl.col("end_user_id").is_not_null())
        .then(pl.col("account_id") + "\x1f" + pl.col("end_user_id"))
        .otherwise(None)
    ).to_series()


@dataclass
class StateView:
    """Read-only columns of some entities' state, aligned row by row."""

    cols: dict[str, np.ndarray]
    keys: list[str] = field(default_factory=list)
    # distinct-count estimates already worked out (signals ask for some twice)
    _distinct: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __len__(self) -> int:
        return len(self.cols["n"])

    def distinct(self, name: str) -> np.ndarray:
        """Distinct-count estimates of sketch ``name`` (computed once per view;
        callers must not write into the array)."""
        est = self._distinct.get(name)
        if est is None:
            est = self._distinct[name] = sketch.estimate(self.cols[f"hll_{name}"])
        return est

    def subset(self, idx: np.ndarray) -> StateView:
        """The view's rows ``idx`` (positions in this view)."""
        return StateView({k: v[idx] for k, v in self.cols.items()}, [self.keys[i] for i in idx])


class EntityState:
    """Growing table of per-entity aggregates, updated by micro-batch."""

    SCALARS = (
        "n",
        *SUMS,
        *HIGHS,
        "out_tokens",
        "first_ts",
        "last_ts",
        "active_days",
        "last_day",
        "day_count",
        "max_day_count",
        "gap_n",
        "gap_log_sum",
        "gap_log_sq",
    )
    # account profile (from the accounts side table); NaN = unknown
    PROFILE = (
        "tier",
        "verified",
        "created_ms",
        "reseller",
        "log_start_ms",  # when the observed log began (for dormancy)
        "first_review_ms",
        "first_enforce_ms",
    )

    def __init__(self, capacity: int = 1024) -> None:
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self._cap = 0
        self.cols: dict[str, np.ndarray] = {}
        self._grow(capacity)

    def __len__(self) -> int:
        return len(self.keys)

    def _grow(self, capacity: int) -> None:
        def resize(a: np.ndarray | None, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            out: np.ndarray = np.zeros(shape, dtype=dtype)
            if a is not None:
                out[: a.shape[0]] = a
            return out

        old = self.cols
        for name in self.SCALARS:
            self.cols[name] = resize(old.get(name), (capacity,), np.float64)
        for name in self.PROFILE:
            col = np.full(capacity, np.nan)
            if name in old:
                col[: old[name].shape[0]] = old[name]
            self.cols[name] = col
        self.cols["cap"] = resize(old.get("cap"), (capacity, N_CAP), np.float64)
        self.cols["hours"] = resize(old.get("hours"), (capacity, 24), np.float64)
        for s in SKETCHES:
            self.cols[f"hll_{s}"] = resize(old.get(f"hll_{s}"), (capacity, sketch.M), np.uint8)
        self._cap = capacity

    def rows_for(self, keys: pl.Series | Sequence[str | None]) -> np.ndarray:
        """Row index per key (-1 for a null key), creating rows for new keys."""
        arr = keys.to_list() if isinstance(keys, pl.Series) else keys
        get = self.index.get
        out = np.fromiter((get(k, -1) for k in arr), dtype=np.int64, count=len(arr))  # type: ignore[arg-type]
        missing = np.flatnonzero(out < 0)
        if len(missing):
            for i in missing.tolist():
                k = arr[i]
                if k is None:
                    continue
                row = self.index.get(k)
                if row is None:
                    row = len(self.keys)
                    self.index[k] = row
                    self.keys.append(k)
                out[i] = row
            if len(self.keys) > self._cap:
                self._grow(max(len(self.keys), 2 * self._cap))
        return out

    def update(self, feat: Features, keys: pl.Series | Sequence[str | None]) -> np.ndarray:
        """Fold a batch of feature rows into the state; returns the touched rows.

        Rows whose key is null (e.g. no end user) are skipped. ``feat`` is a
        feature frame or its NumPy columns (see features.columns). Columns are
        taken out of Polars once and everything else is NumPy, so a batch of
        one costs little more than its fixed overhead.
        """
        rows = self.rows_for(keys)
        keep = rows >= 0
        if not keep.any():
            return np.zeros(0, dtype=np.int64)
        sel = None if keep.all() else np.flatnonzero(keep)

        def col(name: str) -> np.ndarray:
            a = column(feat, name)
            return a if sel is None else a[sel]

        if sel is not None:
            rows = rows[sel]
        c = self.cols
        ts = col("ts").astype("datetime64[ms]").astype(np.int64)
        order = np.lexsort((ts, rows))
        rows_s, ts_s = rows[order], ts[order]
        # np.unique(rows_s, return_index=True, return_counts=True) of the sorted rows
        first = np.empty(len(rows_s), dtype=bool)
        first[:1] = True
        np.not_equal(rows_s[1:], rows_s[:-1], out=first[1:])
        starts = first.nonzero()[0]
        touched = rows_s[starts]
        counts = _lengths(starts, len(rows_s))
        c["n"][touched] += counts
        # the summed columns as the rows of one float64 matrix, summed per entity
        # by one reduceat (row by row the same sums as one reduceat per column)
        summed = (*SUMS, *HIGHS, "out_tokens")
        vals = np.empty((len(summed), len(ts)))
        for j, src in enumerate(SUMS.values()):
            vals[j] = col(src)
        for j, (src, thr) in enumerate(HIGHS.values(), len(SUMS)):
            vals[j] = col(src) >= thr
        vals[-1] = col("output_tokens")
        sums = np.add.reduceat(vals[:, order], starts, axis=1)
        for j, name in enumerate(summed):
            c[name][touched] += sums[j]
        cap = col("capability")[order].astype(np.int64)
        np.add.at(c["cap"], (rows_s, cap), 1.0)
        np.add.at(c["hours"], (rows_s, (ts_s // 3_600_000) % 24), 1.0)
        self._update_time(touched, starts, counts, rows_s, ts_s)
        sketch.update_many(
            [c[f"hll_{name}"] for name in SKETCHES], rows, [col(src) for src in SKETCHES.values()]
        )
        return touched

    def _update_time(
        self,
        touched: np.ndarray,
        starts: np.ndarray,
        counts: np.ndarray,
        rows_s: np.ndarray,
        ts_s: np.ndarray,
    ) -> None:
        c = self.cols
        new = c["n"][touched] == counts
        c["first_ts"][touched[new]] = ts_s[starts[new]]
        prev_last = c["last_ts"][rows_s]
        prev = np.empty_like(ts_s, dtype=np.float64)
        prev[1:] = ts_s[:-1]
        prev[starts] = prev_last[starts]
        valid = np.ones(len(ts_s), dtype=bool)
        valid[starts[new]] = False
        gaps = np.log1p(np.maximum(ts_s - prev, 0) / 1000.0)
        gaps_v = np.where(valid, gaps, 0.0)
        c["gap_n"][touched] += np.add.reduceat(valid.astype(np.float64), starts)
        c["gap_log_sum"][touched] += np.add.reduceat(gaps_v, starts)
        c["gap_log_sq"][touched] += np.add.reduceat(gaps_v * gaps_v, starts)
        ends = starts + counts - 1
        c["last_ts"][touched] = np.maximum(c["last_ts"][touched], ts_s[ends])
        # active days and busiest day: (entity, day) groups of the sorted batch
        day = ts_s // MS_PER_DAY
        new_group = np.empty(len(day), dtype=bool)
        new_group[:1] = True
        np.logical_or(day[1:] != day[:-1], rows_s[1:] != rows_s[:-1], out=new_group[1:])
        g_start = new_group.nonzero()[0]
        g_rows, g_day = rows_s[g_start], day[g_start]
        g_cnt = _lengths(g_start, len(day)).astype(np.float64)
        carried = np.where(g_day == c["last_day"][g_rows], c["day_count"][g_rows], 0.0)
        g_total = g_cnt + carried
        row_first = np.empty(len(g_rows), dtype=bool)
        row_first[:1] = True
        np.not_equal(g_rows[1:], g_rows[:-1], out=row_first[1:])
        r_start = row_first.nonzero()[0]
        r_end = r_start + _lengths(r_start, len(g_rows)) - 1
        c["max_day_count"][touched] = np.maximum(
            c["max_day_count"][touched], np.maximum.reduceat(g_total, r_start)
        )
        c["day_count"][touched] = g_total[r_end]
        fresh = (g_day > c["last_day"][g_rows]).astype(np.float64)
        c["active_days"][touched] += np.add.reduceat(fresh, r_start)
        c["last_day"][touched] = np.maximum(c["last_day"][touched], g_day[r_end])

    def set_profile(self, rows: np.ndarray, profile: dict[str, np.ndarray]) -> None:
        """Attach account-table facts (tier code, verified, created_ms, reseller)."""
        for name, values in profile.items():
            self.cols[name][rows] = values

    def view(self, rows: np.ndarray) -> StateView:
        """State of the given rows (copies), for signals and scoring."""
        cols = {k: v[rows] for k, v in self.cols.items()}
        return StateView(cols, [self.keys[i] for i in rows])
