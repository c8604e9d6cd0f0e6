"""One conformance suite that every signal class passes (river-style)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from distillwatch.signals import ALL_SIGNALS, Signal
from distillwatch.signals.state import SKETCHES, EntityState, StateView


def _random_view(n: int, seed: int) -> StateView:
    """A state built by folding random but well-formed feature rows."""
    rng = np.random.default_rng(seed)
    m = n * 40
    accounts = [f"a{i}" for i in rng.integers(0, n, m)]
    feat = pl.DataFrame(
        {
            "ts": pl.Series(np.sort(rng.integers(1.7e12, 1.7e12 + 5 * 86.4e6, m))).cast(
                pl.Datetime("ms", "UTC")
            ),
            "account_id": accounts,
            "cot": rng.random(m).astype(np.float32),
            "rubric": rng.random(m).astype(np.float32),
            "datagen": rng.random(m).astype(np.float32),
            "capability": rng.integers(0, 7, m).astype(np.int8),
            "output_tokens": rng.integers(0, 5000, m).astype(np.int32),
            **{
                c: rng.random(m) < 0.5
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
            **{src: rng.integers(0, 2**63, m, dtype=np.uint64) for src in SKETCHES.values()},
        }
    )
    st = EntityState(capacity=4)
    st.update(feat, feat["account_id"])
    rows = np.arange(len(st))
    st.set_profile(
        rows,
        {
            "tier": rng.integers(0, 6, len(rows)).astype(float),
            "verified": (rng.random(len(rows)) < 0.5).astype(float),
            "created_ms": np.full(len(rows), 1.69e12),
        },
    )
    return st.view(rows)


def _empty_view() -> StateView:
    st = EntityState(capacity=4)
    st.rows_for(pl.Series(["x", "y"]))
    return st.view(np.arange(2))


@pytest.mark.parametrize("cls", ALL_SIGNALS, ids=lambda c: c.name)
class TestSignalConformance:
    def test_declares_itself(self, cls: type[Signal]) -> None:
        assert cls.name and cls.group in ("harvest", "automation", "identity")
        doc = cls.__doc__ or ""
        assert "Catches" in doc and "Misses" in doc, "docstring must say what it catches and misses"

    def test_scores_in_unit_interval_and_aligned(self, cls: type[Signal]) -> None:
        v = _random_view(50, 1)
        m, s = cls().score(v)
        assert m.shape == s.shape == (len(v),)
        assert np.all(np.isfinite(m)) and np.all((s >= 0) & (s <= 1))

    def test_deterministic(self, cls: type[Signal]) -> None:
        a = cls().score(_random_view(30, 2))
        b = cls().score(_random_view(30, 2))
        np.testing.assert_array_equal(a[1], b[1])

    def test_silent_without_evidence(self, cls: type[Signal]) -> None:
        _, s = cls().score(_empty_view())
        assert np.all(s == 0)

    def test_row_independent(self, cls: type[Signal]) -> None:
        v = _random_view(40, 3)
        _, full = cls().score(v)
        sub = StateView({k: a[5:9] for k, a in v.cols.items()})
        _, part = cls().score(sub)
        np.testing.assert_allclose(part, full[5:9])

    def test_detail_is_text(self, cls: type[Signal]) -> None:
        assert isinstance(cls().detail(0.5), str) and cls().detail(0.5)
