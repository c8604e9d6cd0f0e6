"""The Scorer's stacked pass gives exactly the per-signal results.

``score_many`` runs the element-wise steps of ``Signal.score`` once on the
stacked arrays of all signals, and the Scorer takes each group's noisy-OR as
one running product. Both must be bit-identical to scoring signal by signal
and multiplying in weight order, on states with NaN, infinities and -0.0.
"""

from __future__ import annotations

import numpy as np
import pytest

from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import GROUPS, Scorer
from distillwatch.signals import ALL_SIGNALS
from distillwatch.signals.base import ScorePlan, ShareSignal, Signal, ramp, score_many
from distillwatch.signals.harvest import CotElicitation
from distillwatch.signals.state import BlockColumns, EntityState, StateView

ODD = [0.0, -0.0, 1.0, 3.7, 25.0, 60.0, 100.0, 1e9, 1e-300, np.nan, np.inf, -np.inf]


def _view(rng: np.random.Generator, n: int, odd: bool, block: bool = False) -> StateView:
    """Random state of n entities; ``block``: as EntityState.view hands it out
    (columns of the float and sketch blocks), else a dict of arrays."""
    cols = {}
    for name, proto in EntityState(1).cols.items():
        shape = (n, *proto.shape[1:])
        if proto.dtype == np.uint8:
            cols[name] = rng.integers(0, 20, shape).astype(np.uint8)
        elif odd:
            cols[name] = rng.choice(ODD, size=shape).astype(proto.dtype)
        else:
            cols[name] = rng.uniform(0, 3000, shape).astype(proto.dtype)
    cols["tier"] = rng.choice([np.nan, 0, 1, 2, 3, 4, 5], size=n)
    cols["verified"] = rng.choice([np.nan, 0.0, 1.0], size=n)
    keys = [str(i) for i in range(n)]
    if not block:
        return StateView(cols, keys)
    st = EntityState(max(n, 1))
    rows = st.rows_for(keys)
    for name, a in cols.items():
        st.cols[name][rows] = a
    v = st.view(rows)
    assert isinstance(v.cols, BlockColumns)
    return v


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


class _OwnRamp(CotElicitation):
    """A share signal with its own suspicion: score_many must measure it with
    the share signals but not ramp it with the ramp signals."""

    name = "own_ramp"

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        return ramp(m, 0.05, 0.1) * 0.5


class _OwnShare(CotElicitation):
    """A share signal with its own measure: ramped stacked, measured alone."""

    name = "own_share"

    def measure(self, v: StateView) -> np.ndarray:
        return v["cot_hi"] / np.maximum(v["n"], 3.0)


def test_plan_stacks_plain_share_and_ramp_signals_only() -> None:
    signals = [cls() for cls in ALL_SIGNALS] + [_OwnRamp(), _OwnShare()]
    plan = ScorePlan(signals)
    shared = {signals[i].name for i in plan.share_rows.tolist()}
    ramped = {signals[i].name for i in plan.ramp_rows.tolist()}
    plain = {s.name for s in signals if type(s).__bases__ == (ShareSignal,)}
    assert shared == plain | {"own_ramp"}
    assert ramped == plain | {"own_share"} | {
        "capability_concentration",
        "timing_regularity",
        "template_reuse",
        "param_uniformity",
    }
    assert sorted(plan.measure_rows) == sorted(set(range(len(signals))) - set(plan.share_rows))
    assert sorted(plan.suspicion_rows) == sorted(set(range(len(signals))) - set(plan.ramp_rows))


class _SpyView(StateView):
    asked: set[str]

    def distinct(self, name: str) -> np.ndarray:
        self.asked.add(name)
        return super().distinct(name)


@pytest.mark.parametrize("cls", ALL_SIGNALS, ids=lambda c: c.name)
def test_signals_declare_the_sketches_they_read(cls: type[Signal]) -> None:
    v = _view(np.random.default_rng(5), 4, odd=False)
    spy = _SpyView(dict(v.cols), v.keys)
    spy.asked = set()
    s = cls()
    s.suspicion(spy, s.measure(spy))
    assert spy.asked <= set(cls.sketches), (spy.asked, cls.sketches)


@pytest.mark.parametrize("seed", range(40))
def test_score_many_equals_each_signal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [0, 1, 1, 2, 7, 30][seed % 6]
    v = _view(rng, n, odd=seed % 2 == 1, block=seed % 4 >= 2)
    signals = [cls() for cls in ALL_SIGNALS] + [_OwnRamp(), _OwnShare()]
    with np.errstate(all="ignore"):
        ms, ss = score_many(signals, v)
        for i, s in enumerate(signals):
            m, sc = s.score(v)
            assert _bits(ms[i]) == _bits(m), s.name
            assert _bits(ss[i]) == _bits(sc), s.name


@pytest.mark.parametrize("seed", range(20))
def test_scorer_groups_are_the_running_products(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    v = _view(rng, [1, 3, 12][seed % 3], odd=seed % 2 == 0, block=seed % 4 >= 2)
    settings = Settings.load()
    scorer = Scorer(settings)
    with np.errstate(all="ignore"):
        res = scorer.score(v)
        for g in GROUPS:
            keep = np.ones(len(v))
            for name, w in settings.weights.get(g, {}).items():
                _, s = scorer.by_name[name].score(v)
                keep *= 1.0 - w * s
            assert _bits(res.groups[g]) == _bits(1.0 - keep), g
