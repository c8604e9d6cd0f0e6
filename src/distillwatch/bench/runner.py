"""``distillwatch bench``: detection quality on named scenarios, with baselines.

For each scenario and seed: simulate, run ``detect`` (with and without
campaign linking), run the baselines on the same events, and score all of
them with :mod:`distillwatch.bench.metrics`. Results go to
``quality.md``/``quality.json`` and ``quality.png`` (the work files under ``work/``). Tuned scenarios and held-out
seeds are reported in separate sections: the held-out ones are never used to
choose settings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from distillwatch.bench import baselines as bl
from distillwatch.bench.metrics import Metrics, evaluate, load_labels, load_verdicts
from distillwatch.ingest.readers import iter_event_batches
from distillwatch.ingest.rejects import RejectSink

# (scenario, seed, scale, days): sized to run on a 2-core machine in minutes.
Plan = tuple[str, int, float, int | None]
TUNED: tuple[Plan, ...] = (
    ("demo", 0, 1.0, None),
    ("hydra", 0, 0.3, None),
    ("cot_rubric", 0, 0.3, None),
    ("bulk", 0, 0.2, 3),
    ("reseller_mixed", 0, 0.3, None),
    ("evasive", 0, 0.3, None),
    ("sweep", 0, 0.3, None),
    ("datagen", 0, 0.3, None),
    ("benign_only", 0, 0.3, None),
)
# Never used to choose settings: other seeds, the held-out evasive variant, the mix.
HELD_OUT: tuple[Plan, ...] = (
    ("mixed", 1001, 0.2, None),
    ("evasive_heldout", 1002, 0.3, None),
    ("hydra", 1003, 0.3, None),
    ("cot_rubric", 1001, 0.3, None),
    ("reseller_mixed", 1002, 0.3, None),
)
QUICK: tuple[tuple[str, Plan], ...] = (
    ("tuned", ("demo", 0, 0.5, 2)),
    ("held-out", ("mixed", 1001, 0.05, 3)),
)


def load_events(sim_dir: Path, prompts: bool = True) -> pl.DataFrame:
    """Request columns the metrics and baselines need, via the contract reader.

    ``prompts``: keep the prompt text (the baselines need it; the metrics do
    not, and at the public case's 34M events the texts do not fit in memory).
    """
    parts = []
    cols = ["id", "account_id", "end_user_id", *(["prompt"] if prompts else [])]
    for batch in iter_event_batches(sim_dir / "events", RejectSink()):
        df = pl.from_arrow(batch)
        assert isinstance(df, pl.DataFrame)
        parts.append(df.select(*cols, ts_ms=pl.col("ts").dt.epoch("ms")))
    return pl.concat(parts)


def run_scenario(sim_dir: Path, verdict_dir: Path, baselines: bool = True) -> list[Metrics]:
    """Metrics rows for our verdicts (and the baselines) on one simulated scenario."""
    labels = load_labels(sim_dir)
    events = load_events(sim_dir, prompts=baselines)
    req_labels = pl.read_parquet(sim_dir / "labels_requests.parquet")
    attack = events.join(req_labels.filter(pl.col("is_attack")), on="id", how="inner").select(
        "account_id", "end_user_id", "ts_ms"
    )
    rows = [evaluate("distillwatch", labels, load_verdicts(verdict_dir / "accounts.jsonl"), attack)]
    extra = verdict_dir.parent / (verdict_dir.name + "-nolink")
    if (extra / "accounts.jsonl").exists():
        rows.append(
            evaluate(
                "distillwatch (no linking)", labels, load_verdicts(extra / "accounts.jsonl"), attack
            )
        )
    if baselines:
        for name, fn in (("rate limit", bl.rate_limit), ("PRADA", bl.prada), ("SEAT", bl.seat)):
            rows.append(evaluate(name, labels, fn(events), attack))
    return rows


def scorecard_table(rows: list[Metrics], title: str) -> Table:
    table = Table(title=title)
    for col in (
        "detector",
        "campaigns",
        "attack recall",
        "benign enforced",
        "review load",
        "leakage",
        "median TTD (h)",
    ):
        table.add_column(col)
    for m in rows:
        table.add_row(
            m.name,
            f"{m.campaigns_detected}/{m.campaigns}",
            f"{m.attack_recall:.1%}"
            + (f" ({m.dormant_attack_principals} dormant)" if m.dormant_attack_principals else ""),
            f"{m.benign_enforced} ({m.benign_enforced_rate:.2%})",
            str(m.review_load),
            "-" if m.leakage is None else f"{m.leakage:.1%}",
            "-" if m.median_ttd_hours is None else f"{m.median_ttd_hours:.1f}",
        )
    return table


def run_bench(
    out: Path, quick: bool = False, console: Console | None = None
) -> list[dict[str, Any]]:
    from distillwatch.engine.detect import detect
    from distillwatch.sim import simulate

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[str, Plan]] = [("tuned", p) for p in TUNED]
    plan += [("held-out", p) for p in HELD_OUT]
    if quick:
        plan = list(QUICK)
    results: list[dict[str, Any]] = []
    work = out / "work"
    for split, (scenario, seed, scale, days) in plan:
        sim_dir = work / f"{scenario}-{seed}"
        t0 = time.perf_counter()
        summary = simulate(scenario, sim_dir / "sim", scale=scale, seed=seed, days=days)
        s = sim_dir / "sim"
        detect(s / "events", sim_dir / "verdicts", s / "accounts.jsonl", workers=None)
        detect(
            s / "events",
            sim_dir / "verdicts-nolink",
            s / "accounts.jsonl",
            link=False,
            workers=None,
        )
        rows = run_scenario(s, sim_dir / "verdicts")
        console.print(scorecard_table(rows, f"{split}: {scenario} seed {seed}"))
        for m in rows:
            results.append(
                {
                    "split": split,
                    "scenario": scenario,
                    "seed": seed,
                    "events": summary.n_events,
                    **m.row(),
                }
            )
        console.print(f"  ({time.perf_counter() - t0:.0f} s)")
    (out / "quality.json").write_text(json.dumps(results, indent=2))
    (out / "quality.md").write_text(markdown(results))
    plot(results, out / "quality.png")
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    head = (
        "| split | scenario | seed | events | detector | campaigns | attack recall | benign enforced "
        "| by archetype | review load | leakage | median TTD h |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in results:
        ttd = "-" if r["median_ttd_hours"] is None else f"{r['median_ttd_hours']:.1f}"
        lines.append(
            f"| {r['split']} | {r['scenario']} | {r['seed']} | {r['events']:,} | {r['name']} "
            f"| {r['campaigns_detected']}/{r['campaigns']} | {r['attack_recall']:.1%}{_dormant(r)} "
            f"| {r['benign_enforced']} ({r['benign_enforced_rate']:.2%}) "
            f"| {r['benign_enforced_by_archetype'] or '-'} | {r['review_load']} "
            f"| {_pct(r['leakage'])} | {ttd} |"
        )
    return "\n".join(lines) + "\n"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _dormant(r: dict[str, Any]) -> str:
    n = r.get("dormant_attack_principals", 0)
    return f" ({n} dormant)" if n else ""


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is in the [bench] extra
        return
    names = sorted({r["name"] for r in results})
    scen = [f"{r['scenario']}/{r['seed']}" for r in results if r["name"] == "distillwatch"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name in names:
        rs = [r for r in results if r["name"] == name]
        axes[0].plot(scen[: len(rs)], [r["attack_recall"] for r in rs], marker="o", label=name)
        axes[1].plot(
            scen[: len(rs)],
            [np.nan if r["leakage"] is None else r["leakage"] for r in rs],
            marker="o",
            label=name,
        )
    axes[0].set_title("attack recall (>= review)")
    axes[1].set_title("leakage (served before enforcement)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=60)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
