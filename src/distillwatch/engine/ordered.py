"""Replay windows cut while features are still being computed (time-ordered input).

API logs are almost always written in event-time order (one file per hour,
rows appended as requests finish). For such input the replay does not have to
wait for the whole feature table: :class:`OrderedWindows` receives feature
frames in input order and hands back each event-time window as soon as no
later input can still fall into it, so the causal replay runs in the main
process while the feature workers keep going (the two overlap instead of
adding up).

A window ``w`` (``[w * window_ms, (w + 1) * window_ms)``) is released once an
event at or after ``(w + 1) * window_ms + lateness_ms`` has been seen: input
may be out of order by up to ``lateness_ms`` (several gateway shards writing
into one log) and still stream. An event that falls into an already released
window means the input is not ordered after all; :meth:`push` then returns
``None`` and the caller replays from the feature store instead, after ingest
(the result is the same, only the overlap is lost).

The windows are exactly those :meth:`FeatureStore.windows` yields for the
same rows (same bounds, same rows, time-sorted, empty windows skipped), so
the verdicts do not depend on which path ran; ``tests/test_ordered_windows.py``
checks the windows and ``tests/test_engine.py`` whole detection runs.
"""

from __future__ import annotations

import polars as pl

from distillwatch.engine.store import split_windows

Window = tuple[int, pl.DataFrame]


class OrderedWindows:
    """Cut a stream of (nearly) time-ordered feature frames into replay windows."""

    def __init__(self, window_ms: int, lateness_ms: int = 0) -> None:
        if window_ms <= 0 or lateness_ms < 0:
            raise ValueError("window_ms must be > 0 and lateness_ms >= 0")
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self._buffer: list[pl.DataFrame] = []
        self._released = -(2**62)  # windows below this index are out
        self._max_ms = -(2**62)

    def push(self, feat: pl.DataFrame) -> list[Window] | None:
        """Add one feature frame; the windows now complete, or None if order broke."""
        if feat.height == 0:
            return []
        ms = feat["ts"].dt.epoch("ms").to_numpy()
        lo, hi = int(ms.min()), int(ms.max())
        if lo // self.window_ms < self._released:
            return None
        self._buffer.append(feat)
        self._max_ms = max(self._max_ms, hi)
        ready = (self._max_ms - self.lateness_ms) // self.window_ms
        return self._release(ready)

    def finish(self) -> list[Window]:
        """Every window still buffered (the input has ended)."""
        return self._release(2**62)

    def _release(self, upto: int) -> list[Window]:
        """Windows with index < ``upto`` out of the buffer, in time order."""
        if upto <= self._released or not self._buffer:
            self._released = max(self._released, upto)
            return []
        df = self._buffer[0]
        if len(self._buffer) > 1:
            df = pl.concat(self._buffer, how="vertical_relaxed")
        win = df["ts"].dt.epoch("ms").to_numpy() // self.window_ms
        out_mask = win < upto
        self._released = upto
        if not out_mask.any():
            self._buffer = [df]
            return []
        keep = df.filter(pl.Series(~out_mask))
        self._buffer = [keep] if keep.height else []
        ready = df.filter(pl.Series(out_mask)).sort("ts", maintain_order=True)
        w = ready["ts"].dt.epoch("ms").to_numpy() // self.window_ms
        return list(split_windows(ready, w, self.window_ms))
