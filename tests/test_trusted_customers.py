"""Trusted customers are held at review on their own traffic, not enforced.

Hand-written workloads that ask what harvesters ask: an LLM-as-judge eval
pipeline (grading responses against a rubric) and a tutoring product whose
system prompt says "think step by step". On a verified enterprise or research
account they go to an analyst (review, with a ``trusted_customer`` reason);
the same traffic on an unverified free account is enforced, and a trusted
account that shares a payment fingerprint with a harvesting farm is enforced
with the farm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from distillwatch.engine.detect import detect
from distillwatch.scoring.config import ConfigError, Settings
from handmade import event, prompts

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
TUTOR = (
    "You are a patient math tutor for high-school students. Think step by step and"
    " explain your reasoning clearly before giving the final answer."
)
JUDGE = (
    "You are an impartial judge. Evaluate the response below against the rubric:"
    " correctness (1-5), helpfulness (1-5), clarity (1-5). Give a score for each"
    " criterion and a one-line justification.\n\nQuestion: {q}\n\nResponse: {r}"
)
# the established customers' own pipelines (three unrelated customers with
# their own wording: customers sharing one public judge template are linked by
# it, which test_linking_* covers)
OWN_JUDGES = {
    "payg_judge": "Grade the answer for accuracy and helpfulness from 1 to 10, then justify"
    " the grade in one sentence.\n\nPrompt: {q}\n\nAnswer: {r}",
    "payg_rotating": "Evaluate the response against the rubric below and give it a score"
    " from 1 to 5 for correctness and for clarity.\n\nQuestion: {q}\n\nResponse: {r}",
    "payg_bulk": "You are evaluating a chatbot. Read the exchange and rate the reply's"
    " correctness and clarity, each on a 1-7 scale.\n\nUser: {q}\n\nChatbot: {r}",
}
ORCA = "You are an AI assistant. Think step-by-step and justify your steps. Write out your full reasoning."


def _rotating(i: int) -> str:
    """A new /24 for every request (a rotating proxy service)."""
    return f"10.{i % 250}.{i // 250}.9"


def _judge(
    aid: str,
    ip: str | None,
    n: int,
    rng: np.random.Generator,
    days: float = 1.0,
    template: str = JUDGE,
) -> list[bytes]:
    """An LLM-as-judge eval pipeline: n grading requests over ``days`` (ip None: rotating)."""
    gsm, chat = prompts("gsm8k"), prompts("awesome_chatgpt_prompts")
    out = []
    for i, t in enumerate(np.sort(T0 + rng.uniform(0, days * 86_400, n))):
        body = template.format(q=gsm[i % len(gsm)], r=chat[(7 * i) % len(chat)][:300])
        msgs = [{"role": "user", "content": body}]
        params = {"temperature": 0, "max_tokens": 256}
        out.append(event(f"{aid}-{i}", aid, t, msgs, params, ip=ip or _rotating(i), out=60))
    return out


def _workloads(acct: str, ip: str, n: int, rng: np.random.Generator) -> list[bytes]:
    """``acct``_judge and ``acct``_tutor principals: n requests each over a day."""
    gsm = prompts("gsm8k")
    out = _judge(f"{acct}_judge", ip, n, rng)
    for i, t in enumerate(np.sort(T0 + rng.uniform(0, 86_400, n))):
        msgs = [
            {"role": "system", "content": TUTOR},
            {"role": "user", "content": gsm[i % len(gsm)]},
        ]
        tutor, params = f"{acct}_tutor", {"max_tokens": 1024}
        out.append(
            event(f"{tutor}-{i}", tutor, t, msgs, params, ip=ip, out=int(rng.integers(150, 600)))
        )
    return out


def _account(aid: str, tier: str, verified: bool, pay: str, days_old: int) -> dict[str, Any]:
    return {
        "account_id": aid,
        "created_at": T0 - days_old * 86_400,
        "tier": tier,
        "verified": verified,
        "payment_fingerprint": pay,
        "email_domain": f"{aid}.example.com",
    }


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(5)
    d = tmp_path_factory.mktemp("trusted")
    lines = _workloads("ent", "198.51.100.7", 600, rng)
    lines += _workloads("free", "203.0.113.9", 600, rng)
    accounts = [
        _account("ent_judge", "enterprise", True, "pm_e1", 400),
        _account("ent_tutor", "research_program", True, "pm_e2", 200),
        _account("free_judge", "free", False, "pm_f1", 90),
        _account("free_tutor", "free", False, "pm_f2", 60),
    ]
    # a harvesting farm paying with the same card as one trusted account
    pool = prompts("gsm8k") + prompts("mbpp") + prompts("awesome_chatgpt_prompts")
    for k in range(4):
        aid = f"farm_{k}"
        accounts.append(_account(aid, "startup_program", False, "pm_farm", 20 + k))
        for i, t in enumerate(np.sort(T0 + rng.uniform(0, 86_400, 300))):
            msgs = [
                {"role": "system", "content": ORCA},
                {"role": "user", "content": pool[(i * 3 + k) % len(pool)]},
            ]
            params = {"max_tokens": 8000}
            lines.append(
                event(
                    f"{aid}-{i}", aid, t, msgs, params, ip=f"192.0.2.{k}", out=8000, finish="length"
                )
            )
    accounts.append(_account("ent_stolen", "enterprise", True, "pm_farm", 300))
    for i, t in enumerate(np.sort(T0 + rng.uniform(0, 86_400, 300))):
        msgs = [
            {"role": "system", "content": ORCA},
            {"role": "user", "content": pool[i % len(pool)]},
        ]
        lines.append(
            event(
                f"ent_stolen-{i}",
                "ent_stolen",
                t,
                msgs,
                {"max_tokens": 8000},
                ip="192.0.2.99",
                out=8000,
                finish="length",
            )
        )
    # established customers: verified pay-as-you-go accounts running the judge
    # pipeline from one network (held), through rotating proxies, and at a
    # bulk volume (both enforced)
    for aid, ip, n, days, age in (
        ("payg_judge", "100.64.1.20", 900, 3.0, 200),
        ("payg_rotating", None, 900, 3.0, 170),
        ("payg_bulk", "100.64.2.21", 3000, 1.0, 140),
    ):
        accounts.append(_account(aid, "pay_as_you_go", True, f"pm_{aid}", age))
        lines += _judge(aid, ip, n, rng, days, OWN_JUDGES[aid])
    # unrelated verified customers who all run the same public judge template
    # as ent_judge and free_judge (same client, same day): linked by content
    # into one campaign with the untrusted free_judge, never enforced for it
    for k in range(4):
        aid = f"public_judge_{k}"
        accounts.append(_account(aid, "pay_as_you_go", True, f"pm_{aid}", 90 + 37 * k))
        lines += _judge(aid, f"100.64.{10 + k}.5", 400, rng)
    (d / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (d / "accounts.jsonl").write_bytes(b"\n".join(orjson.dumps(a) for a in accounts) + b"\n")
    detect(d / "events.jsonl", d / "out", d / "accounts.jsonl")
    recs = [orjson.loads(x) for x in (d / "out" / "accounts.jsonl").read_bytes().splitlines()]
    return {r["account_id"]: r for r in recs if r["end_user_id"] is None}


PUBLIC = [f"public_judge_{k}" for k in range(4)]


@pytest.mark.parametrize("account", ["ent_judge", "ent_tutor", "payg_judge", *PUBLIC])
def test_trusted_customers_are_held_at_review(
    verdicts: dict[str, dict[str, Any]], account: str
) -> None:
    rec = verdicts[account]
    assert rec["action"] == "review", rec
    assert rec["first_enforce_ts"] is None
    held = [r for r in rec["reasons"] if r["signal"] == "trusted_customer"]
    assert held and held[0]["value"] >= 0.75  # its own risk would have enforced


@pytest.mark.parametrize("account", ["free_judge", "free_tutor", "payg_rotating", "payg_bulk"])
def test_the_same_traffic_untrusted_is_enforced(
    verdicts: dict[str, dict[str, Any]], account: str
) -> None:
    rec = verdicts[account]
    assert rec["action"] in ("challenge", "degrade", "block"), rec
    assert all(r["signal"] != "trusted_customer" for r in rec["reasons"])


def test_a_trusted_account_inside_a_farm_is_enforced(verdicts: dict[str, dict[str, Any]]) -> None:
    rec = verdicts["ent_stolen"]
    assert rec["campaign_id"] is not None, rec
    assert rec["action"] in ("challenge", "degrade", "block"), rec


def test_a_shared_public_template_links_but_does_not_enforce_accountable_customers(
    verdicts: dict[str, dict[str, Any]],
) -> None:
    """The judge template's users form one campaign with the untrusted
    free_judge (content, client and timing shared); only the untrusted one is
    enforced with it."""
    camp = verdicts["free_judge"]["campaign_id"]
    assert camp is not None
    assert {verdicts[a]["campaign_id"] for a in PUBLIC} == {camp}
    assert all(verdicts[a]["first_enforce_ts"] is None for a in PUBLIC)
    assert verdicts["free_judge"]["action"] in ("challenge", "degrade", "block")


def test_held_reasons_say_which_rule(verdicts: dict[str, dict[str, Any]]) -> None:
    detail = {
        a: next(r["detail"] for r in verdicts[a]["reasons"] if r["signal"] == "trusted_customer")
        for a in ("ent_judge", "payg_judge")
    }
    assert detail["ent_judge"].startswith("verified account on a trusted tier")
    assert detail["payg_judge"].startswith("verified, established account on one network")


def test_trusted_tiers_are_validated() -> None:
    with pytest.raises(ConfigError, match="trusted_tiers: unknown tier 'gold'"):
        Settings.load(actions={"trusted_tiers": ["gold"]})
    assert Settings.load(actions={"trusted_tiers": []}).trusted_tiers == ()
    with pytest.raises(ConfigError, match="established_tiers: unknown tier 'gold'"):
        Settings.load(actions={"established_tiers": ["gold"]})
    with pytest.raises(ConfigError, match="established_max_daily: must be a whole number"):
        Settings.load(actions={"established_max_daily": -1})
    with pytest.raises(ConfigError, match="established_max_prefixes: must be a whole number"):
        Settings.load(actions={"established_max_prefixes": "3"})
