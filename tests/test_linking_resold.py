"""Tooling groups inside a reseller (linking/resold.py).

Attacking end users hiding among a reseller's customers from the start of the
log share no templates for hours, and no activation cohort can be told from
the log's own start, but they send their pipeline's system prompt x parameter
configuration, which the reseller's other end users do not. Grouped on it,
their pooled traffic is a harvest and they are enforced together, long before
each reaches the per-entity evidence floor. Legitimate end users that share a
configuration (a reseller's app default, one tenant app's students starting
the same hour) are grouped or not, but never enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pytest

from distillwatch.engine.detect import detect
from distillwatch.linking.evidence import KIND_CODE
from distillwatch.linking.linker import link_params
from distillwatch.linking.resold import GroupParams, tooling_groups
from distillwatch.scoring.config import ConfigError, Settings
from handmade import event, prompts

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
HOUR = 3600
ORCA = "You are an AI assistant. Think step-by-step and justify your steps. Write out your full reasoning."
TUTOR = (
    "You are a patient math tutor for high-school students. Think step by step and"
    " explain your reasoning clearly before giving the final answer."
)
SDK = "You are a helpful assistant for AppCo customers. Answer step by step."
RT = KIND_CODE["reseller+tooling"]
P = GroupParams(max_share=0.5, min_members=3, min_share=0.5, min_keys=1)


def rows(pairs: list[tuple[int, int]], reseller: int = 1) -> dict[str, np.ndarray]:
    node, key = (np.array(c) for c in zip(*pairs, strict=True))
    return {
        "key": key.astype(np.uint64),
        "node": node.astype(np.int64),
        "a": np.full(len(key), reseller, np.uint64),
    }


def groups(
    rows: dict[str, np.ndarray], res: np.ndarray, cand: np.ndarray, p: GroupParams
) -> np.ndarray:
    labels, keys = tooling_groups(rows, res, cand, p)
    assert set(keys.tolist()) == set(rows["key"][labels[rows["node"]] >= 0].tolist())
    return labels


def test_end_users_sharing_a_minority_configuration_form_one_group() -> None:
    # 10 end users of reseller 1; nodes 0-3 share configuration 7, node 9 only 8
    pairs = [(n, 7) for n in range(4)] + [(n, 100 + n) for n in range(4, 10)] + [(9, 8)]
    res = np.ones(10, np.uint64)
    labels = groups(rows(pairs), res, np.ones(10, bool), P)
    assert (labels[:4] >= 0).all() and len(set(labels[:4].tolist())) == 1
    assert (labels[4:] < 0).all()
    # two holders are not a group; nodes not candidates are not taken
    assert (groups(rows(pairs[2:]), res, np.ones(10, bool), P) < 0).all()
    cand = np.ones(10, bool)
    cand[0] = False
    got = groups(rows(pairs), res, cand, P)
    assert got[0] < 0 and (got[1:4] >= 0).all()
    # ... unless the others are most of its holders (min_share): then none
    cand[1] = False
    assert (groups(rows(pairs), res, cand, P) < 0).all()
    # off
    off = GroupParams(max_share=0.0)
    assert (groups(rows(pairs), res, np.ones(10, bool), off) < 0).all()


def test_the_resellers_own_default_configuration_forms_no_group() -> None:
    # 6 of 10 end users send the reseller app's configuration: its default
    pairs = [(n, 7) for n in range(6)]
    res = np.ones(10, np.uint64)
    assert (groups(rows(pairs), res, np.ones(10, bool), P) < 0).all()
    # the same 6 among 20 end users of that reseller (others of another reseller
    # do not count for it): a minority configuration
    res20 = np.ones(20, np.uint64)
    assert (groups(rows(pairs), res20, np.ones(20, bool), P)[:6] >= 0).all()
    other = np.r_[np.ones(10), np.full(10, 2)].astype(np.uint64)
    assert (groups(rows(pairs), other, np.ones(20, bool), P) < 0).all()


def test_settings_are_validated() -> None:
    s = Settings.load(linking={"reseller_group_max_share": 0.25, "cohort_min_share": 0.6})
    assert s.linking["reseller_group_max_share"] == 0.25
    # the group rule shares min_members and the cohort rule's share and key count
    assert link_params(s).groups == GroupParams(max_share=0.25, min_members=3, min_share=0.6)
    with pytest.raises(ConfigError, match="reseller_group_max_share"):
        Settings.load(linking={"reseller_group_max_share": -1})


# --- end to end on hand-written contract events ------------------------------


def _when(ts: str | None) -> float:
    return np.inf if ts is None else datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rng = np.random.default_rng(11)
    d = tmp_path_factory.mktemp("resold")
    lines: list[bytes] = []
    sent: dict[str, list[float]] = {}

    def draw(*sources: str) -> Callable[[], str]:
        """Prompts of the sample's ``sources`` in a random order, without repeats
        until they run out: each population asks its own questions, as real users
        rarely share a prompt (the sample is small; drawn with replacement,
        everyone would share templates)."""
        pool = [q for src in sources for q in prompts(src)]
        order = iter(np.concatenate([rng.permutation(len(pool)) for _ in range(4)]).tolist())
        return lambda: pool[next(order)]

    def add(acct: str, eu: str, t: float, msgs: list[dict[str, str]], params: dict[str, object],
            **kw: Any) -> None:  # fmt: skip
        sent.setdefault(eu, []).append(t)
        ip = f"198.51.100.{len(sent) % 3 + 7}" if acct == "resco" else "203.0.113.20"
        lines.append(event(f"{eu}-{len(lines)}", acct, t, msgs, params, ip=ip, end_user=eu, **kw))

    def sessions(start: float, days: float, per_day: float, size: int) -> np.ndarray:
        """Request times: sessions of ``size`` requests a minute or two apart."""
        k = max(int(rng.poisson(per_day * days / size)), 1)
        starts = np.sort(start + rng.uniform(0, days * 86_400, k))
        return np.concatenate([s + np.cumsum(rng.uniform(20, 120, size)) for s in starts])

    def user(q: str) -> dict[str, str]:
        return {"role": "user", "content": q}

    # reseller "resco": 40 ordinary customers, active from the start (an
    # established customer base), no system prompt, some follow-up questions
    chat = draw("awesome_chatgpt_prompts", "oasst_eval_prompts", "ultrachat_eval",
                "hh_rlhf_harmless_test", "vicuna_bench", "arena_hard_v0.1")  # fmt: skip
    for u in range(40):
        for t in sessions(T0 + rng.uniform(0, 2 * HOUR), 1.5, 12, 3):
            msgs = [user(chat())]
            if rng.random() < 0.5:
                msgs += [{"role": "assistant", "content": "Sure."}, user(chat())]
            add("resco", f"cust{u}", t, msgs, {"temperature": [0.7, 1.0][u % 2]})
    # ... one tenant app's students, onboarded in the same hour: its tutoring
    # system prompt and parameters (a minority configuration of resco, so they
    # are grouped), human sessions of follow-up questions
    school = draw("gsm8k", "humaneval", "mt_bench")
    for u in range(8):
        for t in sessions(T0 + 6 * HOUR + rng.uniform(0, 1800), 1.5, 16, 4):
            msgs = [{"role": "system", "content": TUTOR}, user(school())]
            msgs += [{"role": "assistant", "content": "Let's see."}, user(school())]
            add("resco", f"student{u}", t, msgs, {"max_tokens": 1024}, out=int(rng.integers(150, 600)))  # fmt: skip
    # ... and a harvesting pipeline hiding among them from the log's start: its
    # own system prompt and parameters, single-turn tasks (none asked twice: no
    # template in common), answers cut at the length limit
    tasks = draw("arena_hard_v2.0", "gpteacher", "self_instruct_user_oriented")
    for u in range(6):
        for i, t in enumerate(sessions(T0 + rng.uniform(0, 2 * HOUR), 1.5, 60, 5)):
            msgs = [{"role": "system", "content": ORCA}, user(tasks())]
            params = {"max_tokens": 8000 if i % 2 else 6000, "reasoning_effort": "high"}
            add("resco", f"atk{u}", t, msgs, params, out=8000, finish="length")
    # reseller "appco": every end user is on the app's one SDK configuration and
    # all start in the same hour (the app's default: no group), single-turn
    maths = draw("math_cot_problems", "mbpp")
    for u in range(25):
        for t in sessions(T0 + 3 * HOUR + rng.uniform(0, 1800), 1.5, 8, 3):
            msgs = [{"role": "system", "content": SDK}, user(maths())]
            add("appco", f"app{u}", t, msgs, {"temperature": 0.3, "max_tokens": 2048}, out=400)
    order = np.argsort([orjson.loads(x)["ts"] for x in lines], kind="stable")
    (d / "events.jsonl").write_bytes(b"\n".join(lines[i] for i in order) + b"\n")
    accounts = [
        {"account_id": a, "created_at": T0 - 500 * 86_400, "tier": "enterprise", "verified": True,
         "payment_fingerprint": f"pm_{a}", "email_domain": f"{a}.example.com", "reseller": True}
        for a in ("resco", "appco")
    ]  # fmt: skip
    (d / "accounts.jsonl").write_bytes(b"\n".join(orjson.dumps(a) for a in accounts) + b"\n")
    out = d / "out"
    detect(d / "events.jsonl", out, d / "accounts.jsonl")
    recs = [orjson.loads(x) for x in (out / "accounts.jsonl").read_bytes().splitlines()]
    camps = [orjson.loads(x) for x in (out / "campaigns.jsonl").read_bytes().splitlines()]
    return {
        "eu": {r["end_user_id"]: r for r in recs if r["end_user_id"] is not None},
        "campaigns": camps,
        "sent": {k: sorted(v) for k, v in sent.items()},
        "dir": d,
    }


def _members(camp: dict[str, Any]) -> set[str]:
    return {e["end_user_id"] for e in camp.get("end_users", [])}


def test_attacking_end_users_are_enforced_as_one_group_early(run: dict[str, Any]) -> None:
    eu, sent = run["eu"], run["sent"]
    atk = [f"atk{u}" for u in range(6)]
    assert all(eu[a]["action"] in ("challenge", "degrade", "block") for a in atk)
    bad = [c for c in run["campaigns"] if c["malicious"] and _members(c) & set(atk)]
    assert len(bad) == 1 and set(atk) <= _members(bad[0])
    # well before each one's own evidence floor (its 20th request): most are
    # enforced within their first twelve requests
    early = [a for a in atk if _when(eu[a]["first_enforce_ts"]) <= sent[a][11]]
    assert len(early) >= 5, {a: eu[a]["first_enforce_ts"] for a in atk}


def test_legitimate_end_users_sharing_a_configuration_are_not_enforced(
    run: dict[str, Any],
) -> None:
    eu = run["eu"]
    benign = [k for k in eu if not k.startswith("atk")]
    assert len(benign) == 40 + 8 + 25
    assert all(eu[k]["action"] in ("allow", "review") for k in benign), {
        k: eu[k]["action"] for k in benign if eu[k]["action"] not in ("allow", "review")
    }
    # the tenant app's students were grouped on their shared configuration
    # (so the test exercises the rule) and the group was not found malicious
    students = {f"student{u}" for u in range(8)}
    grouped = [c for c in run["campaigns"] if _members(c) & students]
    assert grouped and not any(c["malicious"] for c in grouped)
    # the app default of a reseller all of whose end users send it is no group
    assert not any(_members(c) & {f"app{u}" for u in range(25)} for c in run["campaigns"])


def test_without_the_rule_the_attackers_reach_the_evidence_floor(run: dict[str, Any]) -> None:
    """The same events with the rule off: each attacker is enforced on its own
    evidence only, none within its first twelve requests (what the rule saves)."""
    d = run["dir"]
    off = Settings.load(linking={"reseller_group_max_share": 0})
    detect(d / "events.jsonl", d / "off", d / "accounts.jsonl", settings=off)
    recs = [orjson.loads(x) for x in (d / "off" / "accounts.jsonl").read_bytes().splitlines()]
    eu = {r["end_user_id"]: r for r in recs if r["end_user_id"] is not None}
    sent = run["sent"]
    early = [
        a for a in (f"atk{u}" for u in range(6)) if _when(eu[a]["first_enforce_ts"]) <= sent[a][11]
    ]
    assert early == []
