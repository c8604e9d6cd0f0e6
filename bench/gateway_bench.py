"""Gateway benchmark: added latency at a fixed rate, online scoring cost, throughput ceiling.

    python bench/gateway_bench.py [--rate 500] [--seconds 10] [--out bench/results]

Runs the mock upstream and the gateway as separate uvicorn processes, drives
them open-loop at ``--rate`` requests/s from this process (first the upstream
directly, then the same upstream through the gateway), then measures the
online scoring pipeline alone (Decider, batches of one) and the gateway's
closed-loop throughput ceiling. Writes ``gateway.md`` and ``gateway.json``.

The load generator shares the machine's cores with both servers, so it is
kept cheap: uvloop and the gateway's own lean httpx transport
(:class:`~distillwatch.gateway.upstream.UpstreamTransport`), the same for the
direct and the gateway runs. The gateway process's CPU time per request (in
total and per thread, from psutil) is reported too: unlike latency it barely
depends on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import yaml

from distillwatch.features.classifiers import HEADS, TextClassifiers
from distillwatch.gateway.decide import Decider
from distillwatch.gateway.local import free_port
from distillwatch.gateway.shapes import request_event
from distillwatch.gateway.statestore import MemoryState
from distillwatch.gateway.upstream import UpstreamTransport
from distillwatch.scoring.config import Settings
from distillwatch.signals import ALL_SIGNALS

N_SIGNALS = len(ALL_SIGNALS)

CHILD = r"""
import sys, uvicorn, numpy as np
kind, port = sys.argv[1], int(sys.argv[2])
if kind == "upstream":
    from distillwatch.gateway.mockup import create_mock_upstream
    app = create_mock_upstream()
else:
    from distillwatch.gateway import GatewayConfig, create_app
    from distillwatch.features.classifiers import TextClassifiers, HEADS
    try:
        clf = TextClassifiers.load()
    except (FileNotFoundError, OSError):
        clf = TextClassifiers(2**18, np.zeros(0, np.int64), np.zeros((0, len(HEADS)), np.float16), np.zeros(len(HEADS)))
    app = create_app(GatewayConfig.load(sys.argv[3]), clf=clf)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def classifier() -> tuple[TextClassifiers, str]:
    try:
        return TextClassifiers.load(), "packaged artefact"
    except (FileNotFoundError, OSError):
        z = TextClassifiers(
            2**18,
            np.zeros(0, np.int64),
            np.zeros((0, len(HEADS)), np.float16),
            np.zeros(len(HEADS)),
        )
        return z, "zero-weight stand-in (artefact not built yet; same hashing cost)"


def body(i: int) -> dict[str, Any]:
    return {
        "model": "m1",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {
                "role": "user",
                "content": f"Explain step by step how to solve problem {i % 97} about graphs.",
            },
        ],
        "max_tokens": 512,
        "temperature": 0.2,
    }


