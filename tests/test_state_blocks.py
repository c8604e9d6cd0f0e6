"""The block layout of EntityState folds exactly what the column-by-column fold did.

``EntityState`` keeps an entity's float columns in one row of a matrix and its
sketches in one block, folds a batch through one gather and one write back of
the touched rows, and skips the grouping work that is a no-op when every
entity has one row in the batch (always so for the gateway's batches of one).
``_reference_update`` below is the fold as it was before (one NumPy array per
column, ``np.lexsort`` / ``reduceat`` for every batch): both must leave
bit-identical state on batches of one, of distinct entities, and of entities
with several rows over several days, null keys included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from distillwatch.features.columns import column
from distillwatch.signals import sketch
from distillwatch.signals.state import (
    COLUMNS,
    HIGHS,
    MS_PER_DAY,
    N_CAP,
    SKETCHES,
    SUMS,
    BlockColumns,
    EntityState,
    StateView,
)

T0 = 1_767_225_600_000


def _lengths(starts: np.ndarray, n: int) -> np.ndarray:
    return np.diff(np.append(starts, n))


def _reference_update(st: EntityState, c: dict[str, np.ndarray], feat: Any, keys: Any) -> None:
    """The fold before the block layout, on separate column arrays ``c``
    (rows numbered by ``st.rows_for``, which the caller has already run)."""
    arr = keys.to_list() if isinstance(keys, pl.Series) else keys
    rows = np.array([-1 if k is None else st.index[k] for k in arr], dtype=np.int64)
    keep = rows >= 0
    if not keep.any():
        return
    sel = None if keep.all() else np.flatnonzero(keep)

    def col(name: str) -> np.ndarray:
        a = column(feat, name)
        return a if sel is None else a[sel]

    if sel is not None:
        rows = rows[sel]
    ts = col("ts").astype("datetime64[ms]").astype(np.int64)
    order = np.lexsort((ts, rows))
    rows_s, ts_s = rows[order], ts[order]
    first = np.empty(len(rows_s), dtype=bool)
    first[:1] = True
    np.not_equal(rows_s[1:], rows_s[:-1], out=first[1:])
    starts = first.nonzero()[0]
    touched = rows_s[starts]
    counts = _lengths(starts, len(rows_s))
    c["n"][touched] += counts
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
    # time statistics
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
    for name, src in SKETCHES.items():
        sketch.update(c[f"hll_{name}"], rows, col(src))


def _reference_columns(capacity: int) -> dict[str, np.ndarray]:
    out = {}
    for name in EntityState.SCALARS:
        out[name] = np.zeros(capacity)
    for name in EntityState.PROFILE:
        out[name] = np.full(capacity, np.nan)
    out["cap"] = np.zeros((capacity, N_CAP))
    out["hours"] = np.zeros((capacity, 24))
    for s in SKETCHES:
        out[f"hll_{s}"] = np.zeros((capacity, sketch.M), dtype=np.uint8)
    return out


def _batch(rng: np.random.Generator, n: int, t: int, accounts: int, as_frame: bool) -> Any:
    """n feature rows at or after ``t`` over ``accounts`` accounts (some null keys)."""
    ts = t + np.sort(rng.integers(0, 3 * MS_PER_DAY, n))
    if rng.random() < 0.3:  # equal timestamps
        ts[:] = ts[0]
    keys = [None if rng.random() < 0.1 else f"a{rng.integers(accounts)}" for _ in range(n)]
    cols: dict[str, Any] = {
        "ts": ts.astype("datetime64[ms]"),
        "cot": rng.choice([0.0, 0.74, 0.75, 0.9, 1.0], n).astype(np.float32),
        "rubric": rng.random(n).astype(np.float32),
        "datagen": rng.choice([0.0, 0.49, 0.5, 0.9], n).astype(np.float32),
        "capability": rng.integers(0, N_CAP, n).astype(np.int8),
        "output_tokens": rng.integers(0, 5000, n).astype(np.int32),
    }
    for src in SUMS.values():
        if src != "cot":
            cols[src] = rng.random(n) < 0.5
    for src in SKETCHES.values():
        h = rng.integers(0, 2**63, n, dtype=np.uint64)
        h[rng.random(n) < 0.2] = 0  # no value
        cols[src] = h
    if as_frame:
        frame = pl.DataFrame(
            {
                k: (pl.Series(k, v).cast(pl.Datetime("ms", "UTC")) if k == "ts" else v)
                for k, v in cols.items()
            }
        )
        return frame, pl.Series("k", keys, dtype=pl.String)
    return cols, keys


@pytest.mark.parametrize("seed", range(24))
def test_block_fold_equals_the_column_fold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    st = EntityState(capacity=2)  # grows while folding
    ref = _reference_columns(4096)
    t = T0
    for step in range(40):
        shape = step % 4
        n = [1, 1, int(rng.integers(2, 6)), int(rng.integers(2, 40))][shape]
        accounts = [30, 3, 60, 5][shape]  # batches of distinct entities and of repeats
        feat, keys = _batch(rng, n, t, accounts, as_frame=seed % 2 == 1)
        t += int(rng.integers(0, 2 * MS_PER_DAY))
        touched = st.update(feat, keys)
        _reference_update(st, ref, feat, keys)
        want = sorted(
            {
                st.index[k]
                for k in (keys.to_list() if isinstance(keys, pl.Series) else keys)
                if k is not None
            }
        )
        assert sorted(touched.tolist()) == want
    k = len(st)
    for name in COLUMNS:
        a, b = st.cols[name][:k], ref[name][:k]
        assert a.dtype == b.dtype, name
        assert a.tobytes() == np.ascontiguousarray(b).tobytes(), name


def test_block_columns_are_views_of_the_blocks() -> None:
    st = EntityState(capacity=3)
    rows = st.rows_for(["x", "y"])
    st.set_profile(rows, {"tier": np.array([2.0, 3.0])})
    st.cols["cap"][rows[1], 4] = 5.0
    st.cols["hll_ips"][rows[0], 7] = 9
    assert st.num[rows[0], list(COLUMNS).index("tier")] == 2.0
    st.rows_for([f"k{i}" for i in range(10)])  # grows: columns follow the new blocks
    assert st.cols["tier"][rows[1]] == 3.0 and st.cols["cap"][rows[1], 4] == 5.0
    assert np.isnan(st.cols["tier"][5])
    v = st.view(rows[::-1])
    assert isinstance(v.cols, BlockColumns)
    assert list(v.cols) == list(COLUMNS) and len(v.cols) == len(COLUMNS)
    assert v["hll_ips"][1, 7] == 9 and v["cap"][0, 4] == 5.0
    assert v.keys == ["y", "x"]
    with pytest.raises(KeyError):
        v["nope"]
    sub = v.subset(np.array([1]))
    assert sub.keys == ["x"] and sub["tier"][0] == 2.0
    np.testing.assert_array_equal(v.block(["tier", "n"]), np.stack([v["tier"], v["n"]], axis=1))
    plain = StateView({k: np.array(a) for k, a in v.cols.items()}, v.keys)
    np.testing.assert_array_equal(plain.block(["tier", "n"]), v.block(["tier", "n"]))


@pytest.mark.parametrize("entities", [1, 3, 100])
def test_distinct_many_equals_distinct(entities: int) -> None:
    rng = np.random.default_rng(entities)
    st = EntityState(capacity=entities)
    rows = st.rows_for([str(i) for i in range(entities)])
    st.hll[rows] = rng.integers(0, 30, st.hll[rows].shape).astype(np.uint8)
    st.hll[rows[0], 1] = 0  # an empty sketch
    names = list(SKETCHES)
    many, one = st.view(rows), st.view(rows)
    many.distinct_many(names[:5])
    for s in names:
        assert many.distinct(s).tobytes() == one.distinct(s).tobytes(), s
