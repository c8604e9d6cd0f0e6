"""Fast settings loop on the TUNED scenarios only (never the held-out ones).

Simulates five small tuned scenarios once (cached under --work), runs
``detect`` with settings overrides given as JSON, and prints per-scenario
metrics and a per-archetype table (share at review+ and at challenge+)::

    python bench/tuned_quick.py '{"actions": {"min_requests_enforce": 20}}'
    python bench/tuned_quick.py '{}' --only evasive,demo
    python bench/tuned_quick.py '{}' --bench-sizes   # the tuned plans of ``distillwatch bench``

About 30 s for all five on 2 cores. Use ``distillwatch bench`` for the
reported figures (it adds the held-out scenarios and the baselines).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import polars as pl

from distillwatch.bench.metrics import load_labels, load_verdicts, match
from distillwatch.bench.runner import TUNED, run_scenario
from distillwatch.engine.detect import detect
from distillwatch.scoring.config import Settings
from distillwatch.sim import simulate

# (scenario, seed, scale, days): tuned seeds only
SCENARIOS = (
    ("demo", 0, 1.0, None),
    ("reseller_mixed", 0, 0.3, 4),
    ("evasive", 0, 0.3, 6),
    ("benign_only", 0, 0.3, 4),
    ("cot_rubric", 0, 0.3, 4),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("overrides", nargs="?", default="{}", help="settings overrides as JSON")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--work", default="", help="default /tmp/distillwatch-tuned-{quick,bench}")
    ap.add_argument(
        "--bench-sizes",
        action="store_true",
        help="the tuned scenarios at the sizes `distillwatch bench` reports (slower)",
    )
    args = ap.parse_args()
    plans = TUNED if args.bench_sizes else SCENARIOS
    work = args.work or (
        "/tmp/distillwatch-tuned-bench" if args.bench_sizes else "/tmp/distillwatch-tuned-quick"
    )
    settings = Settings.load(**json.loads(args.overrides))
    only = set(filter(None, args.only.split(",")))
    frames = []
    for name, seed, scale, days in plans:
        if only and name not in only:
            continue
        sim = Path(work) / f"{name}-{seed}"
        if not (sim / "labels_accounts.jsonl").exists():
            simulate(name, sim, scale=scale, seed=seed, days=days)
        out = Path(work) / f"out-{name}"
        t = time.perf_counter()
        detect(sim / "events", out, sim / "accounts.jsonl", settings=settings)
        r = run_scenario(sim, out, baselines=False)[0]
        print(
            f"{name}: {time.perf_counter() - t:.0f}s campaigns {r.campaigns_detected}/{r.campaigns}"
            f" recall {r.attack_recall:.3f} benign_enforced {r.benign_enforced}"
            f" {r.benign_enforced_by_archetype} review_load {r.review_load}"
            f" leakage {r.leakage if r.leakage is None else round(r.leakage, 3)} ttd_h {r.median_ttd_hours}"
        )
        frames.append(match(load_labels(sim), load_verdicts(out / "accounts.jsonl")))
    if frames:
        m = pl.concat(frames, how="diagonal_relaxed")
        table = m.group_by("archetype", "is_attack").agg(
            pl.len(),
            (pl.col("rank") >= 1).mean().round(3).alias("review+"),
            (pl.col("rank") >= 2).mean().round(3).alias("enforce+"),
        )
        with pl.Config(tbl_rows=60):
            print(table.sort("is_attack", "archetype"))


if __name__ == "__main__":
    main()
