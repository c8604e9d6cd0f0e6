"""The Spark wire layout and window cutting (pure Arrow/Polars: no JVM needed).

These pin the two places where the Spark engine could drift from the embedded
one without touching a feature definition: the lossless encoding of feature
rows for Spark, and cutting the sorted stream into the same event-time windows.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from distillwatch.engine.spark import _Drain
from distillwatch.engine.spark_wire import (
    KIND_FEATURE,
    KIND_REJECT,
    KIND_TALLY,
    WIRE_SCHEMA,
    file_batches,
    from_wire,
    spark_ddl,
    to_wire,
)
from distillwatch.engine.store import FeatureStore, cut_windows
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.request import FEATURE_SCHEMA, compute_features
from distillwatch.ingest.readers import iter_event_batches
from distillwatch.ingest.rejects import RejectSink

pytestmark = pytest.mark.spark
FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    clf = TextClassifiers.load()
    frames = [
        compute_features(b, clf) for b in iter_event_batches(FIXTURES / "good.jsonl", RejectSink())
    ]
    return pl.concat(frames)


def test_wire_roundtrip_is_exact(features: pl.DataFrame) -> None:
    # hash keys use the full 64 bits: values above 2**63 must survive the signed wire type
    big = features.with_columns(pl.lit(2**64 - 3, pl.UInt64).alias("ip_key"))
    rb = to_wire(big, file_no=3, seq0=10)
    assert rb.schema == WIRE_SCHEMA
    assert rb.column("_seq").to_pylist() == list(range(10, 10 + big.height))
    back = from_wire(rb)
    assert back.schema == pl.Schema(FEATURE_SCHEMA)
    assert back.equals(big)
    assert back["ip_key"][0] == 2**64 - 3


def test_ddl_names_every_wire_column() -> None:
    ddl = spark_ddl()
    for f in WIRE_SCHEMA:
        assert f"`{f.name}`" in ddl
    assert "`ts` BIGINT" in ddl and "`text_key` BIGINT" in ddl


def test_file_batches_carry_rejects_and_tally() -> None:
    """A task's output for a bad file: the same reject lines the embedded sink writes."""
    path = FIXTURES / "bad.jsonl"
    out = list(file_batches(5, str(path), TextClassifiers.load(), batch_size=4))
    kinds = np.concatenate([b.column("_kind").to_numpy() for b in out])
    lines: list[str] = []
    for b in out:
        mask = b.column("_kind").to_numpy() == KIND_REJECT
        lines += [s for s, m in zip(b.column("_reject").to_pylist(), mask, strict=True) if m]
    ref = io.BytesIO()
    sink = RejectSink(None)
    sink._fh = ref  # the embedded sink's own writer, into memory
    n_ok = sum(b.num_rows for b in iter_event_batches(path, sink, batch_size=4))
    assert lines == ref.getvalue().decode().splitlines()
    assert len(lines) == sink.stats.rejected > 0
    assert (kinds == KIND_FEATURE).sum() == n_ok
    assert kinds[-1] == KIND_TALLY
    drain = _Drain(io.BytesIO())
    feats = list(drain.frames(out))
    assert drain.accepted == n_ok == sum(f.height for f in feats)
    assert drain.rejected == len(lines)


@pytest.mark.parametrize("chunk", [1, 7, 50, 10_000])
def test_cut_windows_matches_feature_store(features: pl.DataFrame, chunk: int) -> None:
    window_ms = 60_000
    store = FeatureStore()
    store.append(features)
    ref = [(end, w["ts"].cast(pl.Datetime("ms", "UTC"))) for end, w in store.windows(window_ms)]
    store.close()
    srt = features.sort("ts")
    got = list(cut_windows((srt[i : i + chunk] for i in range(0, srt.height, chunk)), window_ms))
    assert len(ref) >= 3
    assert [e for e, _ in got] == [e for e, _ in ref]
    for (end, w), (_, r) in zip(got, ref, strict=True):
        assert w["ts"].to_list() == r.to_list()
        ms = w["ts"].dt.epoch("ms").to_numpy()
        assert int(ms.min()) >= end - window_ms and int(ms.max()) < end
