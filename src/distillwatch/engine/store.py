"""The embedded feature store: Parquet parts on local disk, queried with DuckDB.

Feature batches are written as Parquet parts as they are computed, by the
process that computed them (a feature worker writes its own part, so the
process running the replay never pays for the write); the replay then reads
them back through DuckDB in event-time order, streamed in Arrow record
batches, and cut into micro-batch windows. DuckDB sorts out of core, so
memory stays bounded whatever the input size (``memory_limit`` setting).
When the input turns out to be time-ordered the streamed replay never reads
the parts back; they are what the sorted replay falls back on otherwise.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa


def write_part(feat: pl.DataFrame, path: Path | str) -> int:
    """Write one feature batch as a Parquet part (LZ4: cheap to write and read)."""
    if feat.height:
        feat.write_parquet(path, compression="lz4", statistics=False)
    return feat.height


class FeatureStore:
    """Append-then-replay store of per-request features (a folder of Parquet parts).

    ``path`` is the folder (created empty; an existing one is replaced);
    ``":memory:"`` or ``None`` uses a temporary folder removed at :meth:`close`.
    """

    def __init__(self, path: Path | str | None = None, memory_limit: str = "768MB") -> None:
        """``memory_limit`` bounds DuckDB during the sorted read (it spills beyond)."""
        temp = path is None or str(path) == ":memory:"
        self.dir = Path(tempfile.mkdtemp(prefix="dw-features-") if temp else str(path))
        if not temp:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir.mkdir(parents=True)
        self.memory_limit = memory_limit
        self.parts: list[Path] = []
        self.rows = 0
        self._reserved = 0

    def reserve(self) -> Path:
        """The path of the next part (input order); write it with :func:`write_part`, then :meth:`add`."""
        path = self.dir / f"part-{self._reserved:07d}.parquet"
        self._reserved += 1
        return path

    def add(self, path: Path, rows: int) -> None:
        """Record a part written by :func:`write_part` (nothing when it was empty)."""
        if rows:
            self.parts.append(path)
            self.rows += rows

    def append(self, feat: pl.DataFrame) -> None:
        """Write and record one batch in this process."""
        path = self.reserve()
        self.add(path, write_part(feat, path))

    def windows(
        self, window_ms: int, fetch_rows: int = 200_000
    ) -> Iterator[tuple[int, pl.DataFrame]]:
        """Yield (window end ms, rows) per non-empty event-time window, in order."""
        if not self.parts:
            return
        con = duckdb.connect()
        try:
            con.execute(f"SET memory_limit='{self.memory_limit}'")
            con.execute("SET preserve_insertion_order=false")
            con.execute(f"SET temp_directory='{self.dir / '.spill'}'")
            files = [str(p) for p in self.parts]
            rel = con.sql(f"SELECT * FROM read_parquet({files!r}) ORDER BY ts")
            reader = rel.to_arrow_reader(fetch_rows)
            frames = (pl.DataFrame(pl.from_arrow(pa.Table.from_batches([rb]))) for rb in reader)
            yield from cut_windows(frames, window_ms)
        finally:
            con.close()

    def close(self) -> None:
        """Remove the parts (the store is scratch space for one run)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def cut_windows(
    frames: Iterable[pl.DataFrame], window_ms: int
) -> Iterator[tuple[int, pl.DataFrame]]:
    """(window end ms, rows) per non-empty event-time window of ts-sorted frames.

    A window is ``[k * window_ms, (k + 1) * window_ms)`` and is released once
    a later one starts. Both engines' replays cut their windows here.
    """
    carry: pl.DataFrame | None = None
    for df in frames:
        if df.height == 0:
            continue
        if carry is not None:
            df = pl.concat([carry, df], how="vertical_relaxed")
        win = (df["ts"].dt.epoch("ms") // window_ms).to_numpy()
        cut = int((win < win[-1]).sum())
        if cut:
            yield from split_windows(df[:cut], win[:cut], window_ms)
        carry = df[cut:]
    if carry is not None and carry.height:
        win = (carry["ts"].dt.epoch("ms") // window_ms).to_numpy()
        yield from split_windows(carry, win, window_ms)


def split_windows(
    df: pl.DataFrame, win: np.ndarray, window_ms: int
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Split ts-sorted rows at window-index changes: (window end ms, rows) each."""
    bounds = np.flatnonzero(np.diff(win)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(win)]
    for s, e in zip(starts, ends, strict=True):
        yield int((win[s] + 1) * window_ms), df[int(s) : int(e)]
