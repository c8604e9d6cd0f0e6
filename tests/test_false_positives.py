"""Heavy legitimate users, written by hand (not by the simulator), are not enforced;
a harvester with the same volume and timing is.

Each principal sends ~1,500 requests over two days. What differs is what a
real user of each kind does: an eval harness appends "Let's think step by
step." to benchmark questions at temperature 0, a coding agent runs multi-turn
tool loops with large ``max_tokens``, a batch job classifies templated text
with short answers. The harvester asks for written-out reasoning on diverse
single-turn tasks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from distillwatch.engine.detect import detect
from handmade import event, prompts

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
ORCA = "You are an AI assistant. Think step-by-step and justify your steps. Write out your full reasoning."


def _times(rng: np.random.Generator, n: int, bursty: bool) -> np.ndarray:
    if bursty:  # runs of back-to-back requests, a few runs a day
        starts = rng.uniform(0, 2 * 86_400, size=max(n // 150, 1))
        t = np.concatenate([s + np.cumsum(rng.exponential(2.0, 150)) for s in starts])[:n]
    else:
        t = rng.uniform(0, 2 * 86_400, size=n)
    return np.sort(T0 + t)


def _event(
    i: int,
    acct: str,
    ts: float,
    messages: list[dict[str, str]],
    params: dict[str, object] | None = None,
    **kw: Any,
) -> bytes:
    return event(
        f"{acct}-{i}",
        acct,
        ts,
        messages,
        {"temperature": 0.7, "max_tokens": 1024, **(params or {})},
        **kw,
    )


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    rng = np.random.default_rng(7)
    d = tmp_path_factory.mktemp("fp")
    gsm, code, chat = prompts("gsm8k"), prompts("mbpp"), prompts("awesome_chatgpt_prompts")
    lines: list[bytes] = []
    n = 1500
    # eval harness: the same benchmark questions, CoT suffix, temperature 0, bursts
    for i, t in enumerate(_times(rng, n, bursty=True)):
        q = gsm[i % 200] + "\nLet's think step by step."
        lines.append(
            _event(i, "eval", t, [{"role": "user", "content": q}], params={"temperature": 0})
        )
    # coding agent: multi-turn tool loops, growing context, large max_tokens
    for i, t in enumerate(_times(rng, n, bursty=True)):
        task = code[i // 10 % len(code)]
        msgs = [{"role": "system", "content": "You are a coding agent with tools."}]
        msgs += [{"role": "user", "content": task}]
        for k in range(i % 10):
            msgs += [{"role": "assistant", "content": f"call tool {k}"}]
            msgs += [{"role": "tool", "content": f"output {k}"}]
        msgs += [{"role": "user", "content": "continue"}]
        lines.append(
            _event(i, "agent", t, msgs, params={"max_tokens": 32000, "tools": 12}, out=800)
        )
    # batch job: one template, short answers, around the clock
    for i, t in enumerate(_times(rng, n, bursty=False)):
        q = f'Classify the sentiment of this review as positive or negative: "{chat[i % len(chat)][:200]}"'
        lines.append(_event(i, "batch", t, [{"role": "user", "content": q}], out=3))
    # harvester: diverse tasks, written-out reasoning demanded, cut at the length limit
    pool = gsm + code + chat
    for i, t in enumerate(_times(rng, n, bursty=False)):
        msgs = [
            {"role": "system", "content": ORCA},
            {"role": "user", "content": pool[i % len(pool)]},
        ]
        lines.append(
            _event(i, "harvester", t, msgs, params={"max_tokens": 8000}, out=8000, finish="length")
        )
    (d / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out = d / "out"
    detect(d / "events.jsonl", out)
    recs = [orjson.loads(x) for x in (out / "accounts.jsonl").read_bytes().splitlines()]
    return {r["account_id"]: r["action"] for r in recs if r["end_user_id"] is None}


@pytest.mark.parametrize("account", ["eval", "agent", "batch"])
def test_heavy_legitimate_users_are_not_enforced(verdicts: dict[str, str], account: str) -> None:
    assert verdicts[account] in ("allow", "review"), verdicts


def test_harvester_with_the_same_volume_is_enforced(verdicts: dict[str, str]) -> None:
    assert verdicts["harvester"] in ("challenge", "degrade", "block"), verdicts
