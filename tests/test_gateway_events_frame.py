"""The gateway's events_frame is exactly the frame of rows_to_batch (Arrow) imported into Polars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from distillwatch.gateway.decide import events_frame
from distillwatch.ingest.normalize import normalize_event, rows_to_batch
from distillwatch.ingest.schema import EVENT_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"

TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


def _value(field: pa.Field) -> st.SearchStrategy[Any]:
    t = field.type
    if pa.types.is_timestamp(t):
        out: st.SearchStrategy[Any] = st.integers(0, 4_102_444_800_000)
    elif pa.types.is_string(t):
        out = TEXT
    elif pa.types.is_int32(t):
        out = st.integers(-(2**31), 2**31 - 1)
    elif pa.types.is_int64(t):
        out = st.integers(-(2**63), 2**63 - 1)
    elif pa.types.is_float32(t):  # normalised floats are doubles, rounded on the way in
        out = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e30, max_value=1e30)
    elif pa.types.is_boolean(t):
        out = st.booleans()
    else:
        raise AssertionError(f"no strategy for {t}")
    return out if not field.nullable else st.none() | out


ROW = st.tuples(*(_value(f) for f in EVENT_SCHEMA))


def same(rows: list[tuple[Any, ...]]) -> None:
    want = pl.DataFrame(rows_to_batch(rows))
    got = events_frame(rows)
    assert got.schema == want.schema
    assert_frame_equal(got, want)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=5))
def test_events_frame_equals_rows_to_batch(rows: list[tuple[Any, ...]]) -> None:
    same(rows)


def test_events_frame_on_normalised_fixture_events() -> None:
    rows = []
    for line in (FIXTURES / "good.jsonl").read_bytes().splitlines():
        row, reason = normalize_event(orjson.loads(line))
        assert row is not None, reason
        rows.append(row)
    same(rows)
    for row in rows:
        same([row])