def run_loop(coro: Any) -> Any:
    """Run the load generator on uvloop when it is installed (less CPU taken
    from the servers under test)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def client(connections: int, timeout: httpx.Timeout | float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(transport=UpstreamTransport(limits), timeout=timeout)


def cpu_split(proc: psutil.Process | None) -> dict[str, float]:
    """CPU seconds of a process: total and per thread (name-less, largest first)."""
    if proc is None:
        return {}
    threads = sorted((t.user_time + t.system_time for t in proc.threads()), reverse=True)
    t = proc.cpu_times()
    return {"total": t.user + t.system, **{f"thread{i}": v for i, v in enumerate(threads[:2])}}


def start(kind: str, port: int, cfg: str = "") -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(port), cfg])
    for _ in range(600):
        try:
            httpx.get(
                f"http://127.0.0.1:{port}/v1/models",
                headers={"authorization": "Bearer sk-0"},
                timeout=1,
            )
            return proc
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{kind} did not start")


async def open_loop(
    url: str, rate: float, seconds: float, n_keys: int, proc: psutil.Process | None = None
) -> dict[str, Any]:
    """Send at a fixed rate (not waiting for replies); latency per request in ms,
    and ``proc``'s CPU time per request (ms) over the timed part."""
    lat: list[float] = []
    errors = 0
    n = int(rate * seconds)
    async with client(1000, httpx.Timeout(30, pool=None)) as client_:

        async def one(i: int) -> None:
            nonlocal errors
            t = time.perf_counter()
            try:
                r = await client_.post(
                    url, json=body(i), headers={"authorization": f"Bearer sk-{i % n_keys}"}
                )
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            errors += not ok
            lat.append((time.perf_counter() - t) * 1000)

        for i in range(50):  # warm up connections
            await one(i)
        lat.clear()
        cpu0 = cpu_split(proc)
        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        cpu1 = cpu_split(proc)
    a = np.array(lat)
    print(f"{url}: p50 {np.percentile(a, 50):.2f} ms p99 {np.percentile(a, 99):.2f} ms", flush=True)
    return {
        "cpu_ms_per_request": {k: 1000 * (cpu1[k] - cpu0.get(k, 0.0)) / n for k in cpu1},
        "n": n,
        "errors": errors,
        "achieved_rps": n / elapsed,
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


async def closed_loop(
    url: str, concurrency: int, seconds: float, n_keys: int
) -> tuple[float, dict[int, int]]:
    """Requests answered 200 per second by ``url`` with ``concurrency`` callers
    sending back to back, and the count of each status seen (a refused request
    is cheap: counting it would overstate the ceiling)."""
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    async with client(concurrency, 30) as client_:

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < stop:
                r = await client_.post(
                    url, json=body(i), headers={"authorization": f"Bearer sk-{i % n_keys}"}
                )
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                i += concurrency

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return statuses.get(200, 0) / (time.perf_counter() - t0), statuses


STAGES = ("normalize", "features", "fold", "score")


# text mixes of the --decider-only run
TEXT_MIXES = {
    "distinct": "every prompt and template new",
    "templated": "every prompt new, one template (numbers differ)",
    "recurring": "97 recurring prompts",
}


def _word(i: int) -> str:
    """A different letters-only word for every i (slot rules keep words, not numbers)."""
    return "".join(chr(97 + int(d)) for d in str(i))


def decider_event(i: int, n_keys: int, ts: float, texts: str) -> dict[str, Any]:
    """The contract event the gateway builds for request ``i`` (shapes.request_event)."""
    b = body(i)
    if texts == "distinct":
        b["messages"][1]["content"] = (
            f"Explain step by step how to solve the {_word(i)} problem about graphs."
        )
    elif texts == "templated":
        b["messages"][1]["content"] = (
            f"Explain step by step how to solve problem {i} about graphs with {i % 13} nodes."
        )
    return request_event(
        b,
        "/v1/chat/completions",
        f"acct_{i % n_keys}",
        f"key_{i % n_keys}",
        ts + i * 0.002,
        f"dw_{i:010d}",
        f"10.0.{i % 7}.{i % 250}",
        "python-httpx/0.28",
    )


def scoring_alone(n: int, n_keys: int, texts: str = "distinct") -> dict[str, Any]:
    """Decider one-row latency over ``n`` requests (after 200 warm-up ones): total and per stage."""
    return scoring_interleaved(n, n_keys, [texts])[0]


def scoring_interleaved(n: int, n_keys: int, mixes: list[str]) -> list[dict[str, Any]]:
    """:func:`scoring_alone` for several text mixes at once, one Decider per mix
    taking request i in turn, so that a busy spell of a shared machine hits
    every mix alike."""
    clf, _ = classifier()
    deciders = [Decider(Settings.load(), clf, MemoryState()) for _ in mixes]
    ts = time.time()
    lat: list[list[float]] = [[] for _ in mixes]
    stages: list[dict[str, list[float]]] = [{k: [] for k in STAGES} for _ in mixes]
    cpu = [0.0 for _ in mixes]
    for i in range(n + 200):
        for m, (texts, d) in enumerate(zip(mixes, deciders, strict=True)):
            ev = decider_event(i, n_keys, ts, texts)
            tm = d.timings
            before = [getattr(tm, k) for k in STAGES]
            c = time.process_time()
            t = time.perf_counter()
            d.decide_batch([ev])
            dt = time.perf_counter() - t
            dc = time.process_time() - c
            if i >= 200:
                lat[m].append(dt * 1000)
                cpu[m] += dc
                for k, b0 in zip(STAGES, before, strict=True):
                    stages[m][k].append((getattr(tm, k) - b0) * 1000)
    out = []
    for m, texts in enumerate(mixes):
        a = np.array(lat[m])
        st = stages[m]
        out.append(
            {
                "n": n,
                "accounts": n_keys,
                "texts": texts,
                "p50_ms": float(np.percentile(a, 50)),
                "p99_ms": float(np.percentile(a, 99)),
                "cpu_ms_per_request": 1000 * cpu[m] / n,
                "stages_mean_ms": {k: float(np.mean(v)) for k, v in st.items()},
                "stages_p50_ms": {k: float(np.percentile(v, 50)) for k, v in st.items()},
                "stages_p99_ms": {k: float(np.percentile(v, 99)) for k, v in st.items()},
            }
        )
    return out


def decider_table(runs: list[dict[str, Any]]) -> str:
    rows = [
        "| texts | stage | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        texts = TEXT_MIXES[r["texts"]]
        for k in STAGES:
            rows.append(
                f"| {texts} | {k} | {r['stages_p50_ms'][k]:.3f} | {r['stages_p99_ms'][k]:.3f} "
                f"| {r['stages_mean_ms'][k]:.3f} |"
            )
        rows.append(
            f"| {texts} | **total** | **{r['p50_ms']:.3f}** | **{r['p99_ms']:.3f}** | "
            f"CPU {r['cpu_ms_per_request']:.3f} ms/request |"
        )
    return "\n".join(rows)


def decider_only(n: int, n_keys: int, out: Path | None) -> None:
    """``--decider-only``: the online decision alone, per stage, for each text mix."""
    runs = scoring_interleaved(n, n_keys, list(TEXT_MIXES))
    md = f"""# Online decision alone (Decider, batch of one)

`python bench/gateway_bench.py --decider-only --requests {n} --keys {n_keys}` on {os.cpu_count()} CPUs
(load average {os.getloadavg()[0]:.1f}). {n} requests after 200 warm-up ones, round-robin over
{n_keys} accounts, in-process state, one Decider per text mix taking each request in turn;
classifier: {classifier()[1]}.

{decider_table(runs)}
"""
    print(md)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gateway_decider.json").write_text(json.dumps(runs, indent=2))
        (out / "gateway_decider.md").write_text(md)


def cpu_line(run: dict[str, Any]) -> str:
    c = run.get("cpu_ms_per_request", {})
    if not c:
        return "n/a"
    threads = " + ".join(f"{v:.2f}" for k, v in c.items() if k.startswith("thread"))
    return f"{c['total']:.2f} ms (two busiest threads {threads} ms: the event loop and the scoring thread)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--out", default="bench/results")
    ap.add_argument(
        "--decider-only",
        action="store_true",
        help="only the online decision, per stage (writes gateway_decider.md/json)",
    )
    ap.add_argument("--requests", type=int, default=2000, help="with --decider-only")
    ap.add_argument("--no-write", action="store_true", help="with --decider-only: print only")
    args = ap.parse_args()
    if args.decider_only:
        decider_only(args.requests, args.keys, None if args.no_write else Path(args.out))
        return
    tmp = Path(tempfile.mkdtemp())
    up_port, gw_port = free_port(), free_port()
    cfgp = tmp / "gw.yaml"
    cfgp.write_text(
        yaml.safe_dump(
            {
                "listen": f"127.0.0.1:{gw_port}",
                "upstreams": {"openai": f"http://127.0.0.1:{up_port}"},
                "keys": {f"sk-{i}": f"acct_{i}" for i in range(args.keys)},
                "events_out": str(tmp / "events"),
            }
        )
    )
    procs = [start("upstream", up_port)]
    try:
        procs.append(start("gateway", gw_port, str(cfgp)))
        up_proc, gw_proc = psutil.Process(procs[0].pid), psutil.Process(procs[1].pid)
        up_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        gw_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        low = args.rate / 5
        direct_low = run_loop(open_loop(up_url, low, args.seconds, args.keys, up_proc))
        via_low = run_loop(open_loop(gw_url, low, args.seconds, args.keys, gw_proc))
        direct = run_loop(open_loop(up_url, args.rate, args.seconds, args.keys, up_proc))
        via = run_loop(open_loop(gw_url, args.rate, args.seconds, args.keys, gw_proc))
        ceiling, ceiling_status = run_loop(
            closed_loop(f"http://127.0.0.1:{gw_port}/v1/chat/completions", 64, 5, args.keys)
        )
        ceiling_direct, _ = run_loop(
            closed_loop(f"http://127.0.0.1:{up_port}/v1/chat/completions", 64, 5, args.keys)
        )
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
    scoring = scoring_alone(2000, args.keys)
    res = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg": os.getloadavg(),
        },
        "classifier": classifier()[1],
        "rate": args.rate,
        "seconds": args.seconds,
        "direct": direct,
        "gateway": via,
        "direct_low": direct_low,
        "gateway_low": via_low,
        "low_rate": low,
        "added_p50_ms": via["p50_ms"] - direct["p50_ms"],
        "added_p99_ms": via["p99_ms"] - direct["p99_ms"],
        "scoring_alone": scoring,
        "ceiling_rps_gateway": ceiling,
        "ceiling_statuses_gateway": ceiling_status,
        "ceiling_rps_direct": ceiling_direct,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gateway.json").write_text(json.dumps(res, indent=2))
    st = scoring["stages_mean_ms"]
    md = f"""# Gateway benchmark

`python bench/gateway_bench.py --rate {args.rate:g} --seconds {args.seconds:g}` on {res["machine"]["cpus"]} CPUs
(load average at the end {res["machine"]["load_avg"][0]:.1f}); load generator, mock upstream and gateway share them.
Classifier: {res["classifier"]}.

| path | achieved req/s | p50 ms | p90 ms | p99 ms | errors |
|---|---|---|---|---|---|
| direct to mock upstream | {direct["achieved_rps"]:.0f} | {direct["p50_ms"]:.2f} | {direct["p90_ms"]:.2f} | {direct["p99_ms"]:.2f} | {direct["errors"]} |
| through the gateway | {via["achieved_rps"]:.0f} | {via["p50_ms"]:.2f} | {via["p90_ms"]:.2f} | {via["p99_ms"]:.2f} | {via["errors"]} |
| **added** | | **{res["added_p50_ms"]:.2f}** | | **{res["added_p99_ms"]:.2f}** | |

Same at {low:g} req/s:

| path | achieved req/s | p50 ms | p90 ms | p99 ms | errors |
|---|---|---|---|---|---|
| direct | {direct_low["achieved_rps"]:.0f} | {direct_low["p50_ms"]:.2f} | {direct_low["p90_ms"]:.2f} | {direct_low["p99_ms"]:.2f} | {direct_low["errors"]} |
| gateway | {via_low["achieved_rps"]:.0f} | {via_low["p50_ms"]:.2f} | {via_low["p90_ms"]:.2f} | {via_low["p99_ms"]:.2f} | {via_low["errors"]} |
| **added** | | **{via_low["p50_ms"] - direct_low["p50_ms"]:.2f}** | | **{via_low["p99_ms"] - direct_low["p99_ms"]:.2f}** | |

Targets: added p99 <= 3 ms; online scoring p99 <= 0.5 ms.

CPU per request (psutil, over each timed run): gateway process {cpu_line(via_low)} at {low:g} req/s,
{cpu_line(via)} at {args.rate:g} req/s (the scoring thread's share falls with load: concurrent
requests are scored as one micro-batch); the mock upstream itself {direct["cpu_ms_per_request"].get("total", float("nan")):.2f} ms at {args.rate:g} req/s.

Online scoring alone (Decider, batch of one, in-process, {scoring["n"]} requests over {args.keys} accounts,
every prompt and template new): p50 {scoring["p50_ms"]:.2f} ms, p99 {scoring["p99_ms"]:.2f} ms, CPU
{scoring["cpu_ms_per_request"]:.2f} ms a request. Mean per stage: normalise {st["normalize"]:.3f} ms,
features (small-batch path on the rows + new-model flag) {st["features"]:.3f} ms, state fold
{st["fold"]:.3f} ms, scoring ({N_SIGNALS} signals + policy) {st["score"]:.3f} ms
(`--decider-only` gives p50/p99 per stage).

Throughput ceiling (closed loop, 64 concurrent, 200 responses per second): gateway {ceiling:.0f} req/s
(statuses seen {ceiling_status}), mock upstream alone {ceiling_direct:.0f} req/s.
"""
    (out / "gateway.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
