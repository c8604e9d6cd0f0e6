"""Proportion for verified identities in a campaign (``actions.verified_campaign_cap``):
an identity-verified member's risk is at most the larger of its own risk and its
campaign's; an unverified member with the same signals adds the two."""

from __future__ import annotations

import numpy as np
import pytest

from distillwatch.scoring.config import ACTIONS, Settings
from distillwatch.scoring.risk import VERIFIED_MEMBER_REASON, Scorer
from test_scoring_evasion import _view


def _one(settings: Settings, verified: bool, camp: float) -> tuple[float, str, list[str]]:
    scorer = Scorer(settings)
    res = scorer.score(
        _view(rotating=False, young=True, tier=0.0, verified=verified), np.array([camp])
    )
    signals = [r["signal"] for r in scorer.reasons(res, 0)]
    return float(res.risk[0]), ACTIONS[int(res.action[0])], signals


def test_a_campaign_bounds_a_verified_member_at_its_own_risk() -> None:
    s = Settings.load()
    assert s.verified_campaign_cap
    own, own_action, _ = _one(s, verified=True, camp=0.0)
    assert own_action == "allow"  # a steady script: nothing on its own
    # a campaign at challenge: the verified member goes as far, no further
    camp = 0.8
    risk, action, reasons = _one(s, verified=True, camp=camp)
    assert risk == pytest.approx(max(own, camp))
    assert action == "challenge"
    assert reasons[0] == VERIFIED_MEMBER_REASON
    # the same member unverified: campaign and own evidence add up
    risk_u, action_u, reasons_u = _one(s, verified=False, camp=camp)
    assert risk_u > camp + 0.1
    assert ACTIONS.index(action_u) > ACTIONS.index("challenge")
    assert VERIFIED_MEMBER_REASON not in reasons_u


def test_a_strong_campaign_still_enforces_its_verified_members() -> None:
    s = Settings.load()
    risk, action, _ = _one(s, verified=True, camp=0.985)
    assert risk >= 0.985 - 1e-9
    assert action == "block"


def test_the_cap_never_raises_risk_and_can_be_turned_off() -> None:
    on = Settings.load()
    off = Settings.load(actions={"verified_campaign_cap": False})
    assert not off.verified_campaign_cap
    for camp in (0.0, 0.3, 0.56, 0.8, 0.95):
        capped, _, _ = _one(on, verified=True, camp=camp)
        plain, _, reasons = _one(off, verified=True, camp=camp)
        assert capped <= plain
        assert VERIFIED_MEMBER_REASON not in reasons
    # off: the campaign and its own evidence add up as for anyone
    assert _one(off, verified=True, camp=0.8)[1] not in ("allow", "review", "challenge")
