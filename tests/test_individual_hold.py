"""Individuals are held at review on their own traffic (``actions.individual_*``).

A student who puts "Show your work." under every homework question (GSM8K, a
free-tier account, one home address, a few dozen questions a day at random times)
asks what a chain-of-thought harvester asks, in the same words. At that scale it is
reviewed, with an ``individual_scale`` reason, and never enforced, not even for a
moment of the replay; with the hold off the same account is enforced. The same
content is enforced when the traffic is not one person's: from a new network for
every request, at bulk volume from one address, paced by a script around the clock,
or taking long reasoning answers by the hundred thousand tokens a day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from distillwatch.engine.detect import detect
from distillwatch.scoring.config import ConfigError, Settings
from distillwatch.scoring.risk import INDIVIDUAL_REASON
from handmade import event, prompts

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAYS = 5


def _student_times(rng: np.random.Generator, per_day: int) -> np.ndarray:
    """Random times within 08:00-20:00 on each of DAYS days."""
    days = [T0 + d * 86_400 + 8 * 3600 + rng.uniform(0, 12 * 3600, per_day) for d in range(DAYS)]
    return np.sort(np.concatenate(days))


HOMES = {
    "student": "198.51.100.23",
    "bulk": "203.0.113.40",
    "paced": "192.0.2.77",
    "longreads": "198.18.0.5",
}


def _workload(
    aid: str, times: np.ndarray, rotating: bool, *sources: str, out: int = 400
) -> list[bytes]:
    """Questions from ``sources`` of the packaged sample, each followed by the demand
    (each account its own sources: shared questions would link them into one campaign)."""
    pool = [p for s in sources for p in prompts(s)]
    lines = []
    for i, t in enumerate(times):
        body = f"{pool[i % len(pool)]}\n\nShow your work."
        ip = f"10.{i % 250}.{i // 250}.9" if rotating else HOMES[aid]
        msgs = [{"role": "user", "content": body}]
        params = {"max_tokens": 8192}
        lines.append(event(f"{aid}-{i}", aid, float(t), msgs, params, ip=ip, out=out))
    return lines


def _account(aid: str, k: int) -> dict[str, Any]:
    """Unrelated accounts: own sign-up day, payment and e-mail domain."""
    return {
        "account_id": aid,
        "created_at": T0 - (100 + 37 * k) * 86_400,
        "tier": "free",
        "verified": False,
        "payment_fingerprint": f"pm_{aid}",
        "email_domain": f"{aid}.example.org",
    }


def _run(d: Path, settings: Settings | None) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(2)
    lines = _workload("student", _student_times(rng, 30), False, "gsm8k")
    lines += _workload("rotating", _student_times(rng, 30), True, "flan_cot")
    lines += _workload("bulk", _student_times(rng, 300), False, "gpteacher", "t0_templated")
    # a script: every 30 minutes around the clock, a few seconds of jitter
    paced = T0 + np.arange(DAYS * 48) * 1800.0 + rng.uniform(0, 5, DAYS * 48)
    lines += _workload("paced", paced, False, "math_cot_problems")
    # a person's pace, but 4,000-token reasoning answers: 120,000 tokens a day
    lines += _workload("longreads", _student_times(rng, 30), False, "humaneval", out=4000)
    lines.sort(key=lambda b: orjson.loads(b)["ts"])
    (d / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    acc = d / "accounts.jsonl"
    names = ("student", "rotating", "bulk", "paced", "longreads")
    acc.write_bytes(b"".join(orjson.dumps(_account(a, k)) + b"\n" for k, a in enumerate(names)))
    detect(d / "events.jsonl", d / "out", acc, settings=settings, workers=1)
    rows = [orjson.loads(x) for x in (d / "out" / "accounts.jsonl").read_bytes().splitlines()]
    return {r["account_id"]: r for r in rows if r.get("end_user_id") is None}


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _run(tmp_path_factory.mktemp("individual_on"), None)


@pytest.fixture(scope="module")
def unheld(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _run(
        tmp_path_factory.mktemp("individual_off"),
        Settings.load(actions={"individual_max_daily": 0}),
    )


def _signals(r: dict[str, Any]) -> list[str]:
    return [x["signal"] for x in r["reasons"]]


def test_student_is_reviewed_and_never_enforced(held: dict[str, dict[str, Any]]) -> None:
    r = held["student"]
    assert r["action"] == "review"
    assert r["first_enforce_ts"] is None
    assert _signals(r)[0] == INDIVIDUAL_REASON
    assert "cot_elicitation" in _signals(r)


def test_without_the_hold_the_student_is_enforced(unheld: dict[str, dict[str, Any]]) -> None:
    r = unheld["student"]
    assert r["action"] in ("challenge", "degrade", "block")
    assert INDIVIDUAL_REASON not in _signals(r)


@pytest.mark.parametrize("aid", ["rotating", "bulk", "paced", "longreads"])
def test_the_same_content_at_no_individuals_scale_is_enforced(
    held: dict[str, dict[str, Any]], aid: str
) -> None:
    r = held[aid]
    assert r["action"] in ("challenge", "degrade", "block"), (aid, r["reasons"])
    assert INDIVIDUAL_REASON not in _signals(r)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="individual_max_evasion"):
        Settings.load(actions={"individual_max_evasion": 2})
    with pytest.raises(ConfigError, match="individual_max_daily"):
        Settings.load(actions={"individual_max_daily": -1})
