"""Scale benchmark: the embedded engine at 1M / 10M / the full public case, Spark local at 1M.

One command::

    python bench/scale_bench.py                 # 1M and 10M events, Spark local[2] at 1M
    python bench/scale_bench.py --sizes 1m      # just 1M
    python bench/scale_bench.py --full          # + the full public case (~34M events, ~12 GB disk)

For each size it simulates ``public_case`` (``days``/``scale`` chosen to reach
the size; reused if already there), then runs each engine in a child process
while sampling the resident memory of that process *and all its children*
(the JVM and Python workers for Spark) every 0.2 s. It reports wall time,
events/s, peak RSS, the engine's own stage split (ingest+features / replay /
hindsight), a separate ingest-only pass (so features = ingest+features -
ingest), and the detection figures against the simulator's labels (campaigns
found, attack recall, benign enforced, leakage, median time-to-detect).
Results: ``bench/results/scale.md`` and ``bench/results/scale.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# name -> (days, scale) of public_case; scale 1 is ~0.75M events/day
SIZES: dict[str, tuple[int, float]] = {"1m": (2, 0.62), "10m": (13, 1.0), "full": (44, 1.0)}
TARGET_EPS, TARGET_RSS_GIB = 50_000, 4.0


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd``; wall seconds and peak RSS of its whole process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            rss = 0
            for p in tree:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-4000:]}")
    return {
        "wall_s": round(wall, 2),
        "peak_rss_gib": round(peak / 2**30, 3),
        "log_tail": out[-2000:],
    }


def python_loop_s() -> float:
    """Seconds for a 10^7-iteration Python loop (in a function): tells apart the
    machines rows came from (session 4's 2-core box: 0.23 s; session 3's was
    about 3x slower)."""
    t0 = time.perf_counter()
    s = 0
    for i in range(10**7):
        s += i
    return round(time.perf_counter() - t0, 2)


def ensure_sim(work: Path, size: str) -> tuple[Path, dict[str, Any]]:
    days, scale = SIZES[size]
    sim = work / f"public_case-{size}"
    done = sim / "summary.json"
    if not done.exists():
        code = (
            "from distillwatch.sim import simulate; from pathlib import Path; "
            f"simulate('public_case', Path({str(sim)!r}), scale={scale}, seed=0, days={days})"
        )
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        print(f"simulated {size} in {time.perf_counter() - t0:.0f}s", flush=True)
    return sim, json.loads(done.read_text())


def run_child(args: argparse.Namespace) -> None:
    """Child-process entry points (so each engine is measured on its own)."""
    sim, out = Path(args.sim), Path(args.out)
    if args.child == "embedded":
        from distillwatch.engine.detect import detect

        detect(sim / "events", out, sim / "accounts.jsonl", workers=None)  # one per CPU
        # where the CPU went: this process (ingest order, replay, linking,
        # hindsight) and its feature workers (reaped at pool shutdown)
        own, kids = (
            resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        cpu = {
            "main": round(own.ru_utime + own.ru_stime, 1),
            "workers": round(kids.ru_utime + kids.ru_stime, 1),
        }
        (out / "cpu.json").write_text(json.dumps(cpu))
    elif args.child == "spark":
        from distillwatch.engine.spark import detect_spark

        detect_spark(
            sim / "events",
            out,
            sim / "accounts.jsonl",
            master=args.master,
            spark_conf={"spark.ui.enabled": "false", "spark.driver.memory": "2g"},
        )
    elif args.child == "ingest":
        from distillwatch.ingest.readers import iter_event_batches
        from distillwatch.ingest.rejects import RejectSink

        n = sum(b.num_rows for b in iter_event_batches(sim / "events", RejectSink()))
        out.mkdir(parents=True, exist_ok=True)
        (out / "ingest.json").write_text(json.dumps({"rows": n}))
    elif args.child == "metrics":
        from distillwatch.bench.runner import run_scenario

        rows = run_scenario(sim, out, baselines=False)
        (out / "metrics.json").write_text(json.dumps(rows[0].row(), default=str))


def _child(kind: str, sim: Path, out: Path, master: str = "local[2]") -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--sim",
        str(sim),
        "--out",
        str(out),
        "--master",
        master,
    ]
    return measure(cmd)


def bench_size(work: Path, size: str, spark: bool, master: str) -> dict[str, Any]:
    sim, sim_summary = ensure_sim(work, size)
    n = int(sim_summary["n_events"])
    row: dict[str, Any] = {
        "size": size,
        "events": n,
        "days": SIZES[size][0],
        "scale": SIZES[size][1],
        "loop_s": python_loop_s(),
    }
    out = work / f"verdicts-{size}"
    emb = _child("embedded", sim, out)
    summ = json.loads((out / "summary.json").read_text())
    emb.update(
        events_per_s=round(n / emb["wall_s"]),
        stages_s=summ["seconds"],
        actions=summ["actions"],
        campaigns=summ["campaigns"],
        cpu_s=json.loads((out / "cpu.json").read_text()),
    )
    ing = _child("ingest", sim, work / f"ingest-{size}")
    emb["stages_s"]["ingest_only"] = ing["wall_s"]
    row["embedded"] = emb
    print(
        f"{size}: embedded {emb['wall_s']}s, {emb['events_per_s']} ev/s, {emb['peak_rss_gib']} GiB",
        flush=True,
    )
    try:
        _child("metrics", sim, out)
        row["detection"] = json.loads((out / "metrics.json").read_text())
    except RuntimeError as e:  # the label join holds prompts in memory: may not fit at full scale
        row["detection"] = {"error": str(e)[-300:]}
    if spark:
        sp_out = work / f"verdicts-spark-{size}"
        sp = _child("spark", sim, sp_out, master)
        sp_summ = json.loads((sp_out / "summary.json").read_text())
        sp.update(
            events_per_s=round(n / sp["wall_s"]),
            stages_s=sp_summ["seconds"],
            master=master,
            same_actions=sp_summ["actions"] == summ["actions"],
            loop_s=row["loop_s"],
        )
        row["spark"] = sp
        print(f"{size}: spark {master} {sp['wall_s']}s", flush=True)
    return row


def _cpu(e: dict[str, Any]) -> str:
    c = e.get("cpu_s")
    return f"{c['main']} / {c['workers']}" if c else "-"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Scale benchmark (`python bench/scale_bench.py`)",
        "",
        f"Machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM (shared with other work while measured). "
        f"Targets: embedded >= {TARGET_EPS:,} events/s, <= {TARGET_RSS_GIB} GiB peak RSS (process tree).",
        "",
        "`ingest+features` includes the replay when it streamed (time-ordered input, the"
        " simulator's case): `replay` is then only the last windows. `ingest s` is a"
        " separate ingest-only pass.",
        "",
        "`loop s`: seconds this machine took for a 10^7-iteration Python loop when the row"
        " was measured (rows from different machines are not comparable).",
        "",
        "`CPU s main / workers`: CPU seconds of the detect process (ordering, replay,"
        " linking, hindsight) and of its feature worker processes together; with 2 cores"
        " the wall time is at least their sum / 2 and at least the main process's share.",
        "",
        "| size | events | engine | wall s | events/s | peak RSS GiB | ingest s | ingest+features s | replay s | hindsight+write s | CPU s main / workers | loop s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e = r["embedded"]
        st = e["stages_s"]
        lines.append(
            f"| {r['size']} | {r['events']:,} | embedded | {e['wall_s']} | {e['events_per_s']:,} | {e['peak_rss_gib']} | "
            f"{st.get('ingest_only')} | {st.get('ingest_features')} | {st.get('replay')} | {st.get('hindsight_write')} | {_cpu(e)} | {r.get('loop_s', '-')} |"
        )
        if "spark" in r:
            s = r["spark"]
            ss = s["stages_s"]
            lines.append(
                f"| {r['size']} | {r['events']:,} | spark {s['master']} | {s['wall_s']} | {s['events_per_s']:,} | {s['peak_rss_gib']} | "
                f"- | {ss.get('spark_ingest_features_sort')} (incl. sort) | {ss.get('replay')} | {ss.get('hindsight_write')} | - | {s.get('loop_s', '-')} |"
            )
    lines += ["", "## Detection (embedded, against the simulator's labels)", ""]
    lines += [
        "| size | campaigns found | attack recall | benign enforced | leakage | median time-to-detect h |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r.get("detection", {})
        if "error" in d:
            lines.append(f"| {r['size']} | error: {d['error'][:80]} | | | | |")
            continue
        lines.append(
            f"| {r['size']} | {d.get('campaigns_detected')}/{d.get('campaigns')} | {d.get('attack_recall', 0):.3f} | "
            f"{d.get('benign_enforced')}/{d.get('benign_principals')} | {d.get('leakage') if d.get('leakage') is None else round(d['leakage'], 3)} | {d.get('median_ttd_hours')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="1m,10m", help="comma list of: " + ", ".join(SIZES))
    ap.add_argument("--full", action="store_true", help="also the full public case (~34M events)")
    ap.add_argument("--no-spark", action="store_true", help="skip Spark local mode at 1M")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument(
        "--workdir", default=os.environ.get("DISTILLWATCH_BENCH_DIR", "/tmp/distillwatch-scale")
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--sim", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return
    sizes = [s for s in args.sizes.split(",") if s] + (["full"] if args.full else [])
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = [
        bench_size(work, s, spark=(s == "1m" and not args.no_spark), master=args.master)
        for s in sizes
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    if (RESULTS / "scale.json").exists():  # keep earlier sizes' rows (e.g. after --sizes 10m)
        done = {r["size"] for r in rows}
        old = json.loads((RESULTS / "scale.json").read_text())
        by_size = {r["size"]: r for r in old}
        for r in rows:  # a run without Spark keeps the last Spark figures of that size
            if "spark" not in r and "spark" in by_size.get(r["size"], {}):
                r["spark"] = {"loop_s": by_size[r["size"]].get("loop_s", "-")}
                r["spark"].update(by_size[r["size"]]["spark"])
        rows = [r for r in old if r["size"] not in done] + rows
        rows.sort(key=lambda r: list(SIZES).index(r["size"]))
    (RESULTS / "scale.json").write_text(json.dumps(rows, indent=2, default=str))
    (RESULTS / "scale.md").write_text(markdown(rows))
    print(markdown(rows))


if __name__ == "__main__":
    main()
