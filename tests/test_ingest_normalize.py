"""Normalisation of single contract events: times, fields, counts, reject reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.ingest.normalize import EventBatchBuilder, normalize_event
from distillwatch.ingest.schema import EVENT_SCHEMA
from distillwatch.ingest.timeparse import TimeError, parse_time_ms, parse_time_strings

COLS = EVENT_SCHEMA.names
T0 = 1776852903120  # 2026-04-22T10:15:03.120Z


def ev(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": "2026-04-22T10:15:03.120Z",
        "account_id": "org_8f2",
        "request": {"messages": [{"role": "user", "content": "hi"}]},
    }
    base.update(kw)
    return base


def norm(e: Any) -> dict[str, Any]:
    row, reason = normalize_event(e)
    assert reason is None, reason
    assert row is not None
    return dict(zip(COLS, row, strict=True))


def reason(e: Any) -> str:
    row, why = normalize_event(e)
    assert row is None
    assert why is not None
    return why


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-04-22T10:15:03.120Z", T0),
        ("2026-04-22T10:15:03.120z", T0),
        ("2026-04-22t10:15:03.120Z", T0),
        ("2026-04-22T12:15:03.120+02:00", T0),
        ("2026-04-22T05:45:03.120-04:30", T0),
        ("2026-04-22 10:15:03.120+00:00", T0),
        ("2026-04-22T10:15:03.120999999Z", T0),  # nanoseconds truncated to ms
        ("2026-04-22T10:15:03Z", T0 - 120),
        (1776852903, T0 - 120),  # epoch seconds
        (1776852903.12, T0),  # fractional epoch seconds
        (T0, T0),  # epoch ms (> 1e11)
        (float(T0), T0),
        (100_000_000_000, 100_000_000_000 * 1000),  # exactly 1e11: still seconds
        (100_000_000_001, 100_000_000_001),  # above 1e11: ms
        (datetime(2026, 4, 22, 10, 15, 3, 120000, tzinfo=UTC), T0),
        (datetime(2026, 4, 22, 10, 15, 3, 120000), T0),  # naive datetime (Parquet) = UTC
    ],
)
def test_parse_time_ms(value: Any, expected: int) -> None:
    assert parse_time_ms(value) == expected


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        ("2026-04-22T10:15:03", "without UTC offset"),
        ("2026-04-22", "without UTC offset"),
        ("yesterday", "unparseable time 'yesterday'"),
        ("2026-13-01T00:00:00Z", "unparseable"),
        ("", "unparseable"),
        (-5, "out of range"),
        (float("nan"), "not finite"),
        (10**20, "out of range"),
        (True, "got bool"),
        ([1], "got list"),
    ],
)
def test_parse_time_errors(value: Any, msg: str) -> None:
    with pytest.raises(TimeError, match=msg):
        parse_time_ms(value)


def test_full_event_columns() -> None:
    e = ev(
        id="r1",
        api_key_id=19,
        end_user_id="",
        ip="203.0.113.7",
        model="frontier-1",
        request={
            "system": [{"type": "text", "text": "top"}],
            "messages": [
                {"role": "system", "content": "sys msg"},
                {"role": "developer", "content": "dev msg"},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": None},
                {"role": "tool", "content": "result"},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "x"},
                        {"type": "text", "text": "a"},
                        {"type": "image_url", "image_url": {"url": "u"}},
                        {"type": "text", "text": "bé"},
                    ],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "y"}]},
            ],
            "params": {
                "temperature": 1,
                "top_p": 0.5,
                "max_tokens": 100.0,
                "logprobs": 3,
                "stream": False,
                "reasoning_effort": "low",
                "tools": [{}, {}, {}],
                "seed": -1,
                "unknown": "ignored",
            },
        },
        response={"status": 200, "text": "abc", "reasoning": "", "finish_reason": "length"},
        usage={"input_tokens": 5, "output_tokens": 6},
    )
    r = norm(e)
    assert r["ts"] == T0
    assert (r["id"], r["api_key_id"], r["end_user_id"]) == ("r1", "19", None)
    assert r["system"] == "top\nsys msg\ndev msg"
    assert r["prompt"] == "a\nbé"
    assert r["prompt_chars"] == 4
    assert (r["n_messages"], r["n_user_turns"], r["n_assistant_turns"], r["n_tool_messages"]) == (
        7,
        2,
        1,
        3,
    )
    assert (r["temperature"], r["top_p"], r["max_tokens"]) == (1.0, 0.5, 100)
    assert (r["logprobs"], r["top_logprobs"], r["stream"]) == (True, 3, False)
    assert (r["reasoning_effort"], r["tools"], r["seed"]) == ("low", 3, -1)
    assert (r["status"], r["finish_reason"], r["response_chars"], r["reasoning_chars"]) == (
        200,
        "length",
        3,
        0,
    )
    assert (r["input_tokens"], r["output_tokens"], r["reasoning_tokens"]) == (5, 6, None)


def test_minimal_event_defaults() -> None:
    r = norm(ev(request={"messages": [{"role": "assistant", "content": "only"}]}))
    assert r["prompt"] is None and r["prompt_chars"] == 0 and r["system"] is None
    assert r["temperature"] is None and r["status"] is None


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"account_id": "a", "request": {"messages": [{"role": "user", "content": "x"}]}},
            "ts: missing",
        ),
        (ev(ts=None), "ts: missing"),
        (ev(account_id=None), "account_id: missing"),
        (ev(account_id="  "), "account_id: empty string"),
        (ev(account_id=1.0), "account_id: expected string, got float"),
        (ev(account_id=True), "account_id: expected string, got bool"),
        (ev(request=None), "request.messages: missing"),
        (ev(request=[1]), "request: expected object, got list"),
        (ev(request={"messages": {}}), "request.messages: expected list, got object"),
        (ev(request={"messages": []}), "request.messages: empty list"),
        (ev(request={"messages": ["hi"]}), "request.messages[0]: expected object, got str"),
        (
            ev(request={"messages": [{"content": "x"}]}),
            "request.messages[0].role: expected string, got null",
        ),
        (
            ev(request={"messages": [{"role": "user", "content": 5}]}),
            "request.messages[0].content: expected string or list, got int",
        ),
        (
            ev(request={"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}),
            "request.messages[0].content[0].text: expected string, got int",
        ),
        (
            ev(request={"messages": [{"role": "user", "content": [{"text": "t"}]}]}),
            "request.messages[0].content[0].type: expected string, got null",
        ),
        (
            ev(
                request={
                    "messages": [{"role": "user", "content": "x"}],
                    "params": {"max_tokens": "abc"},
                }
            ),
            "request.params.max_tokens: expected integer, got str",
        ),
        (
            ev(
                request={
                    "messages": [{"role": "user", "content": "x"}],
                    "params": {"max_tokens": -1},
                }
            ),
            "request.params.max_tokens: -1 out of range [0, 10000000]",
        ),
        (
            ev(
                request={
                    "messages": [{"role": "user", "content": "x"}],
                    "params": {"max_tokens": 10**8},
                }
            ),
            "request.params.max_tokens: 100000000 out of range [0, 10000000]",
        ),
        (
            ev(request={"messages": [{"role": "user", "content": "x"}], "params": {"n": 129}}),
            "request.params.n: 129 out of range [1, 128]",
        ),
        (
            ev(
                request={
                    "messages": [{"role": "user", "content": "x"}],
                    "params": {"temperature": "hot"},
                }
            ),
            "request.params.temperature: expected number, got str",
        ),
        (
            ev(
                request={
                    "messages": [{"role": "user", "content": "x"}],
                    "params": {"stream": "yes"},
                }
            ),
            "request.params.stream: expected bool, got str",
        ),
        (
            ev(request={"messages": [{"role": "user", "content": "x"}], "params": []}),
            "request.params: expected object, got list",
        ),
        (ev(response={"status": "200"}), "response.status: expected integer, got str"),
        (ev(response={"text": ["a"]}), "response.text: expected string, got list"),
        (ev(usage={"output_tokens": -3}), "usage.output_tokens: -3 out of range [0, 100000000]"),
        (ev(ip=123), "ip: expected string, got int"),
        ([ev()], "not a JSON object (got list)"),
    ],
)
def test_reject_reasons(event: Any, expected: str) -> None:
    assert reason(event) == expected


def test_builder_batch_matches_schema() -> None:
    b = EventBatchBuilder()
    assert b.add(ev()) is None
    assert b.add(ev(ts="bad")) == "ts: unparseable time 'bad'"
    assert b.add(ev(account_id="org_2", ts=T0 + 1)) is None
    assert len(b) == 2
    batch = b.flush()
    assert batch.schema == EVENT_SCHEMA
    assert batch.column("account_id").to_pylist() == ["org_8f2", "org_2"]
    assert [t.value for t in batch.column("ts")] == [T0, T0 + 1]
    assert len(b) == 0 and b.flush().num_rows == 0


_DIGITS = "0123456789"
_time_like = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, tz: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{tz}",
    st.sampled_from(["1969", "1970", "2024", "2026", "2100", "9999", "0001", "2o26"]),
    st.sampled_from(["00", "01", "02", "12", "13", "1"]),
    st.sampled_from(["00", "01", "28", "29", "30", "31", "32"]),
    st.sampled_from(["T", " ", "t", "_"]),
    st.sampled_from(["00", "23", "24", "٠٠"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["00", "59", "60"]),
    st.sampled_from(["", ".1", ".123", ".12345", ".123456", ".1234567", "."]),
    st.sampled_from(["Z", "z", "+00:00", "-05:30", "+23:59", "+24:00", "+05", "", "+0530"]),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(_time_like, st.none(), st.text(_DIGITS + "-:T.Z+ ", max_size=30)), max_size=40
    )
)
def test_vectorised_time_strings_equal_the_row_parser(values: list[str | None]) -> None:
    ms, ok = parse_time_strings(pa.array(values, pa.string()))
    for v, m, good in zip(values, ms.tolist(), ok.tolist(), strict=True):
        try:
            want: int | None = parse_time_ms(v)
        except TimeError:
            want = None
        assert (m if good else None) == want, v
