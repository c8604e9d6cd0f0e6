"""Model launch tracking: flags requests sent within a day of a model's first appearance.

The public reports describe campaigns moving to a newly released model
within a day. The first time a model name appears in the (time-ordered)
stream is taken as its release; requests to it in the next ``window_ms`` are
``new_model``. Models seen in the first day of the data are not counted as
new (the log simply starts there). State is one timestamp per model name.
"""

from __future__ import annotations

import polars as pl

DAY_MS = 86_400_000


class ModelLaunchTracker:
    """Adds the Boolean ``new_model`` column to time-ordered feature batches."""

    def __init__(self, window_ms: int = DAY_MS, warmup_ms: int = DAY_MS) -> None:
        self.window_ms = window_ms
        self.warmup_ms = warmup_ms
        self.first_seen: dict[str, int] = {}
        self.start_ms: int | None = None

    def annotate(self, feat: pl.DataFrame) -> pl.DataFrame:
        if feat.height == 0:
            return feat.with_columns(new_model=pl.lit(False))
        ts = feat["ts"].dt.epoch("ms")
        if self.start_ms is None:
            self.start_ms = int(ts.min())  # type: ignore[arg-type]
        firsts = (
            feat.select(pl.col("model").fill_null(""), ts.alias("t"))
            .group_by("model")
            .agg(pl.col("t").min())
        )
        for model, t in firsts.iter_rows():
            if model not in self.first_seen:
                self.first_seen[model] = int(t)
        launches = {m: t for m, t in self.first_seen.items() if t - self.start_ms >= self.warmup_ms}
        if not launches:
            return feat.with_columns(new_model=pl.lit(False))
        launch = (
            pl.col("model")
            .fill_null("")
            .replace_strict(launches, default=None, return_dtype=pl.Int64)
        )
        age = (
            feat["ts"]
            .dt.epoch("ms")
            .to_frame("t")
            .with_columns(launch=feat.select(launch).to_series())
        )
        flag = ((age["t"] - age["launch"]) < self.window_ms).fill_null(False)
        return feat.with_columns(new_model=flag)
