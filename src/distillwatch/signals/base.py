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

from distillwatch.signals.state import StateView, num_index

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


def _all(mask: np.ndarray) -> bool:
    """``mask.all()`` without ndarray.all's Python-level helper."""
    return bool(np.logical_and.reduce(mask, axis=None))


def clip(x: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    """``x.clip(lo, hi)`` of a float array."""
    out: np.ndarray = _clip_ufunc(x, lo, hi)
    return out


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    return clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def _nan_to_num(x: np.ndarray, nan: float = 0.0, posinf: float | None = None) -> np.ndarray:
    """``np.nan_to_num(x, nan=nan, posinf=posinf)``, except that an all-finite ``x``
    comes back as it is rather than copied (callers copy or own it)."""
    if _all(np.isfinite(x)):
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
    # the distinct-count sketches measure/suspicion read (StateView.distinct),
    # so that a scorer can estimate them all in one pass (StateView.distinct_many)
    sketches: ClassVar[tuple[str, ...]] = ()

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


class RampSignal(Signal):
    """A signal whose suspicion is a ramp of its measure: 0 at or below
    ``ramp_lo``, 1 at or above ``ramp_hi``, linear between (``falling``: one
    minus that). :func:`score_many` ramps all such signals of a scorer in one
    stacked pass (the same arithmetic, element by element)."""

    ramp_lo: ClassVar[float]
    ramp_hi: ClassVar[float]
    falling: ClassVar[bool] = False

    def suspicion(self, v: StateView, m: np.ndarray) -> np.ndarray:
        r = ramp(m, self.ramp_lo, self.ramp_hi)
        return 1.0 - r if self.falling else r


class ShareSignal(RampSignal):
    """A ramp signal whose measure is the share of requests with a property
    (the state column ``share_of`` counts them); :func:`score_many` reads the
    columns of all such signals in one gather."""

    share_of: ClassVar[str]

    def measure(self, v: StateView) -> np.ndarray:
        return share(v, self.share_of)


def _plain_share(s: Signal) -> bool:
    """A ShareSignal measured by ShareSignal's own measure."""
    return isinstance(s, ShareSignal) and type(s).measure is ShareSignal.measure


def _plain_ramp(s: Signal) -> bool:
    """A RampSignal whose suspicion is RampSignal's own."""
    return isinstance(s, RampSignal) and type(s).suspicion is RampSignal.suspicion


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


class ScorePlan:
    """What :func:`score_many` needs of a list of signals, worked out once:
    the plain share signals (measured stacked) and their columns, the plain
    ramp signals (ramped stacked) and their bounds, the sketches all of them
    read, and ``min_requests``."""

    def __init__(self, signals: Sequence[Signal]) -> None:
        self.signals = signals if isinstance(signals, list) else list(signals)
        shares = [i for i, s in enumerate(self.signals) if _plain_share(s)]
        self.share_rows = np.array(shares, dtype=np.intp)
        self.measure_rows = [i for i, s in enumerate(self.signals) if not _plain_share(s)]
        self.share_cols = tuple(
            s.share_of for s in self.signals if isinstance(s, ShareSignal) and _plain_share(s)
        )
        self.share_at = num_index(self.share_cols) if shares else None
        ramped = [s for s in self.signals if isinstance(s, RampSignal) and _plain_ramp(s)]
        self.ramp_rows = np.array(
            [i for i, s in enumerate(self.signals) if _plain_ramp(s)], dtype=np.intp
        )
        self.suspicion_rows = [i for i, s in enumerate(self.signals) if not _plain_ramp(s)]
        self.ramp_lo = np.array([[float(s.ramp_lo)] for s in ramped])
        self.ramp_width = np.array([[float(s.ramp_hi) - float(s.ramp_lo)] for s in ramped])
        self.falling = np.array([[s.falling] for s in ramped], dtype=bool)
        self.sketches = tuple(dict.fromkeys(k for s in self.signals for k in s.sketches))
        self.min_requests = np.array([[float(s.min_requests)] for s in self.signals])


def _share_measures(v: StateView, plan: ScorePlan) -> np.ndarray:
    """``share(v, c)`` of every plain share signal's column c, as rows."""
    n = v["n"]
    counts = v.block(plan.share_cols, plan.share_at).T
    out: np.ndarray = np.divide(counts, n, out=np.zeros(counts.shape), where=n > 0)
    return out


def score_many(
    signals: Sequence[Signal],
    v: StateView,
    min_requests: np.ndarray | None = None,
    plan: ScorePlan | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``Signal.score`` of several signals, stacked: row i is ``signals[i].score(v)``.

    The steps around each signal's measure and suspicion are element-wise, so
    they run once on the (signals x entities) arrays; the plain share signals
    (:class:`ShareSignal`) are measured together, their columns read in one
    gather, and the plain ramp signals (:class:`RampSignal`) ramped together
    (the same values: a test checks). For one
    entity (the gateway) this saves most of the per-signal NumPy calls.
    ``plan``: :class:`ScorePlan` of ``signals`` (callers scoring often pass it
    precomputed); ``min_requests``: the signals' ``min_requests`` as a column.
    """
    k = len(v)
    if not signals:
        return np.zeros((0, k)), np.zeros((0, k))
    if plan is None:
        plan = ScorePlan(signals)
    assert plan.signals is signals or plan.signals == list(signals)
    if len(plan.sketches) > 1:
        v.distinct_many(plan.sketches)
    share_rows, ramp_rows = plan.share_rows, plan.ramp_rows
    m = np.empty((len(signals), k))
    if len(share_rows):
        m[share_rows] = _share_measures(v, plan)
    for i in plan.measure_rows:
        m[i] = signals[i].measure(v)
    m = _clean_measures(m)
    susp = np.empty((len(signals), k))
    if len(ramp_rows):
        # ramp(m, lo, hi) of each ramp signal's row, (m - lo) / (hi - lo) clipped,
        # and one minus that for the falling ones
        r = clip((m[ramp_rows] - plan.ramp_lo) / plan.ramp_width, 0.0, 1.0)
        np.subtract(1.0, r, out=r, where=plan.falling)
        susp[ramp_rows] = r
    for i in plan.suspicion_rows:
        susp[i] = signals[i].suspicion(v, m[i])
    if min_requests is None:
        min_requests = plan.min_requests
    return m, _shrink(susp, v["n"], min_requests)
