"""Hand-written contract events and the packaged prompt sample, for tests that
build workloads by hand instead of with the simulator."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import orjson

SAMPLE = Path(__file__).resolve().parents[1] / "src/distillwatch/sim/data/sample_prompts.jsonl.gz"


@cache
def _sample() -> tuple[dict[str, str], ...]:
    with gzip.open(SAMPLE, "rt") as fh:
        return tuple(json.loads(x) for x in fh)


def prompts(source: str) -> list[str]:
    """The sample's prompts from one source (gsm8k, mbpp, awesome_chatgpt_prompts, ...)."""
    return [r["prompt"] for r in _sample() if r["source"] == source]


def event(
    rid: str,
    acct: str,
    ts: float,
    messages: list[dict[str, str]],
    params: dict[str, object],
    *,
    ip: str = "198.51.100.7",
    finish: str = "stop",
    out: int = 300,
    end_user: str | None = None,
) -> bytes:
    """One contract event (events.md section 1) as a JSON line, without the newline
    (``end_user``: the end user of a reseller account sending it)."""
    return orjson.dumps(
        {
            "id": rid,
            "ts": float(ts),
            "account_id": acct,
            **({"end_user_id": end_user} if end_user is not None else {}),
            "ip": ip,
            "user_agent": "python-httpx/0.27",
            "model": "frontier-1",
            "request": {"messages": messages, "params": params},
            "response": {"status": 200, "text": "ok", "finish_reason": finish},
            "usage": {"input_tokens": 500, "output_tokens": out},
        }
    )
