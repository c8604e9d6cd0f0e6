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
from typing import ClassVar

import numpy as np

from distillwatch.signals.state import StateView


# np.clip(a, lo, hi) is a.clip(lo, hi) (numpy dispatches to the method); the
# method skips that dispatch, a fixed cost that dominates one-entity views (the
# gateway scores one account per request). Same for _nan_to_num below.


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    out: np.ndarray = ((np.asarray(x, dtype=np.float64) - lo) / (hi - lo)).clip(0.0, 1.0)
    return out


def _nan_to_num(x: np.ndarray, nan: float = 0.0, posinf: float | None = None) -> np.ndarray:
    """``np.nan_to_num(x, nan=nan, posinf=posinf)``, except that an all-finite ``x``
    comes back as it is rather than copied (callers copy or own it)."""
    if np.isfinite(x).all():
        return x
    out: np.ndarray = np.nan_to_num(x, nan=nan, posinf=posinf)
    return out


def share(v: StateView, col: str) -> np.ndarray:
    """Per-entity share of requests with a property (0 where n == 0)."""
    n = v["n"]
    return np.divide(v[col], n, out=np.zeros_like(n), where=n > 0)


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
        m = _nan_to_num(self.measure(v).astype(np.float64), nan=0.0, posinf=0.0)
        raw = np.asarray(_nan_to_num(self.suspicion(v, m), nan=0.0)).clip(0.0, 1.0)
        evidence = (v["n"] / float(self.min_requests)).clip(0.0, 1.0)
        return m, raw * evidence
