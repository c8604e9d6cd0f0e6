"""Per-entity state: exact counters, time statistics, sketches, batch invariance."""

from __future__ import annotations

import numpy as np
import polars as pl

from distillwatch.signals import sketch
from distillwatch.signals.state import HIGHS, SKETCHES, EntityState

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _feat(ts_ms: list[int], accounts: list[str], cot: list[float] | None = None) -> pl.DataFrame:
    m = len(ts_ms)
    return pl.DataFrame(
        {
            "ts": pl.Series(ts_ms).cast(pl.Datetime("ms", "UTC")),
            "account_id": accounts,
            "cot": cot or [0.9] * m,
            "rubric": [0.1] * m,
            "datagen": [0.6] * m,
            "capability": pl.Series([1] * m, dtype=pl.Int8),
            "output_tokens": pl.Series([100] * m, dtype=pl.Int32),
            **{
                c: [True] * m
                for c in (
                    "single_turn",
                    "tool_use",
                    "maxlen_hit",
                    "long_request",
                    "prob_harvest",
                    "reasoning_harvest",
                    "new_model",
                )
            },
            **{src: pl.Series(list(range(1, m + 1)), dtype=pl.UInt64) for src in SKETCHES.values()},
        }
    )


def test_counters_and_times() -> None:
    st = EntityState(capacity=1)
    ts = [T0, T0 + 10_000, T0 + 20_000, T0 + 86_400_000 + 5]
    st.update(
        _feat(ts, ["a", "a", "b", "a"], cot=[0.9, 0.2, 0.7, 0.6]), pl.Series(["a", "a", "b", "a"])
    )
    v = st.view(np.array([st.index["a"], st.index["b"]]))
    np.testing.assert_array_equal(v["n"], [3, 1])
    thr = HIGHS["cot_hi"][1]
    expect = [sum(c >= thr for c in (0.9, 0.2, 0.6)), int(thr <= 0.7)]
    np.testing.assert_array_equal(v["cot_hi"], expect)
    np.testing.assert_array_equal(v["rubric_hi"], [0, 0])  # 0.1 < 0.5
    np.testing.assert_array_equal(v["datagen_hi"], [3, 1])  # 0.6 >= 0.5
    np.testing.assert_allclose(v["cot_sum"], [1.7, 0.7], rtol=1e-6)
    np.testing.assert_array_equal(v["first_ts"], [T0, T0 + 20_000])
    np.testing.assert_array_equal(v["last_ts"], [T0 + 86_400_000 + 5, T0 + 20_000])
    np.testing.assert_array_equal(v["active_days"], [2, 1])
    np.testing.assert_array_equal(v["gap_n"], [2, 0])
    assert v["cap"][0, 1] == 3 and v["hours"][0, 0] == 3


def test_batch_split_invariance() -> None:
    rng = np.random.default_rng(0)
    ts = np.sort(rng.integers(T0, T0 + 3 * 86_400_000, 400)).tolist()
    accts = [f"a{i}" for i in rng.integers(0, 7, 400)]
    whole = EntityState()
    whole.update(_feat(ts, accts), pl.Series(accts))
    split = EntityState()
    for lo, hi in ((0, 123), (123, 300), (300, 400)):
        split.update(_feat(ts[lo:hi], accts[lo:hi]), pl.Series(accts[lo:hi]))
    for key in whole.keys:
        a, b = whole.view(np.array([whole.index[key]])), split.view(np.array([split.index[key]]))
        for col in ("n", "cot_sum", "first_ts", "last_ts", "active_days", "gap_n", "max_day_count"):
            np.testing.assert_allclose(a[col], b[col], rtol=1e-9, err_msg=col)
        np.testing.assert_allclose(a["gap_log_sum"], b["gap_log_sum"], rtol=1e-9)


def test_hll_estimates() -> None:
    rng = np.random.default_rng(1)
    reg = np.zeros((3, sketch.M), dtype=np.uint8)
    sizes = (5, 200, 20_000)
    for row, k in enumerate(sizes):
        h = rng.integers(1, 2**63, k, dtype=np.uint64)
        sketch.update(reg, np.full(2 * k, row), np.r_[h, h])  # duplicates do not count
    est = sketch.estimate(reg)
    assert abs(est[0] - 5) < 1
    assert abs(est[1] - 200) / 200 < 0.35
    assert abs(est[2] - 20_000) / 20_000 < 0.35


def test_estimate_is_the_hll_formula() -> None:
    """sketch.estimate (table lookups) against the HLL estimate written out."""
    rng = np.random.default_rng(7)
    reg = rng.integers(0, 12, (400, sketch.M)).astype(np.uint8)
    reg[rng.random(reg.shape) < rng.random((400, 1))] = 0  # from all empty to none empty
    m = sketch.M
    raw = 0.697 * m * m / np.exp2(-reg.astype(np.float64)).sum(axis=1)
    zeros = (reg == 0).sum(axis=1)
    linear = m * np.log(m / np.maximum(zeros, 1))
    want = np.where((raw <= 2.5 * m) & (zeros > 0), linear, raw)
    got = sketch.estimate(reg)
    assert got.tobytes() == want.tobytes()
    assert sketch.estimate(reg.astype(np.float64)).tobytes() == want.tobytes()
    for i in range(0, 400, 37):  # one row at a time: the same numbers
        assert sketch.estimate(reg[i : i + 1]).tobytes() == want[i : i + 1].tobytes()


def test_register_updates_are_index_and_leading_zeros() -> None:
    """Register index and rank written out (with the zero word's rank spelled
    out) against sketch.register_updates, zero hash included."""
    from distillwatch.features.fingerprint import fmix64

    rng = np.random.default_rng(3)
    hashes = np.r_[np.zeros(1, np.uint64), rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64)]
    mixed = fmix64(hashes)
    w = mixed >> np.uint64(5)
    _, exp = np.frexp(w.astype(np.float64))
    want_rank = np.where(w == 0, 64 - 5 + 1, (64 - 5) - exp + 1).astype(np.uint8)
    idx, rank = sketch.register_updates(hashes)
    np.testing.assert_array_equal(idx, (mixed & np.uint64(31)).astype(np.int64))
    np.testing.assert_array_equal(rank, want_rank)
    assert rank[0] == 60
