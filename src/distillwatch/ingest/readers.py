"""Stream contract events from JSONL / Parquet files into EVENT_SCHEMA record batches.

:func:`iter_event_batches` is the one entry point every command uses. It reads
a file or a directory (see :mod:`.sources`) with bounded memory: JSONL is read
line by line and parsed with orjson, Parquet record batch by record batch; at
most ``batch_size`` normalised rows are held before a batch is yielded.

Every line or row that does not meet the contract goes to the
:class:`~.rejects.RejectSink` with its source path, 1-based line number (row
number for Parquet) and reason; accepted rows are counted there too, so
``sink.stats`` always satisfies ``read == accepted + rejected``. Blank lines
carry no record and are not counted. A file that cannot be read to its end
(corrupt compression, a broken Parquet footer) costs one reject, at the line
where reading failed, and the run goes on with the next file; for Parquet the
unit is the row group (a corrupt row group costs one reject, the next one is
still read).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from .accounts import read_accounts
from .normalize import Row, normalize_event, rows_to_batch
from .parquet_fast import fast_normalize_batch
from .rejects import RejectSink
from .sources import DEFAULT_MAX_LINE_BYTES, iter_lines, list_files, open_binary

__all__ = [
    "ParquetPart",
    "iter_event_batches",
    "iter_event_sources",
    "read_accounts",
    "read_events",
    "read_part",
]

DEFAULT_BATCH_SIZE = 65_536
#: A JSONL batch is also cut when its lines reach this many bytes: fewer Python
#: objects alive at once keeps peak memory (and cache misses) down for long events.
BATCH_BYTES = 8 * 1024 * 1024
_READ_ERRORS = (OSError, EOFError, zlib.error, zstandard.ZstdError, pa.ArrowException)


def _json_reason(line: bytes, err: orjson.JSONDecodeError) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as u:
        return f"invalid UTF-8 at byte {u.start}"
    return f"not JSON: {err}"


def _iter_jsonl(
    path: Path, sink: RejectSink, batch_size: int, max_line_bytes: int
) -> Iterator[pa.RecordBatch]:
    src = str(path)
    rows: list[Row] = []
    loads = orjson.loads
    lineno = 0
    nbytes = 0
    try:
        with open_binary(path) as fh:
            for lineno, line, oversize in iter_lines(fh, max_line_bytes):
                if oversize:
                    sink.reject(
                        src, lineno, f"line too long: {oversize} bytes > {max_line_bytes}", line
                    )
                    continue
                try:
                    ev = loads(line)
                except orjson.JSONDecodeError as e:
                    if not line.strip():
                        continue  # blank line: no record
                    sink.reject(src, lineno, _json_reason(line, e), line)
                    continue
                row, reason = normalize_event(ev)
                if row is None:
                    sink.reject(src, lineno, reason or "invalid event", line)
                    continue
                rows.append(row)
                nbytes += len(line)
                if len(rows) >= batch_size or nbytes >= BATCH_BYTES:
                    sink.accept(len(rows))
                    yield rows_to_batch(rows)
                    rows = []
                    nbytes = 0
    except _READ_ERRORS as e:
        sink.reject(src, lineno + 1, f"unreadable file: {type(e).__name__}: {e}")
    if rows:
        sink.accept(len(rows))
        yield rows_to_batch(rows)


def _raw_row(ev: Any) -> bytes:
    return orjson.dumps(ev, default=str, option=orjson.OPT_NON_STR_KEYS)


def slow_normalize_batch(
    rb: pa.RecordBatch, src: str, first_row: int, sink: RejectSink, only: list[int] | None = None
) -> list[Row]:
    """Normalise Parquet rows through Python dicts (exact reasons for every reject).

    ``first_row`` is the 1-based number of the batch's first row; ``only``
    restricts the work to those row offsets within the batch.
    """
    if only is not None:
        rb = rb.take(pa.array(only, type=pa.int64()))
    offsets = only if only is not None else range(rb.num_rows)
    rows: list[Row] = []
    for off, ev in zip(offsets, rb.to_pylist(), strict=True):
        row, reason = normalize_event(ev)
        if row is None:
            sink.reject(src, first_row + off, reason or "invalid event", _raw_row(ev))
        else:
            rows.append(row)
    return rows


#: Top-level contract columns; other Parquet columns are not even decoded.
CONTRACT_COLUMNS = frozenset(
    (
        "ts",
        "account_id",
        "id",
        "api_key_id",
        "end_user_id",
        "ip",
        "user_agent",
        "endpoint",
        "model",
        "request",
        "response",
        "usage",
    )
)


def _parquet_batch_rows(pf: pq.ParquetFile, batch_size: int) -> int:
    """Rows per read so that one decoded batch is about BATCH_BYTES (bounded memory)."""
    md = pf.metadata
    if md.num_rows == 0 or md.num_row_groups == 0:
        return batch_size
    total = sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
    per_row = max(1, total // md.num_rows)
    return int(min(batch_size, max(1024, BATCH_BYTES // per_row)))


@dataclass(frozen=True)
class ParquetPart:
    """One row group of a Parquet file: a unit of reading a feature worker can do itself.

    Reading and normalising it in the worker (:func:`read_part`) keeps the
    main process free for the replay and never ships raw prompts between
    processes; rejects come back in a :class:`~.rejects.RejectBuffer`.
    """

    path: str
    row_group: int
    first_row: int  # 1-based number of the row group's first row in the file
    batch_size: int = DEFAULT_BATCH_SIZE
    fast: bool = True


def parquet_parts(
    path: Path, sink: RejectSink, batch_size: int = DEFAULT_BATCH_SIZE, fast: bool = True
) -> Iterator[ParquetPart]:
    """The row groups of one Parquet file (an unreadable footer costs one reject)."""
    try:
        md = pq.ParquetFile(path).metadata
    except _READ_ERRORS as e:
        sink.reject(str(path), 1, f"unreadable file: {type(e).__name__}: {e}")
        return
    first = 1
    for rg in range(md.num_row_groups):
        yield ParquetPart(str(path), rg, first, batch_size, fast)
        first += md.row_group(rg).num_rows


def read_part(part: ParquetPart, sink: RejectSink) -> Iterator[pa.RecordBatch]:
    """EVENT_SCHEMA batches of one row group; a read error costs one reject and ends the part."""
    src = part.path
    row_no = part.first_row
    try:
        pf = pq.ParquetFile(part.path)
        cols = [c for c in pf.schema_arrow.names if c in CONTRACT_COLUMNS]
        rows = _parquet_batch_rows(pf, part.batch_size)
        for rb in pf.iter_batches(batch_size=rows, row_groups=[part.row_group], columns=cols):
            fast_out = fast_normalize_batch(rb) if part.fast else None
            if fast_out is None:
                out = rows_to_batch(slow_normalize_batch(rb, src, row_no, sink))
            else:
                out, redo = fast_out
                if len(redo):  # rows the columns flag: the row path gives exact reasons
                    extra = slow_normalize_batch(rb, src, row_no, sink, only=redo.tolist())
                    if extra:
                        out = pa.concat_batches([out, rows_to_batch(extra)])
            row_no += rb.num_rows
            if out.num_rows:
                sink.accept(out.num_rows)
                yield out
    except _READ_ERRORS as e:
        sink.reject(src, row_no, f"unreadable file: {type(e).__name__}: {e}")


def iter_event_sources(
    path: str | os.PathLike[str],
    rejects: RejectSink,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    fast_parquet: bool = True,
) -> Iterator[pa.RecordBatch | ParquetPart]:
    """Like :func:`iter_event_batches`, but Parquet row groups come out unread
    (:class:`ParquetPart`) for a worker to read with :func:`read_part`."""
    for f in list_files(path):
        if f.name.lower().endswith((".parquet", ".pq")):
            yield from parquet_parts(f, rejects, batch_size, fast_parquet)
        else:
            yield from _iter_jsonl(f, rejects, batch_size, max_line_bytes)


def iter_event_batches(
    path: str | os.PathLike[str],
    rejects: RejectSink,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    fast_parquet: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Yield EVENT_SCHEMA record batches (at most ``batch_size`` rows) from ``path``.

    ``fast_parquet=False`` forces the row-by-row path for Parquet (the
    reference the vectorised path is tested against).
    """
    for item in iter_event_sources(path, rejects, batch_size, max_line_bytes, fast_parquet):
        if isinstance(item, ParquetPart):
            yield from read_part(item, rejects)
        else:
            yield item


def read_events(path: str | os.PathLike[str], rejects: RejectSink | None = None) -> pa.Table:
    """Read all events under ``path`` into one table (convenient for small inputs and tests)."""
    sink = rejects if rejects is not None else RejectSink()
    from .schema import EVENT_SCHEMA

    return pa.Table.from_batches(list(iter_event_batches(path, sink)), schema=EVENT_SCHEMA)
