"""Linking-stage cost: a hydra campaign of N accounts inside a stream of benign traffic.

Builds feature frames directly (no simulator or text classifier needed),
replays them through :class:`distillwatch.engine.replay.Replay` with the
campaign linker, and times only the linker's ``observe`` + ``refresh`` calls
(plus the final hindsight refresh and campaign records). Memory: the size of
the linker's evidence table and the process peak RSS. Run at several sizes to
see the growth, e.g.::

    python bench/linking_bench.py --events 250000 500000 1000000

The largest default size has a 25,000-account campaign inside 1M events.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from distillwatch.engine.replay import Replay
from distillwatch.features.request import FEATURE_SCHEMA
from distillwatch.linking import CampaignLinker
from distillwatch.scoring.config import Settings
from distillwatch.scoring.risk import Scorer
from distillwatch.signals.state import EntityState

T0 = 1_772_409_600_000
DAY = 86_400_000


def stream(n_events: int, days: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Feature rows: a campaign (half the events, 25k accounts per 1M events) + background."""
    rng = np.random.default_rng(seed)
    n_camp = max(3, n_events // 40)  # 25,000 accounts at 1M events
    n_bg = max(10, n_events // 20)  # 50,000 benign accounts at 1M events
    half = n_events // 2
    camp_acct = rng.integers(0, n_camp, half)
    bg_acct = n_camp + rng.integers(0, n_bg, n_events - half)
    acct = np.concatenate([camp_acct, bg_acct])
    is_camp = acct < n_camp
    n = len(acct)

    def rand(k: int) -> np.ndarray:
        return rng.integers(1 << 20, 1 << 62, k).astype(np.uint64)

    tasks = rand(5_000)
    nets = rand(max(6, n_camp // 400))
    corp = rand(max(2, n_bg // 200))
    home = rand(n_bg)
    cols: dict[str, object] = {
        "ts": T0 + rng.integers(0, days * DAY, n),
        "account_id": np.char.add("acct_", acct.astype(str)),
        "template_key": np.where(is_camp, rng.choice(tasks, n), rand(n)),
        # Benign accounts keep a home network (a third share a corporate
        # range) and roam to a random one for 10% of requests; the campaign
        # rotates through its own few networks.
        "ip_prefix": np.where(
            is_camp,
            nets[acct % len(nets)],
            np.where(
                rng.random(n) < 0.1,
                rand(n),
                np.where(acct % 3 == 0, corp[acct % len(corp)], home[acct - n_camp]),
            ),
        ),
        "ua_key": np.where(is_camp, np.uint64(7), (acct % 50).astype(np.uint64) + np.uint64(100)),
        "param_sig": np.where(is_camp, np.uint64(55), rng.integers(0, 20, n).astype(np.uint64)),
        "sys_key": np.where(is_camp, np.uint64(77), (acct % 7).astype(np.uint64)),
        "cot": np.where(is_camp, 0.9, 0.05).astype(np.float32),
        "capability": np.where(is_camp, 4, acct % 7).astype(np.int8),
        "single_turn": is_camp | (acct % 2 == 0),
        "output_tokens": np.full(n, 300, np.int32),
    }
    cols["lsh_0"] = cols["template_key"]
    df = pl.DataFrame(cols).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    missing = [c for c in FEATURE_SCHEMA if c not in df.columns]
    df = df.with_columns([pl.lit(None if c == "end_user_id" else 0).alias(c) for c in missing])
    df = df.select([pl.col(c).cast(t) for c, t in FEATURE_SCHEMA.items()]).sort("ts")
    ids = [f"acct_{i}" for i in range(n_camp + n_bg)]
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            # The campaign signs up in a burst five days before; benign
            # customers over the two years before (ms resolution, so no two
            # share an instant by construction).
            "created_at": np.concatenate(
                [
                    np.full(n_camp, T0 - 5 * DAY),
                    T0 - rng.integers(30 * DAY, 730 * DAY, n_bg),
                ]
            ),
            "tier": ["startup_program" if i < n_camp else "pay_as_you_go" for i in range(len(ids))],
            "verified": [i >= n_camp for i in range(len(ids))],
            "payment_fingerprint": [
                f"pm_pool{i % 1000}" if i < n_camp else f"pm_{i}" for i in range(len(ids))
            ],
            "email_domain": ["gmail.com"] * len(ids),
            "country": ["SG"] * len(ids),
            "reseller": [False] * len(ids),
        }
    ).with_columns(pl.col("created_at").cast(pl.Datetime("ms", "UTC")))
    return df, accounts, n_camp


class Timed:
    """The linker, with the time spent in it added up."""

    def __init__(self, linker: CampaignLinker) -> None:
        self.linker = linker
        self.spent = 0.0

    def observe(self, feat: pl.DataFrame, window_end_ms: int) -> None:
        t = time.perf_counter()
        self.linker.observe(feat, window_end_ms)
        self.spent += time.perf_counter() - t

    def refresh(
        self,
        now_ms: int,
        state: EntityState,
        scorer: Scorer,
        end_users: EntityState | None = None,
    ) -> None:
        t = time.perf_counter()
        self.linker.refresh(now_ms, state, scorer, end_users)
        self.spent += time.perf_counter() - t

    def campaign_risk(self, account_ids: pl.Series, early: bool = False) -> np.ndarray:
        t = time.perf_counter()
        out = self.linker.campaign_risk(account_ids, early=early)
        self.spent += time.perf_counter() - t
        return out

    def campaign_of(self, account_id: str) -> str | None:
        return self.linker.campaign_of(account_id)

    def link_reasons(self, account_id: str) -> list[dict[str, object]]:
        return self.linker.link_reasons(account_id)

    def campaign_records(self) -> list[dict[str, Any]]:
        t = time.perf_counter()
        out = self.linker.campaign_records()
        self.spent += time.perf_counter() - t
        return out


def run(n_events: int, days: int) -> dict[str, object]:
    feat, accounts, n_camp = stream(n_events, days)
    settings = Settings.load()
    linker = CampaignLinker(settings, accounts)
    timed = Timed(linker)
    replay = Replay(settings, accounts, timed)
    win = feat.with_columns(w=pl.col("ts").dt.epoch("ms") // settings.window_ms)
    t0 = time.perf_counter()
    for (w,), part in win.group_by("w", maintain_order=True):
        replay.step(part.drop("w"), (int(w) + 1) * settings.window_ms)
    replay_s = time.perf_counter() - t0
    timed.refresh(replay.last_ms, replay.states["account"], replay.scorer)
    records = timed.campaign_records()
    members = {f"acct_{i}" for i in range(n_camp)}
    found = [r for r in records if r["malicious"]]
    recalled = sum(len(members.intersection(r["account_ids"])) for r in found)
    false_members = sum(len(r["account_ids"]) for r in found) - recalled
    return {
        "events": feat.height,
        "campaign_accounts": n_camp,
        "accounts": accounts.height,
        "days": days,
        "windows": replay.windows,
        "linking_s": round(timed.spent, 2),
        "linking_events_per_s": round(feat.height / timed.spent),
        "replay_total_s": round(replay_s, 2),
        "rebuilds": linker.rebuilds,
        "evidence_rows": linker.members.height,
        "evidence_mb": round(linker.members.estimated_size("mb"), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "malicious_campaigns": len(found),
        "campaign_recall": round(recalled / n_camp, 4),
        "benign_in_malicious": false_members,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("bench/results/linking.json"))
    args = ap.parse_args()
    results = []
    for n in args.events:
        r = run(n, args.days)
        print(json.dumps(r), flush=True)
        results.append(r)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
