"""Model launch tracking: flags requests sent within a day of a model's first appearance.

The public reports describe campaigns moving to a newly released model
within a day. The first time a model name appears in the (time-ordered)
stream is taken as its release; requests to it in the next ``window_ms`` are
``new_model``. Models seen in the first day of the data are not counted as
new (the log simply starts there). State is one timestamp per model name, and
a batch with no model in its launch window costs one ``unique``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from distillwatch.features.columns import Features, column, height

DAY_MS = 86_400_000


class ModelLaunchTracker:
    """Adds the Boolean ``new_model`` column to time-ordered feature batches."""

    def __init__(self, window_ms: int = DAY_MS, warmup_ms: int = DAY_MS) -> None:
        self.window_ms = window_ms
        self.warmup_ms = warmup_ms
        self.first_seen: dict[str, int] = {}
        self.start_ms: int | None = None

    def flags(self, feat: Features) -> np.ndarray:
        """Boolean per row: is the row's model within its launch window?"""
        n = height(feat)
        if n == 0:
            return np.zeros(0, dtype=bool)
        ts = column(feat, "ts").astype("datetime64[ms]").astype(np.int64)
        lo = int(np.minimum.reduce(ts))  # ts.min() without its Python-level wrapper
        if self.start_ms is None:
            self.start_ms = lo
        if isinstance(feat, pl.DataFrame):
            col = feat.get_column("model").fill_null("")
            models = col.to_numpy()
            # Polars hashes the strings; np.unique sorted Python objects (~10x slower)
            uniq = set(col.to_list()) if n < 64 else set(col.unique().to_list())
        else:
            models = np.array(["" if m is None else m for m in feat["model"]], dtype=object)
            uniq = set(models.tolist())
        for m in uniq - self.first_seen.keys():
            self.first_seen[m] = int(ts[models == m].min())
        active = {
            m: t
            for m in uniq
            if (t := self.first_seen[m]) - self.start_ms >= self.warmup_ms
            and lo - t < self.window_ms
        }
        out = np.zeros(n, dtype=bool)
        for m, t in active.items():
            hit = models == m
            out |= hit & (ts - t < self.window_ms)
        return out

    def annotate(self, feat: pl.DataFrame) -> pl.DataFrame:
        return feat.with_columns(pl.Series("new_model", self.flags(feat)))
