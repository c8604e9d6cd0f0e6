"""The Decider's one-row path folds exactly what the batch engine's frames fold.

Micro-batches up to SMALL_BATCH_MAX rows reach the state as NumPy columns
(``feature_columns``); bigger ones, and the batch engine, as feature frames.
Folding either into an EntityState (and flagging new models) must leave the
same state, and the in-process and Redis backends' row filtering must agree.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.model_launch import DAY_MS, ModelLaunchTracker
from distillwatch.features.request import compute_features
from distillwatch.features.small_batch import feature_columns
from distillwatch.gateway.decide import Decider, events_frame
from distillwatch.gateway.shapes import request_event
from distillwatch.gateway.statestore import MemoryState, _rows_of
from distillwatch.ingest.normalize import normalize_event
from distillwatch.scoring.config import Settings
from distillwatch.signals.state import EntityState


def _events(n: int) -> list[dict[str, object]]:
    ts = 1_767_225_600.0
    out = []
    for i in range(n):
        body = {
            "model": "m1" if i < n // 2 else "m2",  # m2 appears after the warm-up day
            "messages": [
                {"role": "system", "content": "You are a grader." if i % 3 else "Be brief."},
                {"role": "user", "content": f"Grade answer {i % 7} step by step: {i} apples"},
            ],
            "max_tokens": [256, 4000, None][i % 3],
            "temperature": [0.0, -0.0, 0.7][i % 3],
            "logprobs": i % 5 == 0,
            "user": f"u{i % 4}" if i % 2 else None,
        }
        body = {k: v for k, v in body.items() if v is not None}
        ev = request_event(
            body,
            "/v1/chat/completions",
            f"acct_{i % 5}",
            "k",
            ts + i * (DAY_MS / 1000 / 10),
            f"id{i}",
            f"10.{i % 3}.0.{i}",
            "ua/1",
        )
        out.append(ev)
    return out


@pytest.fixture(scope="module")
def clf() -> TextClassifiers:
    return TextClassifiers.load()


def test_columns_and_frames_fold_to_the_same_state(clf: TextClassifiers) -> None:
    rows = [r for r in (normalize_event(e)[0] for e in _events(60)) if r is not None]
    a, b = EntityState(4), EntityState(4)
    ta, tb = ModelLaunchTracker(), ModelLaunchTracker()
    for i in range(0, len(rows), 3):  # micro-batches of 3 rows
        part = rows[i : i + 3]
        cols = feature_columns(part, clf)
        cols["new_model"] = ta.flags(cols)
        frame = tb.annotate(compute_features(events_frame(part), clf, small_batch_max=0))
        np.testing.assert_array_equal(cols["new_model"], frame["new_model"].to_numpy())
        a.update(cols, cols["account_id"].tolist())
        b.update(frame, frame["account_id"])
        ek = [
            None if e is None else f"{x}\x1f{e}"
            for x, e in zip(cols["account_id"], cols["end_user_id"], strict=True)
        ]
        a.update(cols, ek)
        b.update(
            frame,
            frame.select(pl.concat_str("account_id", pl.lit("\x1f"), "end_user_id")).to_series(),
        )
    assert a.keys == b.keys
    for name in a.cols:
        np.testing.assert_array_equal(a.cols[name], b.cols[name], err_msg=name)
    assert ta.first_seen == tb.first_seen


def test_row_filter_of_columns_and_frames(clf: TextClassifiers) -> None:
    rows = [r for r in (normalize_event(e)[0] for e in _events(8)) if r is not None]
    cols = feature_columns(rows, clf)
    frame = compute_features(events_frame(rows), clf)
    keys = cols["account_id"].tolist()
    part_c, keys_c = _rows_of(cols, keys, ["acct_1", "acct_3"])
    part_f, keys_f = _rows_of(frame, frame["account_id"], ["acct_1", "acct_3"])
    assert keys_c == list(keys_f) == ["acct_1", "acct_3", "acct_1"]
    for c in frame.columns:
        np.testing.assert_array_equal(part_c[c], part_f[c].to_numpy(), err_msg=c)


def test_decider_batches_of_any_size_decide_alike(clf: TextClassifiers) -> None:
    """One event at a time (columns) and all at once (a frame) end in the same state."""
    events = _events(40)
    one = Decider(Settings.load(), clf, MemoryState())
    many = Decider(Settings.load(), clf, MemoryState(), columns_max=0)  # the frame path
    for ev in events:
        one.decide_batch([ev])
    many.decide_batch(events)
    s1, s2 = one.state.state, many.state.state
    assert s1.keys == s2.keys
    for name in s1.cols:
        np.testing.assert_array_equal(s1.cols[name], s2.cols[name], err_msg=name)
