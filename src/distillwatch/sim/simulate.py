"""Driver: build a scenario's populations and stream its events day by day.

Per day, every population plans its requests (principal, timestamp, session
position: numbers only); the plans are merged and sorted by time, then cut
into chunks of ``chunk_rows`` whose text is materialised and written as one
part file each. Memory is bounded by one day's numeric plan plus one chunk.
Every random draw is seeded from ``(seed, stage, day, chunk, population)`` so
output is deterministic and independent of chunk scheduling.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.sim.assemble import materialise
from distillwatch.sim.corpus import load_corpus
from distillwatch.sim.scenarios import SCENARIOS, START_MS, Builder
from distillwatch.sim.timing import DAY_MS, day_timestamps

LABEL_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("is_attack", pa.bool_())])


@dataclass
class SimSummary:
    scenario: str
    seed: int
    scale: float
    days: int
    n_events: int
    n_attack_events: int
    n_accounts: int
    n_attack_principals: int
    n_campaigns: int
    seconds: float
    events_per_s: float
    corpus: str
    out_dir: str


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _write_side_tables(builder: Builder, out: Path) -> tuple[int, int]:
    n_acc, n_att = 0, 0
    with (out / "accounts.jsonl").open("w") as fa, (out / "labels_accounts.jsonl").open("w") as fl:
        for pop in builder.pops:
            prof = pop.profile
            for row in pop.accounts:
                r = dict(row, created_at=_iso(int(row["created_at"])))  # type: ignore[call-overload]
                fa.write(json.dumps(r) + "\n")
                n_acc += 1
                fl.write(
                    json.dumps(
                        {
                            "account_id": row["account_id"],
                            "end_user_id": None,
                            "archetype": "reseller" if row["reseller"] else prof.archetype,
                            "is_attack": prof.is_attack,
                            "campaign_id": pop.campaign_id,
                            "tactic": prof.tactic,
                        }
                    )
                    + "\n"
                )
            if pop.end_user_id is not None:
                for a, e in zip(pop.account_id.tolist(), pop.end_user_id.tolist(), strict=True):
                    fl.write(
                        json.dumps(
                            {
                                "account_id": a,
                                "end_user_id": e,
                                "archetype": prof.archetype,
                                "is_attack": prof.is_attack,
                                "campaign_id": pop.campaign_id,
                                "tactic": prof.tactic,
                            }
                        )
                        + "\n"
                    )
            n_att += pop.size if prof.is_attack else 0
    return n_acc, n_att


def simulate(
    scenario: str,
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 0,
    fmt: Literal["parquet", "jsonl"] = "parquet",
    data_dir: Path | None = None,
    chunk_rows: int = 50_000,
    days: int | None = None,
) -> SimSummary:
    """Generate ``scenario`` into ``out_dir`` (events/, accounts.jsonl, labels_*)."""
    t0 = time.perf_counter()
    sc = SCENARIOS[scenario]
    n_days = days or sc.days
    corpus = load_corpus(str(data_dir) if data_dir else None)
    builder = Builder(np.random.default_rng([seed, 0]), scale, n_days)
    sc.build(builder)
    pops = builder.pops
    out = Path(out_dir)
    (out / "events").mkdir(parents=True, exist_ok=True)
    n_acc, n_att_pr = _write_side_tables(builder, out)
    release_ms = START_MS + int(sc.release_day * n_days * DAY_MS)
    labels = pq.ParquetWriter(out / "labels_requests.parquet", LABEL_SCHEMA, compression="zstd")
    n_events = n_attack = part = 0
    try:
        for day in range(n_days):
            day_ms = START_MS + day * DAY_MS
            plan_pop, plan_pr, plan_ts, plan_pos = [], [], [], []
            for k, pop in enumerate(pops):
                rng = np.random.default_rng([seed, 1, day, k])
                counts = pop.counts(rng, day, day % 7)
                pr, ts, pos = day_timestamps(
                    rng,
                    counts,
                    pop.tz,
                    day_ms,
                    pop.profile.timing,
                    pop.profile.session_len,
                    pop.profile.gap_s,
                )
                plan_pop.append(np.full(len(pr), k, np.int32))
                plan_pr.append(pr)
                plan_ts.append(ts)
                plan_pos.append(pos)
            pid, prn, tss, poss = (
                np.concatenate(x) for x in (plan_pop, plan_pr, plan_ts, plan_pos)
            )
            order = np.argsort(tss, kind="stable")
            pid, prn, tss, poss = pid[order], prn[order], tss[order], poss[order]
            for c0 in range(0, len(tss), chunk_rows):
                sl = slice(c0, c0 + chunk_rows)
                cp, cpr, cts, cpos = pid[sl], prn[sl], tss[sl], poss[sl]
                batches, idx = [], []
                for k in np.unique(cp).tolist():
                    rows = np.flatnonzero(cp == k)
                    rng = np.random.default_rng([seed, 2, day, c0, k])
                    batches.append(
                        materialise(
                            pops[k], corpus, rng, cpr[rows], cts[rows], cpos[rows], release_ms
                        )
                    )
                    idx.append(rows)
                table = pa.Table.from_batches(batches).take(
                    pa.array(np.argsort(np.concatenate(idx), kind="stable"))
                )
                table = table.add_column(0, "id", _ids(seed, day, c0, len(table)))
                is_att = np.array([pops[k].profile.is_attack for k in range(len(pops))])[cp]
                _write(table, out / "events" / f"part-{part:05d}.{fmt}", fmt)
                labels.write_table(
                    pa.table(
                        {"id": table.column("id"), "is_attack": pa.array(is_att)},
                        schema=LABEL_SCHEMA,
                    )
                )
                part += 1
                n_attack += int(is_att.sum())
            n_events += len(tss)
    finally:
        labels.close()
    secs = time.perf_counter() - t0
    summary = SimSummary(
        scenario,
        seed,
        scale,
        n_days,
        n_events,
        n_attack,
        n_acc,
        n_att_pr,
        builder.n_campaigns,
        round(secs, 2),
        round(n_events / max(secs, 1e-9)),
        corpus.source,
        str(out),
    )
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=1))
    return summary


def _ids(seed: int, day: int, c0: int, n: int) -> pa.Array:
    """Request ids unique within the output: ``req_<seed>_<day>_<row>``."""
    prefix = f"req_{seed}_{day:03d}_"
    return pc.binary_join_element_wise(
        prefix, pa.array(np.arange(c0, c0 + n)).cast(pa.string()), ""
    )


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pl.from_arrow(table).write_ndjson(path)  # type: ignore[union-attr]
