"""OrderedWindows cuts the same windows as the feature store, or says the order broke."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.engine.ordered import OrderedWindows
from distillwatch.engine.store import FeatureStore

W = 600_000  # 10 minutes
BASE = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000)


def frame(ms: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series(ms.astype(np.int64)).cast(pl.Datetime("ms", "UTC")),
            "row": np.arange(len(ms)),
        }
    )


def store_windows(df: pl.DataFrame) -> list[tuple[int, list[int]]]:
    st_ = FeatureStore(":memory:")
    st_.append(df)
    return [(end, sorted(w["row"].to_list())) for end, w in st_.windows(W)]


def as_sets(ws: list[tuple[int, pl.DataFrame]]) -> list[tuple[int, list[int]]]:
    return [(end, sorted(w["row"].to_list())) for end, w in ws]


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 3 * W), min_size=1, max_size=200),
    jitter=st.lists(st.integers(0, W // 2), min_size=200, max_size=200),
    chunk=st.integers(1, 50),
)
def test_same_windows_as_the_store_within_lateness(
    gaps: list[int], jitter: list[int], chunk: int
) -> None:
    ms = BASE + np.cumsum(gaps)
    ms = ms + np.asarray(jitter[: len(ms)])  # out of order by less than the lateness
    df = frame(ms)
    cut = OrderedWindows(W, lateness_ms=W // 2)
    got: list[tuple[int, pl.DataFrame]] = []
    for i in range(0, df.height, chunk):
        ready = cut.push(df[i : i + chunk])
        assert ready is not None
        got += ready
    got += cut.finish()
    assert as_sets(got) == store_windows(df)
    for _, w in got:  # time-sorted inside each window
        t = w["ts"].to_numpy()
        assert (t[1:] >= t[:-1]).all()


def test_event_in_a_released_window_breaks_the_order() -> None:
    cut = OrderedWindows(W, lateness_ms=0)
    assert cut.push(frame(np.array([BASE, BASE + 1000]))) == []
    out = cut.push(frame(np.array([BASE + 2 * W + 5])))
    assert out is not None and [end for end, _ in out] == [(BASE // W + 1) * W]
    assert cut.push(frame(np.array([BASE + W - 1]))) is None  # that window is gone


def test_lateness_keeps_windows_open() -> None:
    cut = OrderedWindows(W, lateness_ms=W)
    assert cut.push(frame(np.array([BASE, BASE + W + 10]))) == []
    assert cut.push(frame(np.array([BASE + 5]))) == []  # late but tolerated
    rest = cut.finish()
    assert [len(w) for _, w in rest] == [2, 1]


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        OrderedWindows(0)
