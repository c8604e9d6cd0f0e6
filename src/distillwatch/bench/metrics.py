"""Detection quality of a verdict file against simulator labels.

A *principal* is what the labels score: an account, or an end user inside a
reseller. Each principal is matched to its own verdict line, falling back to
its account's line when no end-user line was written. Definitions (the same
for our detector and every baseline):

- attack recall: attack principals at ``review`` or above, among those that
  sent at least one request (a labelled attack account that never sent one is
  *dormant*: no traffic detector can see it and it harvested nothing; the
  count is reported beside the recall, never silently dropped);
- benign enforced: benign principals at ``challenge`` or above (overall and
  per legitimate archetype);
- review load: principals at ``review`` or above, i.e. what analysts see;
- campaign detected: at least half its active principals at ``review`` or above;
- leakage: share of a campaign's attack requests served before their
  principal was first enforced (never enforced: all served; none when the
  scenario has no attack request);
- time to detect: first review time minus the principal's first request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from distillwatch.scoring.config import ACTIONS

_RANK = {a: i for i, a in enumerate(ACTIONS)}


@dataclass
class Metrics:
    """One row of the results table."""

    name: str
    campaigns: int = 0
    campaigns_detected: int = 0
    attack_principals: int = 0
    attack_recall: float = 0.0
    dormant_attack_principals: int = 0
    benign_principals: int = 0
    benign_enforced: int = 0
    benign_enforced_rate: float = 0.0
    benign_enforced_by_archetype: dict[str, int] = field(default_factory=dict)
    review_load: int = 0
    leakage: float | None = None  # None: no attack request to leak
    median_ttd_hours: float | None = None

    def row(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _mean(flags: pl.Series) -> float:
    return float(flags.cast(pl.Float64).to_numpy().mean())


def load_labels(sim_dir: Path) -> pl.DataFrame:
    return pl.read_ndjson(
        sim_dir / "labels_accounts.jsonl",
        schema={
            "account_id": pl.String,
            "end_user_id": pl.String,
            "archetype": pl.String,
            "is_attack": pl.Boolean,
            "campaign_id": pl.String,
            "tactic": pl.String,
        },
    )


def load_verdicts(path: Path) -> pl.DataFrame:
    v = pl.read_ndjson(
        path,
        schema={
            "account_id": pl.String,
            "end_user_id": pl.String,
            "action": pl.String,
            "first_review_ts": pl.String,
            "first_enforce_ts": pl.String,
        },
    )
    return v.with_columns(
        rank=pl.col("action").replace_strict(_RANK, return_dtype=pl.Int8),
        review_ms=pl.col("first_review_ts").str.to_datetime(time_zone="UTC").dt.epoch("ms"),
        enforce_ms=pl.col("first_enforce_ts").str.to_datetime(time_zone="UTC").dt.epoch("ms"),
    )


def match(labels: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    """Labels with the verdict columns of each principal (own line, else account line)."""
    cols = ["rank", "review_ms", "enforce_ms"]
    acct = verdicts.filter(pl.col("end_user_id").is_null()).select(["account_id", *cols])
    eu = verdicts.filter(pl.col("end_user_id").is_not_null()).select(
        ["account_id", "end_user_id", *cols]
    )
    m = labels.join(eu, on=["account_id", "end_user_id"], how="left")
    m = m.join(acct, on="account_id", how="left", suffix="_acct")
    own = pl.col("rank").is_not_null()
    return m.with_columns(
        [pl.when(own).then(pl.col(c)).otherwise(pl.col(f"{c}_acct")).alias(c) for c in cols]
    ).with_columns(pl.col("rank").fill_null(0))


def evaluate(
    name: str, labels: pl.DataFrame, verdicts: pl.DataFrame, requests: pl.DataFrame
) -> Metrics:
    """Metrics of one verdict set. ``requests``: id-less table of attack requests
    with account_id, end_user_id, ts_ms (one row per attack request)."""
    m = match(labels, verdicts)
    atk = m.filter(pl.col("is_attack"))
    ben = m.filter(~pl.col("is_attack"))
    out = Metrics(name=name)
    out.attack_principals = atk.height
    active = atk.filter(_active(atk, requests))
    out.dormant_attack_principals = atk.height - active.height
    out.attack_recall = _mean(active["rank"] >= 1) if active.height else 1.0
    out.benign_principals = ben.height
    enforced = ben.filter(pl.col("rank") >= 2)
    out.benign_enforced = enforced.height
    out.benign_enforced_rate = enforced.height / max(ben.height, 1)
    out.benign_enforced_by_archetype = dict(
        sorted(enforced.group_by("archetype").len().iter_rows())  # type: ignore[arg-type]
    )
    out.review_load = int((m["rank"] >= 1).sum())
    camp = active.group_by("campaign_id").agg((pl.col("rank") >= 1).mean().alias("r"))
    out.campaigns = camp.height
    out.campaigns_detected = int((camp["r"] >= 0.5).sum())
    if requests.height:
        out.leakage, out.median_ttd_hours = _leakage(atk, requests)
    return out


def _active(atk: pl.DataFrame, requests: pl.DataFrame) -> pl.Series:
    """Per attack principal: did it send any attack request? (An end user by its
    own requests; an account-level principal by any request of its account.)"""
    if requests.height == 0:  # no request table: every principal counts
        return pl.Series([True] * atk.height, dtype=pl.Boolean)
    eu = requests.filter(pl.col("end_user_id").is_not_null()).select(
        pl.struct(["account_id", "end_user_id"]).unique()
    )
    own = pl.struct(["account_id", "end_user_id"]).is_in(eu.to_series().implode())
    acct = pl.col("account_id").is_in(requests["account_id"].unique().implode())
    return atk.select(
        pl.when(pl.col("end_user_id").is_not_null()).then(own).otherwise(acct).fill_null(False)
    ).to_series()


def _leakage(atk: pl.DataFrame, requests: pl.DataFrame) -> tuple[float, float | None]:
    """Share of attack requests served before enforcement; median hours to review."""
    cols = ["enforce_ms", "review_ms"]
    eu = atk.filter(pl.col("end_user_id").is_not_null()).select(
        ["account_id", "end_user_id", *cols]
    )
    acct = atk.filter(pl.col("end_user_id").is_null()).select(["account_id", *cols])
    req = requests.join(eu, on=["account_id", "end_user_id"], how="left")
    req = req.join(acct, on="account_id", how="left", suffix="_a")
    own = pl.col("end_user_id").is_not_null() & (
        pl.struct(["account_id", "end_user_id"]).is_in(
            eu.select(pl.struct(["account_id", "end_user_id"])).to_series().implode()
        )
    )
    req = req.with_columns(
        principal=pl.when(own).then(pl.col("end_user_id")).otherwise(pl.lit(None)),
        enforce=pl.when(own).then(pl.col("enforce_ms")).otherwise(pl.col("enforce_ms_a")),
        review=pl.when(own).then(pl.col("review_ms")).otherwise(pl.col("review_ms_a")),
    )
    if req.height == 0:
        return 1.0, None
    served = req["enforce"].is_null() | (req["ts_ms"] < req["enforce"])
    leak = _mean(served)
    first = req.group_by(["account_id", "principal"]).agg(
        pl.col("ts_ms").min(), pl.col("review").first()
    )
    # flagged before its first attack request (e.g. a reseller already under review): 0
    ttd = np.maximum((first["review"] - first["ts_ms"]).drop_nulls().to_numpy(), 0)
    return leak, (float(np.median(ttd) / 3.6e6) if len(ttd) else None)
