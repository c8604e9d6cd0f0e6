"""Baselines run on the same data as distillwatch, scored by the same metrics.

- :func:`rate_limit`: what a gateway offers today, a per-key request budget
  (block an account once it exceeds ``per_hour`` requests in a rolling hour).
- :func:`prada`: PRADA (Juuti et al. 2019): per account, the distance of each
  new query to the nearest earlier query; flag when the distance distribution
  departs from normal (Shapiro-Wilk W below ``w_threshold``).
- :func:`seat`: SEAT (Zhang et al. 2021): per account, count near-duplicate
  query pairs (Jaccard >= 0.8 by MinHash); flag past ``pairs`` pairs.

Distances use the same slot-normalised MinHash as the detector. All three
are causal: the flag time is the request that crossed the threshold.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import shapiro

from distillwatch.features.fingerprint import minhash_signatures
from distillwatch.features.text import template_expr, tokens_expr

MAX_PER_ACCOUNT = 400


def _verdicts(flags: dict[str, int], accounts: list[str], action: str) -> pl.DataFrame:
    rows = []
    for a in accounts:
        t = flags.get(a)
        rows.append((a, None, action if t is not None else "allow", t))
    df = pl.DataFrame(
        rows,
        schema={
            "account_id": pl.String,
            "end_user_id": pl.String,
            "action": pl.String,
            "t": pl.Int64,
        },
        orient="row",
    )
    rank = {"allow": 0, "review": 1, "challenge": 2, "degrade": 3, "block": 4}
    return df.with_columns(
        rank=pl.col("action").replace_strict(rank, return_dtype=pl.Int8),
        review_ms=pl.col("t"),
        enforce_ms=pl.col("t"),
    ).drop("t")


def rate_limit(events: pl.DataFrame, per_hour: int = 600) -> pl.DataFrame:
    """Block accounts the first time they exceed ``per_hour`` requests in 60 minutes."""
    ev = events.select("account_id", "ts_ms").sort(["account_id", "ts_ms"])
    ts = ev["ts_ms"].to_numpy()
    acct = ev["account_id"].to_numpy()
    lag = np.full(len(ts), np.iinfo(np.int64).min)
    if len(ts) > per_hour:
        lag[per_hour:] = ts[:-per_hour]
        same = np.zeros(len(ts), dtype=bool)
        same[per_hour:] = acct[per_hour:] == acct[:-per_hour]
        hit = same & (ts - lag < 3_600_000)
    else:
        hit = np.zeros(len(ts), dtype=bool)
    flags: dict[str, int] = {}
    for i in np.flatnonzero(hit):
        flags.setdefault(str(acct[i]), int(ts[i]))
    return _verdicts(flags, ev["account_id"].unique().to_list(), "block")


def _signatures(events: pl.DataFrame) -> np.ndarray:
    tok = events.select(tokens_expr(template_expr(pl.col("prompt"))).alias("t"))["t"]
    return minhash_signatures(tok)


def _per_account(events: pl.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray]]:
    ev = (
        events.sort(["account_id", "ts_ms"])
        .with_columns(r=pl.int_range(pl.len()).over("account_id"))
        .filter(pl.col("r") < MAX_PER_ACCOUNT)
    )
    sig = _signatures(ev)
    acct = ev["account_id"].to_numpy()
    ts = ev["ts_ms"].to_numpy()
    bounds = np.flatnonzero(acct[1:] != acct[:-1]) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(acct)]
    return [(str(acct[s]), sig[s:e], ts[s:e]) for s, e in zip(starts, ends, strict=True)]


def _similarity(sig: np.ndarray) -> np.ndarray:
    return (sig[:, None, :] == sig[None, :, :]).mean(axis=2)


def prada(events: pl.DataFrame, w_threshold: float = 0.9, min_queries: int = 30) -> pl.DataFrame:
    """PRADA nearest-neighbour distance normality test per account."""
    flags: dict[str, int] = {}
    accounts: list[str] = []
    for acct, sig, ts in _per_account(events):
        accounts.append(acct)
        if len(ts) < min_queries + 1:
            continue
        sim = _similarity(sig)
        np.fill_diagonal(sim, -1.0)
        lower = np.tril(sim, k=-1) + np.triu(np.full_like(sim, -1.0))
        nn = 1.0 - lower.max(axis=1)[1:]  # distance to nearest earlier query
        for k in range(min_queries, len(nn) + 1, 10):
            d = nn[:k]
            if np.ptp(d) == 0 or shapiro(d).statistic < w_threshold:
                flags[acct] = int(ts[k])
                break
    return _verdicts(flags, accounts, "block")


def seat(events: pl.DataFrame, pairs: int = 50, threshold: float = 0.8) -> pl.DataFrame:
    """SEAT near-duplicate pair counting per account."""
    flags: dict[str, int] = {}
    accounts: list[str] = []
    for acct, sig, ts in _per_account(events):
        accounts.append(acct)
        if len(ts) < 2:
            continue
        sim = _similarity(sig)
        close = np.tril(sim >= threshold, k=-1).sum(axis=1)
        total = np.cumsum(close)
        over = np.flatnonzero(total >= pairs)
        if len(over):
            flags[acct] = int(ts[over[0]])
    return _verdicts(flags, accounts, "block")
