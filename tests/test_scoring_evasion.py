"""The evasion x automation term of the risk: disposable identities (young
accounts, rotating networks) doing automated work move up; the tier prior
alone (who the customer is) does not take part in it."""

from __future__ import annotations

import numpy as np

from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import EVASION, Scorer
from distillwatch.signals import sketch
from distillwatch.signals.state import EntityState, StateView


def _view(rotating: bool, young: bool, tier: float, verified: bool = False) -> StateView:
    """One entity: 600 requests over 5 days, every hour of the day, a steady
    single-turn script (automation), no harvest cue."""
    st = EntityState(1)
    row = st.rows_for(["a"])
    n = 600.0
    first = 1_767_225_600_000.0
    st.cols["n"][row] = n
    st.cols["first_ts"][row] = first
    st.cols["last_ts"][row] = first + 5 * 86_400_000
    st.cols["created_ms"][row] = first - (1 if young else 400) * 86_400_000
    st.cols["log_start_ms"][row] = first
    st.cols["active_days"][row] = 5
    st.cols["max_day_count"][row] = 120
    st.cols["single_turn"][row] = n
    st.cols["hours"][row] = n / 24
    st.cols["tier"][row] = tier
    st.cols["verified"][row] = 1.0 if verified else 0.0
    # network prefixes seen (a HyperLogLog): one per request when rotating
    regs = np.zeros((1, sketch.M), dtype=np.uint8)
    k = int(n) if rotating else 1
    sketch.update(regs, np.zeros(k, np.int64), np.arange(1, k + 1, dtype=np.uint64))
    st.cols["hll_prefixes"][row] = regs
    return st.view(row)


def _risk(settings: Settings, v: StateView) -> float:
    return float(Scorer(settings).score(v).risk[0])


def test_evasion_with_automation_raises_risk_and_tier_alone_does_not() -> None:
    on = Settings.load()
    off = Settings.load(risk={"evasion_x_automation": 0.0})
    assert on.risk["evasion_x_automation"] > 0
    assert set(EVASION) <= set(on.weights["identity"])
    hydra = _view(rotating=True, young=True, tier=0.0)
    gain = _risk(on, hydra) - _risk(off, hydra)
    assert gain > 0.02, gain
    # the same script on an old account from one network: untouched
    steady = _view(rotating=False, young=False, tier=0.0)
    assert _risk(on, steady) == _risk(off, steady)


def test_a_verified_identity_is_not_disposable() -> None:
    """The term lifts an unverified account and leaves a verified one (same
    signals otherwise) exactly where it was."""
    on = Settings.load()
    off = Settings.load(risk={"evasion_x_automation": 0.0})
    plain = _view(rotating=True, young=True, tier=0.0)
    kyc = _view(rotating=True, young=True, tier=0.0, verified=True)
    assert _risk(on, plain) > _risk(off, plain) + 0.02
    assert _risk(on, kyc) == _risk(off, kyc)
