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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

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
HIGHS: dict[str, tuple[str, float]] = {
    "cot_hi": ("cot", 0.75),
    "rubric_hi": ("rubric", 0.5),
    "datagen_hi": ("datagen", 0.5),
}
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


# --- layout ------------------------------------------------------------------
#
# Every float column of an entity lives in one row of a float64 matrix
# (``EntityState.num``: the scalars, the profile, then the capability and
# hour-of-day histograms) and every HyperLogLog sketch in one uint8 block
# (``EntityState.hll``, entities x sketches x registers). ``cols`` maps each
# column name to its view of these blocks, so code reading or writing named
# columns is unchanged, while a fold or a view of a few entities moves whole
# rows: one gather instead of one per column. For one entity (the gateway's
# batches of one) that fixed per-call cost was most of the work.

SCALARS: tuple[str, ...] = (
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
PROFILE: tuple[str, ...] = (
    "tier",
    "verified",
    "created_ms",
    "reseller",
    "log_start_ms",  # when the observed log began (for dormancy)
    "first_review_ms",
    "first_enforce_ms",
)
# histogram columns of the float block: name -> width
WIDE: dict[str, int] = {"cap": N_CAP, "hours": 24}


def _layout() -> tuple[dict[str, int | slice], int]:
    where: dict[str, int | slice] = {}
    for j, name in enumerate((*SCALARS, *PROFILE)):
        where[name] = j
    at = len(SCALARS) + len(PROFILE)
    for name, width in WIDE.items():
        where[name] = slice(at, at + width)
        at += width
    return where, at


# float block: column name -> its index (or slice) in a row; NUM_WIDTH columns
NUM_AT, NUM_WIDTH = _layout()
HLL_AT: dict[str, int] = {f"hll_{s}": j for j, s in enumerate(SKETCHES)}
COLUMNS: tuple[str, ...] = (*NUM_AT, *HLL_AT)
_S: dict[str, int] = {name: j for j, name in enumerate(SCALARS)}
N_SCALARS = len(SCALARS)
# the columns a fold sums per entity, in block order after "n"
SUMMED: tuple[str, ...] = (*SUMS, *HIGHS, "out_tokens")
_SUMMED = slice(_S["n"] + 1, _S["n"] + 1 + len(SUMMED))
assert [_S[c] for c in SUMMED] == list(range(_SUMMED.start, _SUMMED.stop))
# the runs of a batch of one (read-only: shared by every such batch)
_ONE_RUN = np.zeros(1, dtype=np.int64)
_ONE_COUNT = np.ones(1, dtype=np.int64)
_ONE_RUN.flags.writeable = False
_ONE_COUNT.flags.writeable = False


def _block_view(num: np.ndarray, hll: np.ndarray, name: str) -> np.ndarray:
    """Column ``name``: a view into the float block or the sketch block."""
    at = NUM_AT.get(name)
    if at is not None:
        return num[:, at]
    return hll[:, HLL_AT[name]]


class BlockColumns(dict[str, np.ndarray]):
    """Named column views of a few entities' float and sketch blocks.

    A dict that makes each view the first time it is asked for (``__missing__``),
    so a lookup costs what a plain dict's does and a view of one entity does
    not build views nobody reads; iterating or sizing it makes them all.
    """

    __slots__ = ("hll", "num")

    def __init__(self, num: np.ndarray, hll: np.ndarray) -> None:
        super().__init__()
        self.num = num
        self.hll = hll

    def __missing__(self, name: str) -> np.ndarray:
        if name not in NUM_AT and name not in HLL_AT:
            raise KeyError(name)
        v = self[name] = _block_view(self.num, self.hll, name)
        return v

    def _all(self) -> None:
        if dict.__len__(self) < len(COLUMNS):
            for name in COLUMNS:
                self.__getitem__(name)  # makes the view

    def __iter__(self) -> Iterator[str]:
        self._all()
        return super().__iter__()

    def __len__(self) -> int:
        return len(COLUMNS)

    def __contains__(self, name: object) -> bool:
        return name in NUM_AT or name in HLL_AT

    def keys(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().keys()

    def values(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().values()

    def items(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().items()

    def get(self, name: str, default: np.ndarray | None = None) -> np.ndarray | None:  # type: ignore[override]
        # dict.get would not call __missing__
        try:
            return self[name]
        except KeyError:
            return default


@dataclass
class StateView:
    """Read-only columns of some entities' state, aligned row by row.

    ``cols`` is a plain mapping of column arrays, or (views made by
    :meth:`EntityState.view`) a :class:`BlockColumns`, whose :meth:`block`
    and :meth:`distinct_many` read several columns in one gather.
    """

    cols: dict[str, np.ndarray]
    keys: list[str] = field(default_factory=list)
    # distinct-count estimates already worked out (signals ask for some twice)
    _distinct: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def __len__(self) -> int:
        return len(self.cols["n"])

    def block(self, names: Sequence[str], at: np.ndarray | None = None) -> np.ndarray:
        """Float columns ``names`` side by side, (entities x names); ``at``: their
        indices in the float block (:func:`num_index`), when the caller has them."""
        cols = self.cols
        if isinstance(cols, BlockColumns):
            return cols.num[:, num_index(names) if at is None else at]
        return np.stack([np.asarray(cols[c], dtype=np.float64) for c in names], axis=1)

    def distinct(self, name: str) -> np.ndarray:
        """Distinct-count estimates of sketch ``name`` (computed once per view;
        callers must not write into the array)."""
        est = self._distinct.get(name)
        if est is None:
            est = self._distinct[name] = sketch.estimate(self.cols[f"hll_{name}"])
        return est

    def distinct_many(self, names: Sequence[str]) -> None:
        """Work out the estimates of several sketches at once (for :meth:`distinct`).

        Estimates are row-wise, so estimating the sketches' registers stacked
        gives each sketch the numbers it gets alone; a view of a few entities
        (the gateway's one) then pays one estimate's fixed cost, not one per
        sketch. Views of many entities estimate sketch by sketch (no stacked
        copy of all their registers)."""
        todo = [s for s in names if s not in self._distinct]
        cols = self.cols
        if len(todo) < 2 or not isinstance(cols, BlockColumns) or len(cols.num) > 64:
            for s in todo:
                self.distinct(s)
            return
        regs = cols.hll[:, _sketch_index(tuple(todo))]
        est = sketch.estimate(regs.reshape(-1, sketch.M)).reshape(len(regs), len(todo))
        for j, s in enumerate(todo):
            self._distinct[s] = est[:, j]

    def subset(self, idx: np.ndarray) -> StateView:
        """The view's rows ``idx`` (positions in this view)."""
        keys = [self.keys[i] for i in idx]
        cols = self.cols
        if isinstance(cols, BlockColumns):
            return StateView(BlockColumns(cols.num[idx], cols.hll[idx]), keys)
        return StateView({k: v[idx] for k, v in cols.items()}, keys)


@cache
def _sketch_index(names: tuple[str, ...]) -> np.ndarray:
    """Positions of sketches ``names`` in the sketch block."""
    out = np.array([HLL_AT[f"hll_{s}"] for s in names], dtype=np.intp)
    out.flags.writeable = False
    return out


@cache
def _num_index(names: tuple[str, ...]) -> np.ndarray:
    out = np.array([NUM_AT[c] for c in names], dtype=np.intp)
    out.flags.writeable = False
    return out


def num_index(names: Sequence[str]) -> np.ndarray:
    """Indices of float columns ``names`` in a row of the float block."""
    return _num_index(tuple(names))


class _Runs:
    """Runs of equal values in a sorted array: where each starts, how long it is,
    and reductions per run. When every run is one element long (each entity
    once in a batch, always so for a batch of one) a reduction over a run is
    that element, so the reductions hand back their input instead of calling
    NumPy's ``reduceat`` (the same values)."""

    __slots__ = ("counts", "n", "single", "starts")

    def __init__(self, starts: np.ndarray, n: int) -> None:
        self.starts = starts
        self.n = n
        self.single = len(starts) == n
        self.counts = _ONE_COUNT if n == 1 else _lengths(starts, n)

    @classmethod
    def of(cls, *keys: np.ndarray) -> _Runs:
        """Runs of equal tuples of ``keys`` (parallel arrays, sorted together)."""
        n = len(keys[0])
        if n == 1:
            return cls(_ONE_RUN, 1)
        # np.unique(..., return_index=True) of sorted keys, without its wrappers
        first = np.empty(n, dtype=bool)
        first[:1] = True
        np.not_equal(keys[0][1:], keys[0][:-1], out=first[1:])
        for k in keys[1:]:
            first[1:] |= k[1:] != k[:-1]
        return cls(first.nonzero()[0], n)

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Sum of each run (along the last axis); ``x`` itself when runs are single."""
        return x if self.single else np.add.reduceat(x, self.starts, axis=-1)

    def max(self, x: np.ndarray) -> np.ndarray:
        return x if self.single else np.maximum.reduceat(x, self.starts)

    def first(self, x: np.ndarray) -> np.ndarray:
        return x if self.single else x[self.starts]

    def last(self, x: np.ndarray) -> np.ndarray:
        return x if self.single else x[self.starts + self.counts - 1]


class EntityState:
    """Growing table of per-entity aggregates, updated by micro-batch."""

    SCALARS = SCALARS
    PROFILE = PROFILE

    def __init__(self, capacity: int = 1024) -> None:
        self.index: dict[str, int] = {}
        self.keys: list[str] = []
        self._cap = 0
        self.num = np.zeros((0, NUM_WIDTH))
        self.hll = np.zeros((0, len(SKETCHES), sketch.M), dtype=np.uint8)
        self.cols: dict[str, np.ndarray] = {}
        self._grow(capacity)

    def __len__(self) -> int:
        return len(self.keys)

    def _grow(self, capacity: int) -> None:
        num = np.zeros((capacity, NUM_WIDTH))
        num[:, N_SCALARS : N_SCALARS + len(PROFILE)] = np.nan
        hll = np.zeros((capacity, len(SKETCHES), sketch.M), dtype=np.uint8)
        had = len(self.num)
        num[:had] = self.num
        hll[:had] = self.hll
        self.num, self.hll = num, hll
        self.cols = {name: _block_view(num, hll, name) for name in COLUMNS}
        self._cap = capacity

    def rows_for(self, keys: pl.Series | Sequence[str | None]) -> np.ndarray:
        """Row index per key (-1 for a null key), creating rows for new keys."""
        arr = keys.to_list() if isinstance(keys, pl.Series) else keys
        get = self.index.get
        found = [get(k, -1) for k in arr]  # type: ignore[arg-type]
        if -1 in found:
            for i, row in enumerate(found):
                k = arr[i]
                if row >= 0 or k is None:
                    continue
                row = self.index.get(k, -1)
                if row < 0:
                    row = len(self.keys)
                    self.index[k] = row
                    self.keys.append(k)
                found[i] = row
            if len(self.keys) > self._cap:
                self._grow(max(len(self.keys), 2 * self._cap))
        return np.array(found, dtype=np.int64)

    def update(self, feat: Features, keys: pl.Series | Sequence[str | None]) -> np.ndarray:
        """Fold a batch of feature rows into the state; returns the touched rows.

        Rows whose key is null (e.g. no end user) are skipped. ``feat`` is a
        feature frame or its NumPy columns (see features.columns). Columns are
        taken out of Polars once and everything else is NumPy on the touched
        entities' rows of the float block (one gather, one write back), so a
        batch of one costs little more than its fixed overhead.
        """
        rows = self.rows_for(keys)
        kept = int(np.count_nonzero(rows >= 0))
        if kept == 0:
            return np.zeros(0, dtype=np.int64)
        sel = None if kept == len(rows) else np.flatnonzero(rows >= 0)

        def col(name: str) -> np.ndarray:
            a = column(feat, name)
            return a if sel is None else a[sel]

        if sel is not None:
            rows = rows[sel]
        ts = col("ts").astype("datetime64[ms]").astype(np.int64)
        if len(rows) == 1:  # one row is sorted already
            order = None
            rows_s, ts_s = rows, ts
        else:
            order = np.lexsort((ts, rows))
            rows_s, ts_s = rows[order], ts[order]
        runs = _Runs.of(rows_s)
        touched = runs.first(rows_s)
        # the summed columns as the rows of one float64 matrix, summed per entity
        # by one reduceat (row by row the same sums as one reduceat per column)
        vals = np.array(
            [
                *(col(src) for src in SUMS.values()),
                *(col(src) >= thr for src, thr in HIGHS.values()),
                col("output_tokens"),
            ],
            dtype=np.float64,
        )
        if order is not None:
            vals = vals[:, order]
        old = self.num[touched, :N_SCALARS]  # the entities' scalars before the batch
        new = old.copy()
        new[:, _S["n"]] += runs.counts
        new[:, _SUMMED] += runs.sum(vals).T
        self._update_time(old, new, runs, rows_s, ts_s)
        self.num[touched, :N_SCALARS] = new
        c = self.cols
        cap = col("capability").astype(np.int64)
        np.add.at(c["cap"], (rows_s, cap if order is None else cap[order]), 1.0)
        np.add.at(c["hours"], (rows_s, (ts_s // 3_600_000) % 24), 1.0)
        sketch.update_block(self.hll, rows, [col(src) for src in SKETCHES.values()])
        return touched

    @staticmethod
    def _update_time(
        old: np.ndarray, new: np.ndarray, runs: _Runs, rows_s: np.ndarray, ts_s: np.ndarray
    ) -> None:
        """Time statistics of ``new`` (touched entities' scalars, ``n`` already
        counted) from ``old`` (before the batch) and the sorted batch."""
        S = _S
        fresh = new[:, S["n"]] == runs.counts  # entities first seen in this batch
        new[fresh, S["first_ts"]] = runs.first(ts_s)[fresh]
        prev_last = old[:, S["last_ts"]]
        # previous event time of each row: the one before it, or its entity's last
        if runs.single:
            prev = prev_last
            valid = ~fresh
        else:
            prev = np.empty_like(ts_s, dtype=np.float64)
            prev[1:] = ts_s[:-1]
            prev[runs.starts] = prev_last
            valid = np.ones(len(ts_s), dtype=bool)
            valid[runs.starts[fresh]] = False
        gaps = np.log1p(np.maximum(ts_s - prev, 0) / 1000.0)
        gaps_v = np.where(valid, gaps, 0.0)
        new[:, S["gap_n"]] += runs.sum(valid.astype(np.float64))
        new[:, S["gap_log_sum"]] += runs.sum(gaps_v)
        new[:, S["gap_log_sq"]] += runs.sum(gaps_v * gaps_v)
        new[:, S["last_ts"]] = np.maximum(prev_last, runs.last(ts_s))
        # active days and busiest day: (entity, day) groups of the sorted batch
        day = ts_s // MS_PER_DAY
        if runs.single:  # each entity once: each row its own group
            groups, g_old, per_entity = runs, old, runs
        else:
            groups = _Runs.of(rows_s, day)
            g_rows = rows_s[groups.starts]
            per_entity = _Runs.of(g_rows)
            # the touched entity (position in old) of each group
            g_old = old[np.repeat(np.arange(len(old)), per_entity.counts)]
        g_day = groups.first(day)
        last_day = g_old[:, S["last_day"]]
        carried = np.where(g_day == last_day, g_old[:, S["day_count"]], 0.0)
        g_total = groups.counts.astype(np.float64) + carried
        new[:, S["max_day_count"]] = np.maximum(old[:, S["max_day_count"]], per_entity.max(g_total))
        new[:, S["day_count"]] = per_entity.last(g_total)
        new[:, S["active_days"]] += per_entity.sum((g_day > last_day).astype(np.float64))
        new[:, S["last_day"]] = np.maximum(old[:, S["last_day"]], per_entity.last(g_day))

    def set_profile(self, rows: np.ndarray, profile: dict[str, np.ndarray]) -> None:
        """Attach account-table facts (tier code, verified, created_ms, reseller)."""
        for name, values in profile.items():
            self.cols[name][rows] = values

    def view(self, rows: np.ndarray) -> StateView:
        """State of the given rows (copies), for signals and scoring."""
        return StateView(
            BlockColumns(self.num[rows], self.hll[rows]), [self.keys[i] for i in rows.tolist()]
        )
