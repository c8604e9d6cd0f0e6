"""What a Spark task runs, and the Arrow "wire" layout its output travels in.

A Spark task is handed input file numbers. For each file it runs exactly what
the embedded engine runs -- :func:`~distillwatch.ingest.readers.iter_event_batches`
then :func:`~distillwatch.features.request.compute_features` -- and yields
Arrow record batches to ``mapInArrow``. There is no second definition of any
feature: this module only changes the *encoding* so Spark can carry the rows.

Spark SQL has no unsigned integers and its timestamps are microseconds in a
session time zone, so on the wire:

* every ``UInt64`` feature (hash keys, LSH bands) is the same 64 bits read as
  ``Int64`` (a lossless reinterpretation, undone by :func:`from_wire`);
* ``ts`` is epoch milliseconds as ``Int64``;
* strings are plain ``utf8`` (Polars exports ``large_utf8``).

Four bookkeeping columns ride along: ``_file`` (input file number), ``_seq``
(row number within the file's output), ``_kind`` (0 feature row, 1 reject, 2
per-file tally) and ``_reject`` / ``_count``. Reject and tally rows have a
null ``ts``, so a global sort on ``(ts nulls first, _file, _seq)`` delivers
every reject, in file and line order, before the first feature row. Rejects
therefore reach the driver without any shared file system.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import polars as pl
import pyarrow as pa

from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.request import FEATURE_SCHEMA, compute_features
from distillwatch.ingest.readers import iter_event_batches
from distillwatch.ingest.rejects import RejectSink

KIND_FEATURE, KIND_REJECT, KIND_TALLY = 0, 1, 2
TALLY_SEQ = 2**62  # a tally row sorts after its file's rejects
META: list[tuple[str, pa.DataType]] = [
    ("_file", pa.int32()),
    ("_seq", pa.int64()),
    ("_kind", pa.int8()),
    ("_reject", pa.string()),
    ("_count", pa.int64()),
]
_ARROW: dict[type[pl.DataType], pa.DataType] = {
    pl.Datetime: pa.int64(),
    pl.UInt64: pa.int64(),
    pl.String: pa.string(),
    pl.Float32: pa.float32(),
    pl.Int8: pa.int8(),
    pl.Int32: pa.int32(),
    pl.Boolean: pa.bool_(),
}


def _wire_type(dtype: pl.DataType) -> pa.DataType:
    try:
        return _ARROW[type(dtype)]
    except KeyError:  # a new feature type: extend the table above
        raise TypeError(f"no Spark wire type for feature dtype {dtype}") from None


#: The Arrow schema of ``mapInArrow``'s output, derived from FEATURE_SCHEMA.
WIRE_SCHEMA = pa.schema([(name, _wire_type(dt)) for name, dt in FEATURE_SCHEMA.items()] + META)
_SPARK_TYPES = {
    pa.int64(): "BIGINT",
    pa.int32(): "INT",
    pa.int8(): "TINYINT",
    pa.string(): "STRING",
    pa.float32(): "FLOAT",
    pa.bool_(): "BOOLEAN",
}


def spark_ddl() -> str:
    """WIRE_SCHEMA as a Spark DDL string (what ``mapInArrow`` is told to expect)."""
    return ", ".join(f"`{f.name}` {_SPARK_TYPES[f.type]}" for f in WIRE_SCHEMA)


def to_wire(feat: pl.DataFrame, file_no: int, seq0: int) -> pa.RecordBatch:
    """Feature rows of file ``file_no`` (rows ``seq0``...) in the wire layout."""
    cols: list[pl.Expr] = []
    for name, dt in FEATURE_SCHEMA.items():
        if isinstance(dt, pl.Datetime):
            cols.append(pl.col(name).dt.epoch("ms"))
        elif isinstance(dt, pl.UInt64):
            cols.append(pl.col(name).reinterpret(signed=True))
        else:
            cols.append(pl.col(name))
    n = feat.height
    out = feat.select(cols).with_columns(
        _file=pl.lit(file_no, pl.Int32),
        _seq=pl.int_range(seq0, seq0 + n, dtype=pl.Int64),
        _kind=pl.lit(KIND_FEATURE, pl.Int8),
        _reject=pl.lit(None, pl.String),
        _count=pl.lit(None, pl.Int64),
    )
    table = out.to_arrow().cast(WIRE_SCHEMA)
    return table.combine_chunks().to_batches()[0]


def _meta_rows(
    file_no: int, seq: list[int], kind: int, reject: list[str | None], count: list[int | None]
) -> pa.RecordBatch:
    n = len(seq)
    arrays = [pa.nulls(n, f.type) for f in WIRE_SCHEMA if not f.name.startswith("_")]
    arrays += [
        pa.array([file_no] * n, pa.int32()),
        pa.array(seq, pa.int64()),
        pa.array([kind] * n, pa.int8()),
        pa.array(reject, pa.string()),
        pa.array(count, pa.int64()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=WIRE_SCHEMA)


def from_wire(table: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    """Feature rows back from the wire layout, exactly in FEATURE_SCHEMA."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    cols: list[pl.Expr] = []
    for name, dt in FEATURE_SCHEMA.items():
        if isinstance(dt, pl.Datetime):
            cols.append(pl.from_epoch(pl.col(name), "ms").dt.replace_time_zone("UTC").cast(dt))
        elif isinstance(dt, pl.UInt64):
            cols.append(pl.col(name).reinterpret(signed=False))
        else:
            cols.append(pl.col(name).cast(dt))
    return df.select(cols)


class BufferedRejects(RejectSink):
    """A reject sink that keeps the JSON lines in memory until drained.

    It writes through :class:`RejectSink` itself, so a reject line produced on
    a Spark executor is byte-for-byte the line the embedded engine writes.
    """

    def __init__(self) -> None:
        super().__init__(None)
        self._buf = io.BytesIO()
        self._fh = self._buf

    def drain(self) -> list[str]:
        """The reject lines written since the last drain (without newlines)."""
        data = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        return data.decode("utf-8").splitlines()


def file_batches(
    file_no: int, path: str, clf: TextClassifiers, batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Everything one input file contributes: features, its rejects, its tally row."""
    sink = BufferedRejects()
    seq = 0
    n_rej = 0

    def rejects() -> Iterator[pa.RecordBatch]:
        nonlocal n_rej
        lines = sink.drain()
        if lines:
            idx = list(range(n_rej, n_rej + len(lines)))
            n_rej += len(lines)
            yield _meta_rows(file_no, idx, KIND_REJECT, list(lines), [None] * len(lines))

    for batch in iter_event_batches(path, sink, batch_size=batch_size):
        yield from rejects()
        feat = compute_features(batch, clf)
        if feat.height:
            yield to_wire(feat, file_no, seq)
            seq += feat.height
    yield from rejects()
    yield _meta_rows(file_no, [TALLY_SEQ], KIND_TALLY, [None], [sink.stats.accepted])


def features_task(
    paths: list[str], batch_size: int
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: input rows carry file numbers in column ``id``."""

    def run(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        clf = TextClassifiers.load()  # cached per Python worker
        for rb in it:
            for file_no in rb.column("id").to_pylist():
                yield from file_batches(int(file_no), paths[int(file_no)], clf, batch_size)

    return run
