"""Input files: which files a path names, how to open them, and their lines.

A path is a file or a directory; a directory is walked recursively in name
order, skipping hidden entries (``.name``) and Hadoop/Spark markers
(``_SUCCESS``, ``_name``). Supported files: ``.jsonl``/``.ndjson``, optionally
``.gz`` or ``.zst`` compressed, ``.parquet``/``.pq`` and, for the accounts
table only, ``.csv``. Inside a directory other files are skipped with a log
warning; a single unsupported file given directly is an error.

:func:`iter_lines` streams a JSONL file line by line with bounded memory: a
line longer than ``max_line_bytes`` is not held in memory but skipped to its
end and reported as oversized, with its first bytes as the excerpt.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import zstandard

log = logging.getLogger(__name__)

#: Default longest accepted JSONL line, in bytes (without the newline).
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_READ_BUFFER = 1 << 20
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")


def file_kind(path: Path) -> str | None:
    """``"jsonl"``, ``"parquet"``, ``"csv"`` or None for an unsupported name."""
    name = path.name.lower()
    for comp in (".gz", ".zst"):
        if name.endswith(comp):
            name = name[: -len(comp)]
            return "jsonl" if name.endswith(JSONL_SUFFIXES) else None
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    return None


def list_files(
    path: str | os.PathLike[str], kinds: tuple[str, ...] = ("jsonl", "parquet")
) -> list[Path]:
    """The input files ``path`` names, in read order."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or directory: {p}")
    if p.is_file():
        if file_kind(p) not in kinds:
            raise ValueError(f"unsupported input file {p} (expected one of: {', '.join(kinds)})")
        return [p]
    out: list[Path] = []
    for child in sorted(p.iterdir(), key=lambda c: c.name):
        if child.name.startswith((".", "_")):
            continue
        if child.is_dir():
            out.extend(list_files(child, kinds))
        elif file_kind(child) in kinds:
            out.append(child)
        else:
            log.warning("skipping unsupported file %s", child)
    return out


def open_binary(path: Path) -> IO[bytes]:
    """Open a (possibly compressed) file for buffered binary reading."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return io.BufferedReader(gzip.GzipFile(path, "rb"), buffer_size=_READ_BUFFER)
    if name.endswith(".zst"):
        raw = open(path, "rb")  # noqa: SIM115 - closed with the reader (closefd)
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=_READ_BUFFER)
    return open(path, "rb", buffering=_READ_BUFFER)


def iter_lines(
    fh: IO[bytes], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(line_no, data, oversize)`` for each line (1-based numbers).

    ``oversize`` is 0 for a normal line, and ``data`` is the line (newline
    included). For a line longer than ``max_line_bytes``, ``oversize`` is its
    full length and ``data`` only its first bytes. Memory stays bounded by
    ``max_line_bytes`` whatever the file holds.
    """
    limit = max_line_bytes + 1
    readline = fh.readline
    lineno = 0
    while True:
        line = readline(limit)
        if not line:
            return
        lineno += 1
        if len(line) < limit or line[-1:] == b"\n":
            yield lineno, line, 0
            continue
        # oversized: keep a head for the excerpt, skip the rest in bounded chunks
        head = line[:4096]
        size = len(line)
        while True:
            more = readline(_READ_BUFFER)
            if not more:
                break
            if more[-1:] == b"\n":
                size += len(more) - 1
                break
            size += len(more)
        yield lineno, head, size
