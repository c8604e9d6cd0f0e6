"""The vectorised Parquet path agrees with the row-by-row path, row for row and reject for reject."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillwatch.ingest.parquet_fast import fast_normalize_batch
from distillwatch.ingest.readers import iter_event_batches
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.schema import EVENT_SCHEMA

TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
ROLE = st.none() | st.sampled_from(
    ["system", "developer", "user", "assistant", "tool", "function", "x"]
)
MESSAGE = st.none() | st.fixed_dictionaries({"role": ROLE, "content": st.none() | TEXT})
NUM = st.none() | st.integers(-5, 300) | st.floats(-1.0, 300.0) | st.just(float("nan"))
INTS = st.none() | st.integers(-5, 2_000_000_000)


@st.composite
def row(draw: st.DrawFn, i: int) -> dict[str, Any]:
    return {
        "id": f"r{i}",
        "ts": draw(st.none() | st.integers(-10, 2_000_000_000_000)),
        "account_id": draw(st.none() | st.sampled_from(["", " ", "a", "org_1"])),
        "api_key_id": draw(st.none() | st.sampled_from(["", "k1"])),
        "request": {
            "system": draw(st.none() | TEXT),
            "messages": draw(st.none() | st.lists(MESSAGE, max_size=4)),
            "params": {
                "temperature": draw(NUM),
                "max_tokens": draw(NUM),
                "n": draw(st.none() | st.integers(-1, 200)),
                "logprobs": draw(st.none() | st.booleans()),
                "seed": draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
                "tools": draw(st.none() | st.lists(st.just({"name": "f"}), max_size=3)),
            },
        },
        "response": draw(
            st.none()
            | st.fixed_dictionaries(
                {"status": st.none() | st.integers(0, 700), "text": st.none() | TEXT}
            )
        ),
        "usage": {"output_tokens": draw(INTS)},
    }


def read_both(path: Path) -> tuple[pa.Table, pa.Table, list[Any], list[Any]]:
    out = []
    for fast in (True, False):
        with tempfile.TemporaryDirectory() as d:
            rj = Path(d) / "r.jsonl"
            with RejectSink(rj) as sink:
                bs = list(iter_event_batches(path, sink, batch_size=7, fast_parquet=fast))
            rej = [orjson.loads(x) for x in rj.read_bytes().splitlines()]
        t = pa.Table.from_batches(bs, schema=EVENT_SCHEMA)
        out.append((t.sort_by("id"), sorted((r["line"], r["reason"]) for r in rej)))
    (tf, rf), (ts, rs) = out
    return tf, ts, rf, rs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fast_equals_slow(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 20))
    rows = [data.draw(row(i)) for i in range(n)]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "e.parquet"
        pq.write_table(pa.Table.from_pylist(rows), p)
        tf, ts, rf, rs = read_both(p)
    assert rf == rs
    assert tf.to_pylist() == ts.to_pylist()


def test_timestamp_columns_and_multi_system(tmp_path: Path) -> None:
    base = datetime(2026, 4, 22, 10, 15, 3, 120999, tzinfo=UTC)
    msgs = [
        {"role": "system", "content": "s1"},
        {"role": "user", "content": "u1"},
        {"role": "developer", "content": "s2"},
        {"role": "user", "content": "u2"},
    ]
    rows = [
        {"id": f"r{i}", "account_id": "a", "request": {"system": "top", "messages": msgs}}
        for i in range(3)
    ]
    t = pa.Table.from_pylist(rows)
    for unit, tz in (("s", None), ("ms", "UTC"), ("us", "UTC"), ("ns", None)):
        col = pa.array([base] * 3, pa.timestamp("us", tz="UTC")).cast(
            pa.timestamp(unit, tz), safe=False
        )
        p = tmp_path / f"t_{unit}.parquet"
        pq.write_table(t.append_column("ts", col), p)
        tf, ts, rf, rs = read_both(p)
        assert rf == rs == []
        assert tf.equals(ts)
        assert tf.column("system").to_pylist() == ["top\ns1\ns2"] * 3
        assert tf.column("prompt").to_pylist() == ["u2"] * 3
        want = 1776852903000 if unit == "s" else 1776852903120
        assert tf.column("ts").cast(pa.int64()).to_pylist() == [want] * 3


def test_unsupported_shape_falls_back() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    rb = pa.RecordBatch.from_pylist([{"ts": 1, "account_id": "a", "request": {"messages": parts}}])
    assert fast_normalize_batch(rb) is None
    ok = pa.RecordBatch.from_pylist(
        [
            {
                "ts": 1776852903,
                "account_id": "a",
                "request": {"messages": [{"role": "user", "content": "x"}]},
            }
        ]
    )
    res = fast_normalize_batch(ok)
    assert res is not None and res[0].num_rows == 1 and len(res[1]) == 0
