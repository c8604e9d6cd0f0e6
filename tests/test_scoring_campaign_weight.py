"""The campaign term in proportion to the campaign's margin over review
(``risk.campaign_full_at``), or to the member's own evasion score when that
is larger: a thin campaign does not enforce an aged account on one network,
and still enforces a disposable identity."""

from __future__ import annotations

import numpy as np

from distillwatch.scoring.config import ACTIONS, Settings
from distillwatch.scoring.risk import Scorer
from test_scoring_evasion import _view

OFF = {"risk": {"campaign_full_at": 0.0}}


def _score(settings: Settings, camp: float, **kw: bool) -> tuple[float, str]:
    res = Scorer(settings).score(_view(tier=0.0, **kw), np.array([camp]))
    return float(res.risk[0]), ACTIONS[int(res.action[0])]


def test_a_thin_campaign_does_not_enforce_a_steady_aged_member() -> None:
    on, off = Settings.load(), Settings.load(**OFF)
    assert on.risk["campaign_full_at"] > on.thresholds["review"]
    thin = on.thresholds["review"] + 0.02
    alone, _ = _score(on, 0.0, rotating=False, young=False)
    risk, action = _score(on, thin, rotating=False, young=False)
    full, full_action = _score(off, thin, rotating=False, young=False)
    assert alone <= risk < full
    assert ACTIONS.index(action) < ACTIONS.index("challenge") <= ACTIONS.index(full_action)


def test_a_thin_campaign_still_enforces_a_disposable_identity() -> None:
    on, off = Settings.load(), Settings.load(**OFF)
    thin = on.thresholds["review"] + 0.02
    risk, action = _score(on, thin, rotating=True, young=True)
    full, _ = _score(off, thin, rotating=True, young=True)
    steady, _ = _score(on, thin, rotating=False, young=False)
    assert risk > steady
    assert full - risk < 0.05  # most of the term: the evasion score is high
    assert ACTIONS.index(action) >= ACTIONS.index("challenge")


def test_a_campaign_at_full_weight_is_unchanged() -> None:
    on, off = Settings.load(), Settings.load(**OFF)
    for camp in (on.risk["campaign_full_at"], 0.9, 0.99):
        for kw in ({"rotating": False, "young": False}, {"rotating": True, "young": True}):
            assert _score(on, camp, **kw) == _score(off, camp, **kw)
    # and no campaign: nothing to weigh
    assert _score(on, 0.0, rotating=False, young=False) == _score(
        off, 0.0, rotating=False, young=False
    )
