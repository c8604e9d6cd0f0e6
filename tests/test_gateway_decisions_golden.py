"""The Decider's decisions for a fixed request sequence are pinned.

Speed work on the online path (features small-batch path, state fold,
scorer) must not change a single decision: this replays a fixed mix of
harvesting and benign traffic, one request at a time and in micro-batches,
and compares every action (exactly) and risk (to a few units in the last
place: NumPy's exp and log take a different SIMD path on a CPU with AVX-512
than on one without, and differ there by an ulp) with the recorded ones
(``tests/fixtures/gateway/decisions.json``, written by the code before the
speed work; regenerate with ``DW_WRITE_GOLDEN=1`` only for an intended
change of the scoring).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distillwatch.gateway.decide import Decider
from distillwatch.gateway.shapes import request_event
from distillwatch.gateway.statestore import MemoryState
from distillwatch.scoring.config import Settings
from test_gateway_helpers import classifier

GOLDEN = Path(__file__).parent / "fixtures" / "gateway" / "decisions.json"
T0 = 1_767_225_600.0


def sequence(n: int = 900) -> list[dict[str, Any]]:
    """Harvesters (templated chain-of-thought and grading prompts, logprobs, rotating
    networks, steady pacing) and benign users (varied prompts, chat turns, bursts),
    interleaved over several days."""
    out = []
    ts = T0
    for i in range(n):
        acct = i % 9
        harvest = acct < 4
        if harvest:
            ts_i = ts + 7.0 * i
            msgs: list[dict[str, Any]] = [
                {"role": "system", "content": "Think step by step and show your reasoning."},
                {
                    "role": "user",
                    "content": f"Solve task {i} step by step; grade it with the rubric {i % 3}.",
                },
            ]
            body: dict[str, Any] = {
                "model": "m1" if i < n // 2 else "m-new",
                "messages": msgs,
                "max_tokens": 4096,
                "temperature": 0.0,
                "logprobs": acct % 2 == 0,
                "top_logprobs": 5 if acct % 2 == 0 else None,
                "n": 2 if acct == 3 else None,
            }
            ip = f"203.{i % 50}.{(i * 7) % 250}.{i % 200}"
        else:
            ts_i = ts + 7.0 * i + (i % 11) ** 3 * 13.0
            msgs = [{"role": "user", "content": f"hi, what is {i * 37 % 101} plus {i % 17}?"}]
            if i % 3 == 0:
                msgs += [
                    {"role": "assistant", "content": "It is a number."},
                    {"role": "user", "content": "thanks, and the weather today?"},
                ]
            body = {
                "model": ["m1", "m2"][i % 2],
                "messages": msgs,
                "max_tokens": [None, 256, 1024][i % 3],
                "temperature": [0.7, 1.0, 0.2, None][i % 4],
                "user": f"user-{i % 5}" if acct == 8 else None,
            }
            ip = f"10.0.{acct}.{i % 3}"
        body = {k: v for k, v in body.items() if v is not None}
        out.append(
            request_event(
                body,
                "/v1/chat/completions",
                f"acct_{acct}",
                f"key_{acct}",
                ts_i,
                f"dw_{i:010d}",
                ip,
                "python-httpx/0.28" if harvest else "Mozilla/5.0",
            )
        )
    return out


def replay(batch: int) -> tuple[list[list[Any]], dict[str, str]]:
    """Every decision, and a digest of every account-state column at the end."""
    state = MemoryState()
    d = Decider(Settings.load(), classifier(), state)
    events = sequence()
    out: list[list[Any]] = []
    for i in range(0, len(events), batch):
        for o in d.decide_batch(events[i : i + batch]):
            out.append([o.action, float(o.risk).hex(), o.error])
    st = state.state
    digest = {
        name: hashlib.blake2b(col[: len(st)].tobytes(), digest_size=8).hexdigest()
        for name, col in sorted(st.cols.items())
    }
    digest["keys"] = ",".join(st.keys)
    return out, digest


def test_golden_is_not_trivial() -> None:
    golden = json.loads(GOLDEN.read_text())
    actions = {a for a, _, _ in golden["one"]}
    assert len(actions) >= 3, actions


@pytest.mark.parametrize("batch", [1, 7])
def test_decisions_match_the_recorded_ones(batch: int) -> None:
    got, digest = replay(batch)
    key = "one" if batch == 1 else f"batch{batch}"
    if os.environ.get("DW_WRITE_GOLDEN"):
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        golden[key] = got
        golden[f"{key}_state"] = digest
        GOLDEN.write_text(json.dumps(golden, separators=(",", ":"), sort_keys=True))
    golden = json.loads(GOLDEN.read_text())
    assert len(got) == len(golden[key])
    for i, (g, w) in enumerate(zip(got, golden[key], strict=True)):
        assert (g[0], g[2]) == (w[0], w[2]), f"request {i}: got {g}, recorded {w}"
        risk, recorded = float.fromhex(g[1]), float.fromhex(w[1])
        assert abs(risk - recorded) <= 4 * np.spacing(recorded), (
            f"request {i}: got {g}, recorded {w}"
        )
    assert digest == golden[f"{key}_state"]
