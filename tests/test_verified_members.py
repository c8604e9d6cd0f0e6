"""Verified members of a campaign (``actions.verified_campaign_cap``), end to end.

Eight young startup-programme accounts run one code-review job on public
tasks with one SDK configuration from rotating cloud egress, around the
clock: five unverified ones paying with one card (the farm), one verified
account paying with that card too, two verified accounts with their own
cards. Linked by content into one campaign, the verified account tied to the
farm by payment is enforced with it; the two tied by content alone have
their risk bounded by the larger of their own and the campaign's, and say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from distillwatch.engine.detect import detect
from distillwatch.scoring.config import ACTIONS, Settings
from distillwatch.scoring.risk import VERIFIED_MEMBER_REASON
from handmade import event, prompts

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
FARM = [f"farm_{k}" for k in range(5)]
OWN = ["kyc_own_0", "kyc_own_1"]


def _write(d: Path) -> None:
    rng = np.random.default_rng(11)
    tasks = prompts("mbpp")
    lines: list[bytes] = []
    accounts: list[dict[str, Any]] = []
    who = [(a, False, "pm_farm") for a in FARM] + [("kyc_paid", True, "pm_farm")]
    who += [(a, True, f"pm_{a}") for a in OWN]
    for k, (aid, verified, pay) in enumerate(who):
        accounts.append(
            {
                "account_id": aid,
                "created_at": T0 - (4 + k) * 86_400,
                "tier": "startup_program",
                "verified": verified,
                "payment_fingerprint": pay,
                "email_domain": f"{aid}.example.com",
            }
        )
        for i, t in enumerate(np.sort(T0 + rng.uniform(0, 2 * 86_400, 400))):
            body = "Review this function for bugs:\n" + tasks[int(rng.integers(len(tasks)))]
            ip = f"{3 + k}.{int(rng.integers(256))}.{int(rng.integers(256))}.9"
            lines.append(
                event(
                    f"{aid}-{i}",
                    aid,
                    t,
                    [{"role": "user", "content": body}],
                    {"temperature": 0, "max_tokens": 1024},
                    ip=ip,
                    out=int(rng.integers(150, 900)),
                )
            )
    (d / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (d / "accounts.jsonl").write_bytes(b"\n".join(orjson.dumps(a) for a in accounts) + b"\n")


def _run(d: Path, name: str, settings: Settings) -> dict[str, dict[str, Any]]:
    detect(d / "events.jsonl", d / name, d / "accounts.jsonl", settings=settings)
    recs = [orjson.loads(x) for x in (d / name / "accounts.jsonl").read_bytes().splitlines()]
    return {r["account_id"]: r for r in recs if r["end_user_id"] is None}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    d = tmp_path_factory.mktemp("verified")
    _write(d)
    on = _run(d, "on", Settings.load())
    off = _run(d, "off", Settings.load(actions={"verified_campaign_cap": False}))
    return on, off


def _signals(rec: dict[str, Any]) -> list[str]:
    return [r["signal"] for r in rec["reasons"]]


def test_the_job_is_one_campaign_and_the_farm_is_enforced(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    on, _ = runs
    camp = on["farm_0"]["campaign_id"]
    assert camp is not None
    assert {on[a]["campaign_id"] for a in [*FARM, "kyc_paid", *OWN]} == {camp}
    for a in FARM:
        assert ACTIONS.index(on[a]["action"]) >= ACTIONS.index("challenge"), on[a]


def test_a_verified_account_paying_with_the_farms_card_is_enforced_with_it(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    on, off = runs
    rec = on["kyc_paid"]
    assert VERIFIED_MEMBER_REASON not in _signals(rec)
    assert ACTIONS.index(rec["action"]) >= ACTIONS.index("challenge"), rec
    assert rec["action"] == off["kyc_paid"]["action"]


def test_verified_accounts_tied_by_content_alone_go_no_further_than_the_campaign(
    runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    on, off = runs
    for a in OWN:
        rec = on[a]
        assert VERIFIED_MEMBER_REASON in _signals(rec), rec
        assert rec["risk"] < off[a]["risk"]
        assert rec["risk"] < on["kyc_paid"]["risk"]
        # without the cap they are enforced like the account on the farm's card
        assert ACTIONS.index(off[a]["action"]) >= ACTIONS.index("challenge"), off[a]
        assert ACTIONS.index(rec["action"]) < ACTIONS.index(off[a]["action"])
