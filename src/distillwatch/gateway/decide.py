"""The online decision: contract events -> features -> account state -> action.

:class:`Decider` runs the batch engine's own pipeline on a micro-batch of
requests: ``normalize_event`` -> ``compute_features``' small-batch path on the
rows (:func:`feature_columns`: NumPy columns, no frame built; batches over
:data:`COLUMNS_MAX` rows go through :func:`events_frame` and the batch path)
-> ``ModelLaunchTracker`` -> state fold -> ``Scorer``. Nothing here
re-implements a detector. The Decider keeps a text-feature cache and the small
path's memo of Polars results for its lifetime, so a request runs at most one
small Polars query (none when its strings and parameters were seen before).
:class:`Batcher` groups the requests that arrive while a batch is being scored
into the next batch (group commit), so fixed per-call costs are paid once per
batch instead of once per request and the throughput ceiling grows with load.
Scoring runs on one worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from distillwatch.features.cache import TextFeatureCache
from distillwatch.features.classifiers import TextClassifiers
from distillwatch.features.columns import Features
from distillwatch.features.model_launch import ModelLaunchTracker
from distillwatch.features.request import (
    TEXT_DTYPES,
    compute_features,
)
from distillwatch.features.small_batch import (
    EVENT_FRAME_SCHEMA,
    SmallBatchMemo,
    feature_columns,
    prepare_small_batch,
)
from distillwatch.ingest.normalize import Row, normalize_event
from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import Scorer

from .statestore import MemoryState, RedisState, StateUnavailable

# Micro-batches up to this many rows take feature_columns (the small-batch
# path, same output); bigger ones the batch path. With the Decider's memo and
# text cache the small path is the faster one up to ~150 new texts on this
# project's 2-core reference machine (bench/gateway_bench.py --decider-only).
COLUMNS_MAX = 128


def events_frame(rows: list[Row]) -> pl.DataFrame:
    """``pl.DataFrame(rows_to_batch(rows))`` without the Arrow detour: the same
    frame (a test checks), about half the cost for a micro-batch."""
    return pl.DataFrame(rows, schema=EVENT_FRAME_SCHEMA, orient="row")


@dataclass(frozen=True)
class Online:
    """Online verdict for one request: action index (None if state unavailable) and risk."""

    action: int | None
    risk: float
    error: str | None = None


@dataclass
class Timings:
    """Cumulative seconds per pipeline stage (for the benchmark's breakdown)."""

    batches: int = 0
    requests: int = 0
    normalize: float = 0.0
    features: float = 0.0
    fold: float = 0.0
    score: float = 0.0


class Decider:
    """Scores micro-batches of contract events against the account state."""

    def __init__(
        self,
        settings: Settings,
        clf: TextClassifiers,
        state: MemoryState | RedisState,
        text_cache: int = 1 << 16,
        columns_max: int = COLUMNS_MAX,
    ) -> None:
        self.scorer = Scorer(settings)
        self.clf = clf
        self.state = state
        self.launches = ModelLaunchTracker()
        self.timings = Timings()
        self.cache = TextFeatureCache(TEXT_DTYPES, capacity=text_cache)
        self.memo = SmallBatchMemo()
        self.columns_max = columns_max
        prepare_small_batch()  # not on the first request

    def decide_batch(self, events: list[dict[str, Any]]) -> list[Online]:
        """One Online per event, in order; events off-contract get action 0 (upstream judges them)."""
        t0 = time.perf_counter()
        rows, idx = [], []
        for i, ev in enumerate(events):
            row, _reason = normalize_event(ev)
            if row is not None:
                rows.append(row)
                idx.append(i)
        out = [Online(0, 0.0, "not a contract event")] * len(events)
        if not rows:
            return out
        t1 = time.perf_counter()
        feat: Features
        if len(rows) <= self.columns_max:
            cols = feature_columns(rows, self.clf, self.cache, self.memo)
            cols["new_model"] = self.launches.flags(cols)
            feat, keys = cols, cols["account_id"].tolist()
        else:
            frame = compute_features(events_frame(rows), self.clf, self.cache)
            feat = self.launches.annotate(frame)
            keys = frame.get_column("account_id").to_list()
        t2 = time.perf_counter()
        try:
            view = self.state.fold(feat, keys)
        except StateUnavailable as e:
            return [Online(None, float("nan"), f"state unavailable: {e}")] * len(events)
        t3 = time.perf_counter()
        res = self.scorer.score(view)
        pos = {k: j for j, k in enumerate(view.keys)}
        action = np.asarray(res.action)
        for i, a in zip(idx, keys, strict=True):
            j = pos[a]
            out[i] = Online(int(action[j]), float(res.risk[j]))
        t4 = time.perf_counter()
        tm = self.timings
        tm.batches += 1
        tm.requests += len(rows)
        tm.normalize += t1 - t0
        tm.features += t2 - t1
        tm.fold += t3 - t2
        tm.score += t4 - t3
        return out


class Batcher:
    """Group commit of concurrent requests into Decider micro-batches on one worker thread."""

    def __init__(self, decider: Decider, max_batch: int = 256) -> None:
        self.decider = decider
        self.max_batch = max_batch
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dw-score")
        self._pending: list[tuple[dict[str, Any], asyncio.Future[Online]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, event: dict[str, Any]) -> Online:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Online] = loop.create_future()
        self._pending.append((event, fut))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                events = [e for e, _ in batch]
                try:
                    results = await loop.run_in_executor(
                        self.executor, self.decider.decide_batch, events
                    )
                except Exception as exc:  # a bug must not hang requests
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for (_, f), r in zip(batch, results, strict=True):
                    if not f.done():
                        f.set_result(r)
        finally:
            self._running = False

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def make_state(url: str, prefix: str) -> MemoryState | RedisState:
    """``memory`` or a Redis URL -> state backend."""
    return MemoryState() if url == "memory" else RedisState(url, prefix)


__all__ = ["Batcher", "Decider", "Online", "StateUnavailable", "make_state"]
