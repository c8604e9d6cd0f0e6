"""The small-batch path with a memo that outlives calls, and on normalised rows.

The gateway keeps one SmallBatchMemo (Polars results by input) and one
TextFeatureCache for its lifetime and computes features straight from
normalised rows (``feature_columns``). These tests share both across all
examples, so later examples mostly hit what earlier ones left, and compare
with the batch path of the same events every time. The Python stand-ins the
small path uses (tokens, blank test, lower-casing) are checked against the
expressions they stand for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.request import FEATURE_SCHEMA, TEXT_DTYPES, compute_features
from distillwatch.features.small_batch import SmallBatchMemo, feature_columns
from distillwatch.features.text import is_blank, lowercase_list, tokens_expr, tokens_py
from distillwatch.gateway.decide import events_frame
from distillwatch.ingest.schema import EVENT_SCHEMA
from test_features_small_batch import BIG, IPS, PIECES, batches, texts
from test_gateway_events_frame import ROW

MEMO = SmallBatchMemo(capacity=300, max_chars=20_000)  # small: tables are emptied now and then
CACHE = TextFeatureCache(TEXT_DTYPES, capacity=40)
NAMES = EVENT_SCHEMA.names
SYSTEM = NAMES.index("system")


# System None and "" share a text_key (null as empty) and, since an empty
# system prompt is no system prompt, a sys_key (0): a cache that outlives a
# batch may serve either for the other. The examples below mix both.


def _same_columns(cols: dict[str, np.ndarray], want: pl.DataFrame) -> None:
    assert list(cols) == list(FEATURE_SCHEMA)
    for c in FEATURE_SCHEMA:
        w = want.get_column(c).to_numpy()
        assert cols[c].dtype == w.dtype, c
        np.testing.assert_array_equal(cols[c], w, err_msg=c)


def _check_rows(rows: list[tuple[Any, ...]], clf: TextClassifiers) -> None:
    want = compute_features(events_frame(rows), clf, small_batch_max=0)
    _same_columns(feature_columns(rows, clf, memo=MEMO), want)
    _same_columns(feature_columns(rows, clf), want)  # fresh memo
    _same_columns(feature_columns(rows, clf, CACHE, MEMO), want)


@pytest.fixture(scope="module")
def clf() -> TextClassifiers:
    return TextClassifiers.load()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_shared_memo_and_cache_equal_batch_path(batch: pa.RecordBatch) -> None:
    clf = TextClassifiers.load()
    want = compute_features(batch, clf, small_batch_max=0)
    assert_frame_equal(compute_features(batch, clf, small_batch_max=BIG, memo=MEMO), want)
    got = compute_features(batch, clf, CACHE, small_batch_max=BIG, memo=MEMO)
    assert_frame_equal(got, want)


@st.composite
def gateway_rows(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Rows as normalize_event gives them, with hostile texts and addresses and
    parameter values drawn from a few (so memo keys repeat), -0.0 included."""
    n = draw(st.integers(min_value=1, max_value=5))
    out: list[tuple[Any, ...]] = []
    for _ in range(n):
        row = dict(zip(NAMES, draw(ROW), strict=True))
        row["system"] = draw(texts())
        row["prompt"] = draw(texts())
        row["ip"] = draw(IPS) or None
        row["end_user_id"] = draw(st.none() | st.sampled_from(["u1", "u2", "ü"]))
        row["temperature"] = draw(st.none() | st.sampled_from([0.0, -0.0, 0.2, 1.0, 0.1 + 0.2]))
        row["max_tokens"] = draw(st.none() | st.sampled_from([0, 256, 4000, 9000]))
        row["n"] = draw(st.none() | st.sampled_from([1, 2]))
        row["logprobs"] = draw(st.none() | st.booleans())
        row["reasoning_effort"] = draw(st.none() | st.sampled_from(["low", "high", "max"]))
        row["finish_reason"] = draw(st.none() | st.sampled_from(["stop", "length"]))
        if out and draw(st.booleans()):  # a repeated text
            prev = dict(zip(NAMES, out[-1], strict=True))
            row["system"], row["prompt"] = prev["system"], prev["prompt"]
        out.append(tuple(row[c] for c in NAMES))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=gateway_rows())
def test_feature_columns_equal_batch_path(rows: list[tuple[Any, ...]]) -> None:
    _check_rows(rows, TextClassifiers.load())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=4))
def test_feature_columns_on_arbitrary_rows(rows: list[tuple[Any, ...]]) -> None:
    _check_rows(rows, TextClassifiers.load())


def test_negative_zero_is_not_zero_to_the_memo(clf: TextClassifiers) -> None:
    base = dict.fromkeys(NAMES)
    base.update(ts=1_767_225_600_000, account_id="a", prompt="hi", n_user_turns=1)
    memo = SmallBatchMemo()
    rows = [tuple(dict(base, temperature=t)[c] for c in NAMES) for t in (0.0, -0.0)]
    a = feature_columns(rows[:1], clf, memo=memo)["param_sig"]
    b = feature_columns(rows[1:], clf, memo=memo)["param_sig"]
    want = compute_features(events_frame(rows), clf, small_batch_max=0)["param_sig"].to_list()
    assert [int(a[0]), int(b[0])] == want
    assert want[0] != want[1]


def test_seen_inputs_run_no_query(clf: TextClassifiers) -> None:
    base = dict.fromkeys(NAMES)
    base.update(ts=1_767_225_600_000, account_id="a", prompt="Explain 12 steps", ip="10.0.0.1")
    row = tuple(base[c] for c in NAMES)
    memo = SmallBatchMemo()
    cache = TextFeatureCache(TEXT_DTYPES, capacity=10)
    feature_columns([row], clf, cache, memo)
    before = memo.queries
    feature_columns([row], clf, cache, memo)
    assert memo.queries == before


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(texts() | st.sampled_from(PIECES), min_size=1, max_size=20))
def test_python_stand_ins_match_polars(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.String)
    lowered = series.fill_null("").str.to_lowercase()
    assert lowercase_list(values) == lowered.to_list()
    frame = lowered.to_frame("t")
    assert [tokens_py(t) for t in lowered.to_list()] == frame.select(
        tokens_expr(pl.col("t"))
    ).to_series().to_list()
    blank = series.fill_null("").str.strip_chars().str.len_chars() == 0
    assert [is_blank(v) for v in values] == blank.to_list()


def test_templated_prompts_reuse_the_template_features(clf: TextClassifiers) -> None:
    """Prompts from one template (numbers and quotes differ) share template key
    and band keys; the memo computes them once and the columns still equal the
    batch path's."""
    base = dict.fromkeys(NAMES)
    base.update(ts=1_767_225_600_000, account_id="a", n_user_turns=1)
    memo = SmallBatchMemo()
    cache = TextFeatureCache(TEXT_DTYPES, capacity=100)
    rows = []
    for i in range(12):
        prompt = f'Solve task {i * 7}: rate "answer number {i}" from 1 to {i + 3}.'
        if i % 4 == 3:
            prompt = "   "  # blank: band keys 0 whatever the template
        rows.append(
            tuple(
                dict(base, prompt=prompt, system="Be terse." if i % 2 else None)[c] for c in NAMES
            )
        )
    want = compute_features(events_frame(rows), clf, small_batch_max=0)
    for i in range(0, 12, 2):
        part = rows[i : i + 2]
        _same_columns(feature_columns(part, clf, cache, memo), want[i : i + 2])
    assert len(memo.templates) == 2  # the template and the blank one
