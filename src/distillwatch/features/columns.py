"""Feature batches as either a Polars frame or NumPy columns.

The batch engine hands the state fold and the model-launch tracker Polars
frames; the gateway's micro-batches come from
:func:`~distillwatch.features.request.feature_columns` as a dict of NumPy
columns (what ``frame.get_column(c).to_numpy()`` would give), which skips
building a frame for one row. Consumers read columns through :func:`column`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

FeatureColumns = Mapping[str, np.ndarray]
Features = pl.DataFrame | FeatureColumns


def column(feat: Features, name: str) -> np.ndarray:
    """Column ``name`` as NumPy (strings as an object array, nulls as None)."""
    if isinstance(feat, pl.DataFrame):
        return feat.get_column(name).to_numpy()
    return np.asarray(feat[name])


def height(feat: Features) -> int:
    """Number of rows."""
    if isinstance(feat, pl.DataFrame):
        return feat.height
    return len(next(iter(feat.values()))) if feat else 0
