"""Shared fixtures of the gateway tests (imported by the test_gateway_* files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from distillwatch.features.classifiers import HEADS, TextClassifiers
from distillwatch.gateway.config import GatewayConfig

KEYS = {"sk-a": "acct_a", "sk-b": "acct_b", "sk-c": "acct_c", "sk-d": "acct_d", "sk-e": "acct_e"}


def classifier() -> TextClassifiers:
    """A small, fixed linear model over the real hashed grams (cot: "step", "reasoning"; rubric:
    "rubric", "grade"), so gateway tests check the online path (state -> scorer -> action)
    independently of how the packaged artefact is trained from release to release."""
    n = 2**18
    proto = TextClassifiers(
        n, np.zeros(0, np.int64), np.zeros((0, len(HEADS)), np.float16), np.zeros(len(HEADS))
    )
    rows: dict[int, np.ndarray] = {}
    for word, head in (("step", 0), ("reasoning", 0), ("rubric", 1), ("grade", 1)):
        (index,) = proto.features_one(word)[0]
        rows.setdefault(int(index), np.zeros(len(HEADS)))[head] = 12.0
    idx = np.array(sorted(rows), np.int64)
    weights = np.stack([rows[i] for i in idx]).astype(np.float16)
    bias = np.full(len(HEADS), -4.0)
    return TextClassifiers(n, idx, weights, bias)


def write_verdicts(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))


def config(tmp: Path, upstream: str, **over: Any) -> GatewayConfig:
    raw: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "upstreams": {"openai": upstream, "anthropic": upstream},
        "keys": KEYS,
        "verdicts": str(tmp / "accounts.jsonl"),
        "events_out": str(tmp / "events"),
        "state": "memory",
        "mode": "enforce",
    }
    raw.update(over)
    return GatewayConfig.from_dict(raw, base=tmp)


def read_events(tmp: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((tmp / "events").glob("*.jsonl")):
        out += [orjson.loads(line) for line in f.read_bytes().splitlines() if line.strip()]
    return out
