"""The optional accounts side table (events.md section 2) into ACCOUNT_SCHEMA.

Accepts JSONL (optionally .gz/.zst), Parquet and CSV (header row with the
contract's field names), or a directory of them. The table is small (one row
per account), so rows go through Python one by one.

Rules: ``account_id`` required, a non-blank string (an integer is turned into
its decimal string, as for events); ``created_at`` a contract time; ``tier``
one of :data:`~.schema.TIERS`; ``verified``/``reseller`` booleans (CSV also
``true/false/1/0/yes/no``, any case); the other fields strings. Empty values
are absent. A repeated ``account_id`` is rejected, naming the first line.
Bad rows go to the reject sink like bad events.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .normalize import Reject
from .rejects import RejectSink
from .schema import ACCOUNT_SCHEMA, TIERS
from .sources import file_kind, iter_lines, list_files, open_binary
from .timeparse import TimeError, parse_time_ms, type_name

_STR_FIELDS = ("payment_fingerprint", "email_domain", "country")
_BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _bool(v: Any, field: str, from_text: bool) -> bool | None:
    if v is None or type(v) is bool:
        return v
    if from_text and isinstance(v, str):
        b = _BOOL_TEXT.get(v.strip().lower())
        if b is not None:
            return b
        raise Reject(f"{field}: expected boolean, got {v[:32]!r}")
    raise Reject(f"{field}: expected boolean, got {type_name(v)}")


def normalize_account(rec: Any, from_text: bool = False) -> tuple[Any, ...]:
    """One accounts record to an ACCOUNT_SCHEMA row tuple; raises :class:`Reject`."""
    if type(rec) is not dict:
        raise Reject(f"not a JSON object (got {type_name(rec)})")
    if from_text:  # CSV: empty cells are absent
        rec = {k: (None if v == "" else v) for k, v in rec.items()}
    acc = rec.get("account_id")
    if type(acc) is int:
        acc = str(acc)
    if acc is None:
        raise Reject("account_id: missing")
    if type(acc) is not str:
        raise Reject(f"account_id: expected string, got {type_name(acc)}")
    if not acc.strip():
        raise Reject("account_id: empty string")
    created = rec.get("created_at")
    if created is not None:
        if from_text and isinstance(created, str) and created.strip().lstrip("-").isdigit():
            created = int(created)
        try:
            created = parse_time_ms(created)
        except TimeError as e:
            raise Reject(f"created_at: {e}") from None
    tier = rec.get("tier")
    if tier is not None and tier not in TIERS:
        shown = tier[:32] if isinstance(tier, str) else type_name(tier)
        raise Reject(f"tier: {shown!r} is not one of {', '.join(TIERS)}")
    strs = []
    for f in _STR_FIELDS:
        v = rec.get(f)
        if v is not None and type(v) is not str:
            raise Reject(f"{f}: expected string, got {type_name(v)}")
        strs.append(v or None)
    return (
        acc,
        created,
        tier,
        _bool(rec.get("verified"), "verified", from_text),
        strs[0],
        strs[1],
        strs[2],
        _bool(rec.get("reseller"), "reseller", from_text),
    )


def _records(path: Path, kind: str) -> Iterator[tuple[int, Any, bytes | str]]:
    """Yield (line or row number, parsed record or a :class:`Reject`, raw excerpt)."""
    if kind == "parquet":
        pf = pq.ParquetFile(path)
        n = 0
        for rb in pf.iter_batches(batch_size=65_536):
            for rec in rb.to_pylist():
                n += 1
                yield n, rec, orjson.dumps(rec, default=str)
    elif kind == "csv":
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
            reader = csv.DictReader(fh)
            for rec in reader:
                raw = ",".join(str(v) for v in rec.values())
                yield reader.line_num, rec, raw
    else:
        with open_binary(path) as fh:
            for lineno, line, oversize in iter_lines(fh):
                if oversize:
                    yield lineno, Reject(f"line too long: {oversize} bytes"), line
                    continue
                try:
                    yield lineno, orjson.loads(line), line
                except orjson.JSONDecodeError as e:
                    if line.strip():
                        yield lineno, Reject(f"not JSON: {e}"), line


def read_accounts(path: str | os.PathLike[str], rejects: RejectSink | None = None) -> pa.Table:
    """Read the accounts table under ``path``; bad rows go to ``rejects``."""
    sink = rejects if rejects is not None else RejectSink()
    rows: list[tuple[Any, ...]] = []
    seen: dict[str, str] = {}
    for f in list_files(path, kinds=("jsonl", "parquet", "csv")):
        kind = file_kind(f) or "jsonl"
        for n, rec, raw in _records(f, kind):
            try:
                if isinstance(rec, Reject):
                    raise rec
                row = normalize_account(rec, from_text=kind == "csv")
                first = seen.get(row[0])
                if first is not None:
                    raise Reject(f"account_id: duplicate of {first}")
            except Reject as e:
                sink.reject(str(f), n, str(e), raw)
                continue
            seen[row[0]] = f"{f}:{n}"
            rows.append(row)
    sink.accept(len(rows))
    cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 8
    arrays = [pa.array(c, type=fl.type) for c, fl in zip(cols, ACCOUNT_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=ACCOUNT_SCHEMA)
