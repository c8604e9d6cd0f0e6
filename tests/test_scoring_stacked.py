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
from distillwatch.signals.base import score_many
from distillwatch.signals.state import EntityState, StateView

ODD = [0.0, -0.0, 1.0, 3.7, 25.0, 60.0, 100.0, 1e9, 1e-300, np.nan, np.inf, -np.inf]


def _view(rng: np.random.Generator, n: int, odd: bool) -> StateView:
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
    return StateView(cols, [str(i) for i in range(n)])


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float64).tobytes()


@pytest.mark.parametrize("seed", range(40))
def test_score_many_equals_each_signal(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [0, 1, 1, 2, 7, 30][seed % 6]
    v = _view(rng, n, odd=seed % 2 == 1)
    signals = [cls() for cls in ALL_SIGNALS]
    with np.errstate(all="ignore"):
        ms, ss = score_many(signals, v)
        for i, s in enumerate(signals):
            m, sc = s.score(v)
            assert _bits(ms[i]) == _bits(m), s.name
            assert _bits(ss[i]) == _bits(sc), s.name


@pytest.mark.parametrize("seed", range(20))
def test_scorer_groups_are_the_running_products(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    v = _view(rng, [1, 3, 12][seed % 3], odd=seed % 2 == 0)
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
