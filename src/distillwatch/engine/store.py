"""The embedded feature store: DuckDB on local disk.

Feature batches are appended as they are computed (in arrival order); the
replay then reads them back in event-time order, streamed in Arrow record
batches, and cut into micro-batch windows. DuckDB sorts out of core, so
memory stays bounded whatever the input size (``memory_limit`` setting).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa


class FeatureStore:
    """Append-then-replay store of per-request features."""

    def __init__(
        self,
        path: Path | str = ":memory:",
        memory_limit: str = "768MB",
        append_memory_limit: str = "256MB",
    ) -> None:
        """``append_memory_limit`` holds while batches are appended (the streamed
        replay's state grows alongside), ``memory_limit`` for the sorted read."""
        self.path = str(path)
        self.memory_limit = memory_limit
        self.con = duckdb.connect(self.path)
        self.con.execute(f"SET memory_limit='{append_memory_limit}'")
        self.con.execute("SET preserve_insertion_order=false")
        if self.path != ":memory:":
            tmp = Path(self.path).with_suffix(".tmp")
            self.con.execute(f"SET temp_directory='{tmp}'")
        self._created = False
        self.rows = 0

    def append(self, feat: pl.DataFrame) -> None:
        if feat.height == 0:
            return
        arrow = feat.to_arrow()
        self.con.register("_batch", arrow)
        if not self._created:
            self.con.execute("CREATE OR REPLACE TABLE features AS SELECT * FROM _batch")
            self._created = True
        else:
            self.con.execute("INSERT INTO features SELECT * FROM _batch")
        self.con.unregister("_batch")
        self.rows += feat.height

    def windows(
        self, window_ms: int, fetch_rows: int = 200_000
    ) -> Iterator[tuple[int, pl.DataFrame]]:
        """Yield (window end ms, rows) per non-empty event-time window, in order."""
        if not self._created:
            return
        self.con.execute(f"SET memory_limit='{self.memory_limit}'")
        reader = self.con.sql("SELECT * FROM features ORDER BY ts").to_arrow_reader(fetch_rows)
        frames = (pl.DataFrame(pl.from_arrow(pa.Table.from_batches([rb]))) for rb in reader)
        yield from cut_windows(frames, window_ms)

    def close(self) -> None:
        self.con.close()


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
