"""Property: any mix of valid events and garbage lines is fully accounted for.

For every generated file, ``read == accepted + rejected``, every valid event
is accepted with its fields intact (in file order), and every garbage line is
rejected at its own line number.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillwatch.ingest.readers import iter_event_batches
from distillwatch.ingest.rejects import RejectSink

TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
ID = TEXT.filter(lambda s: s.strip() != "")
ROLE = st.sampled_from(["system", "user", "assistant", "tool", "developer"])
MESSAGE = st.fixed_dictionaries({"role": ROLE, "content": TEXT})
EPOCH_MS = st.integers(min_value=0, max_value=4_102_444_800_000)  # up to 2100


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[Any, int]:
    """(value as written, expected UTC epoch ms)."""
    ms = draw(EPOCH_MS)
    kind = draw(st.sampled_from(["iso_z", "iso_offset", "epoch_s", "epoch_ms"]))
    if kind == "epoch_ms":
        ms = max(ms, 100_000_000_001)
        return ms, ms
    if kind == "epoch_s":
        s = ms // 1000
        return s, s * 1000
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    if kind == "iso_z":
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", ms
    minutes = draw(st.integers(min_value=-12 * 60, max_value=14 * 60))
    local = dt.astimezone(timezone(timedelta(minutes=minutes)))
    return local.isoformat(timespec="milliseconds"), ms


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """(event, expected normalised fields)."""
    ts, ms = draw(timestamps())
    msgs = draw(st.lists(MESSAGE, min_size=1, max_size=4))
    max_tokens = draw(st.none() | st.integers(min_value=0, max_value=10_000_000))
    acc = draw(ID)
    ev: dict[str, Any] = {"ts": ts, "account_id": acc, "request": {"messages": msgs}}
    if max_tokens is not None:
        ev["request"]["params"] = {"max_tokens": max_tokens}
    users = [m["content"] for m in msgs if m["role"] == "user"]
    system = [m["content"] for m in msgs if m["role"] in ("system", "developer")]
    expected = {
        "ts": ms,
        "account_id": acc,
        "max_tokens": max_tokens,
        "prompt": users[-1] if users else None,
        "system": "\n".join(system) if system else None,
        "n_messages": len(msgs),
        "n_user_turns": len(users),
        "n_tool_messages": sum(m["role"] == "tool" for m in msgs),
    }
    return ev, expected


GARBAGE = st.binary(min_size=1, max_size=60).filter(
    lambda b: b"\n" not in b and b"\r" not in b and b.strip() != b""
) | st.sampled_from(
    [b"[]", b"42", b'"str"', b"{}", b'{"ts": "nope", "account_id": "a"}', b"{broken"]
)
LINE = st.one_of(valid_events().map(lambda x: ("ok", x)), GARBAGE.map(lambda b: ("bad", b)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, max_size=25), batch_size=st.integers(min_value=1, max_value=8))
def test_mixed_lines_accounted(lines: list[tuple[str, Any]], batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mix.jsonl"
        path.write_bytes(
            b"".join((orjson.dumps(x[0]) if k == "ok" else x) + b"\n" for k, x in lines)
        )
        rj = Path(d) / "rejects.jsonl"
        with RejectSink(rj) as sink:
            batches = list(iter_event_batches(path, sink, batch_size=batch_size))
        rejected_lines = [orjson.loads(r)["line"] for r in rj.read_bytes().splitlines()]
    stats = sink.stats
    assert stats.read == stats.accepted + stats.rejected == len(lines)
    assert all(b.num_rows <= batch_size for b in batches)
    expected = [x[1] for k, x in lines if k == "ok"]
    assert stats.accepted == len(expected)
    assert rejected_lines == [i + 1 for i, (k, _) in enumerate(lines) if k == "bad"]
    if not expected:
        return
    table = pa.Table.from_batches(batches)
    ts_ms = table.column("ts").cast(pa.int64()).to_pylist()
    for row, ms, exp in zip(table.to_pylist(), ts_ms, expected, strict=True):
        got = {k: row[k] for k in exp}
        got["ts"] = ms
        assert got == exp
