"""The signal protocol every per-entity detector follows.

A signal reads a :class:`~distillwatch.signals.state.StateView` (many
entities at once) and returns, per entity, a *measure* (the quantity an
analyst can check, e.g. "share of requests asking for chain-of-thought") and a
*score* in [0, 1] (how suspicious that measure is). Scores shrink towards 0
while an entity has fewer than ``min_requests`` requests, so no signal speaks
on thin evidence. Every subclass is run through one conformance suite
(``tests/test_signal_conformance.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from distillwatch.signals.state import StateView

try:  # the ufunc that np.clip and ndarray.clip end in
    from numpy._core import umath as _umath
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core import umath as _umath  # type: ignore[no-redef]
_clip_ufunc: np.ufunc = _umath.clip  # type: ignore[attr-defined]

# np.clip(a, lo, hi) dispatches to a.clip(lo, hi), which goes through a
# Python-level helper (numpy/_core/_methods._clip) before the clip ufunc; for
# float arrays with float bounds that helper only calls the ufunc, so clip()
# below calls it directly (the same values). These fixed costs dominate
# one-entity views (the gateway scores one account per request). Same for
# _nan_to_num and np.zeros below.
_F64_MAX = float(np.finfo(np.float64).max)
_F64_MIN = float(np.finfo(np.float64).min)


def clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``x.clip(lo, hi)`` of a float array."""
    out: np.ndarray = _clip_ufunc(x, lo, hi)
    return out


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    return clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def _nan_to_num(x: np.ndarray, nan: float = 0.0, posinf: float | None = None) -> np.ndarray:
    """``np.nan_to_num(x, nan=nan, posinf=posinf)``, except that an all-finite ``x``
    comes back as it is rather than copied (callers copy or own it)."""
    if np.isfinite(x).all():
        return x
    if type(x) is np.ndarray and x.dtype == np.float64:
        # np.nan_to_num's own steps, without its Python-level helpers
        out = x.copy()
        np.copyto(out, nan, where=np.isnan(out))
        np.copyto(out, _F64_MAX if posinf is None else posinf, where=out == np.inf)
        np.copyto(out, _F64_MIN, where=out == -np.inf)
        return out
    res: np.ndarray = np.nan_to_num(x, nan=nan, posinf=posinf)
    return res


def share(v: StateView, col: str) -> np.ndarray:
    """Per-entity share of requests with a property (0 where n == 0)."""
    n = v["n"]
    return np.divide(v[col], n, out=np.zeros(n.shape, n.dtype), where=n > 0)


class Signal(ABC):
    """One per-entity detector. Subclasses document what they catch and miss."""

    name: ClassVar[str]
    group: ClassVar[str]  # "harvest", "automation" or "identity"
    min_requests: ClassVar[int] = 20
    unit: ClassVar[str] = ""

    @abstractmethod
    def measure(self, v: StateView) -> np.ndarray:
        """The checkable quantity, per entity."""

    @abstractmethod
    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        """Map the measure to [0, 1] before evidence shrinkage."""

    def detail(self, value: float) -> str:
        """Analyst-facing sentence for one entity's measure."""
        return f"{self.name} = {value:.3g}{self.unit}"

    def score(self, v: StateView) -> tuple[np.ndarray, np.ndarray]:
        """(measure, score) arrays; score in [0, 1], shrunk on thin evidence."""
        m = _clean_measures(self.measure(v).astype(np.float64))
        return m, _shrink(self.suspicion(v, m), v["n"], float(self.min_requests))


# The steps of Signal.score around measure and suspicion, element-wise, so that
# score_many can run them once on the stacked arrays of many signals.
def _clean_measures(m: np.ndarray) -> np.ndarray:
    """Float64 measures (owned by the caller) with NaN and +inf as 0."""
    return _nan_to_num(m, nan=0.0, posinf=0.0)


def _shrink(suspicion: np.ndarray, n: np.ndarray, min_requests: float | np.ndarray) -> np.ndarray:
    """Suspicion clipped to [0, 1] (NaN as 0) times the evidence n / min_requests, clipped."""
    raw = clip(np.asarray(_nan_to_num(suspicion, nan=0.0)), 0.0, 1.0)
    evidence = clip(n / min_requests, 0.0, 1.0)
    out: np.ndarray = raw * evidence
    return out


def score_many(
    signals: Sequence[Signal], v: StateView, min_requests: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``Signal.score`` of several signals, stacked: row i is ``signals[i].score(v)``.

    Each signal's measure and suspicion run as usual; the steps around them
    are element-wise, so they run once on the (signals x entities) arrays
    (the same values: a test checks). For one entity (the gateway) this saves
    most of the per-signal NumPy calls. ``min_requests`` is the signals'
    ``min_requests`` as a column (callers scoring often pass it precomputed).
    """
    k = len(v)
    if not signals:
        return np.zeros((0, k)), np.zeros((0, k))
    m = _clean_measures(np.array([s.measure(v) for s in signals], dtype=np.float64))
    susp = np.array([s.suspicion(v, m[i]) for i, s in enumerate(signals)], dtype=np.float64)
    if min_requests is None:
        min_requests = np.array([[float(s.min_requests)] for s in signals])
    return m, _shrink(susp, v["n"], min_requests)
