"""Ingest throughput: synthetic contract events through iter_event_batches.

Generates N synthetic events (default 300k; a system prompt, 1-3 messages of
~500-1500 characters each, params, response, usage) once to a directory
(default /tmp/distillwatch-ingest-bench) as JSONL, JSONL.zst and Parquet, then
reads each in a fresh subprocess and reports events/s and the reader's peak
RSS. Run:

    python bench/ingest_bench.py [--n 300000] [--dir /tmp/...] [--regen]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

WORDS = [
    "the",
    "a",
    "model",
    "answer",
    "explain",
    "step",
    "by",
    "reasoning",
    "data",
    "analyst",
    "code",
    "function",
    "python",
    "test",
    "rubric",
    "grade",
    "score",
    "evaluate",
    "output",
    "format",
    "json",
    "list",
    "table",
    "compare",
    "summarise",
    "translate",
    "write",
    "essay",
    "proof",
    "theorem",
    "lemma",
    "chemistry",
    "physics",
    "biology",
    "history",
    "policy",
    "market",
    "customer",
    "query",
    "database",
    "index",
    "vector",
    "embedding",
    "latency",
    "cache",
    "server",
    "request",
]


def _text(rng: random.Random, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    out: list[str] = []
    size = 0
    while size < n:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n]


def make_event(rng: random.Random, i: int) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": _text(rng, 500, 1500)}]
    for k in range(rng.randint(1, 3)):
        role = "user" if k % 2 == 0 else "assistant"
        msgs.append({"role": role, "content": _text(rng, 500, 1500)})
    if msgs[-1]["role"] != "user":
        msgs.append({"role": "user", "content": _text(rng, 500, 1500)})
    return {
        "id": f"req_{i}",
        "ts": 1_776_000_000_000 + i * 37,
        "account_id": f"org_{rng.randrange(20_000)}",
        "api_key_id": f"key_{rng.randrange(50_000)}",
        "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(256)}",
        "user_agent": rng.choice(["python-httpx/0.27", "OpenAI/Python 1.30", "curl/8.5"]),
        "endpoint": "chat.completions",
        "model": "frontier-1",
        "request": {
            "messages": msgs,
            "params": {"temperature": 0.7, "max_tokens": 4096, "n": 1, "logprobs": False},
        },
        "response": {"status": 200, "text": _text(rng, 200, 2000), "finish_reason": "stop"},
        "usage": {
            "input_tokens": rng.randrange(100, 3000),
            "output_tokens": rng.randrange(50, 2000),
        },
    }


def generate(d: Path, n: int, chunk: int = 20_000) -> None:
    """Write events.jsonl, events.jsonl.zst and events.parquet under ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    writer: pq.ParquetWriter | None = None
    cctx = zstandard.ZstdCompressor(level=3)
    with open(d / "events.jsonl", "wb") as fj, open(d / "events.jsonl.zst", "wb") as fz:
        zw = cctx.stream_writer(fz)
        for start in range(0, n, chunk):
            evs = [make_event(rng, i) for i in range(start, min(n, start + chunk))]
            blob = b"".join(orjson.dumps(e) + b"\n" for e in evs)
            fj.write(blob)
            zw.write(blob)
            for e in evs:  # Parquet: ts as a timestamp column
                e["ts"] = e["ts"] * 1000
            tbl = pa.Table.from_pylist(evs)
            tbl = tbl.set_column(1, "ts", tbl.column("ts").cast(pa.timestamp("us", tz="UTC")))
            if writer is None:
                writer = pq.ParquetWriter(d / "events.parquet", tbl.schema, compression="zstd")
            writer.write_table(tbl, row_group_size=chunk)
        zw.flush(zstandard.FLUSH_FRAME)
    if writer is not None:
        writer.close()


def read_one(path: str, fast: bool) -> dict[str, Any]:
    """Read ``path`` fully; return rows, seconds, events/s and peak RSS (MiB)."""
    from distillwatch.ingest.readers import iter_event_batches
    from distillwatch.ingest.rejects import RejectSink

    sink = RejectSink()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru0.ru_utime + ru0.ru_stime
    t0 = time.perf_counter()
    rows = 0
    for b in iter_event_batches(path, sink, fast_parquet=fast):
        rows += b.num_rows
    dt = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "file": Path(path).name,
        "fast_parquet": fast,
        "rows": rows,
        "rejected": sink.stats.rejected,
        "seconds": round(dt, 2),
        "events_per_s": round(rows / dt),
        "cpu_s": round(cpu, 2),  # all threads; less sensitive to a busy shared machine
        "events_per_cpu_s": round(rows / cpu),
        "peak_rss_mib": round(rss),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--dir", default="/tmp/distillwatch-ingest-bench")
    ap.add_argument("--regen", action="store_true")
    ap.add_argument("--read", help=argparse.SUPPRESS)
    ap.add_argument("--slow", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.read:
        print(json.dumps(read_one(a.read, not a.slow)))
        return
    d = Path(a.dir)
    if a.regen or not (d / "events.parquet").exists():
        t0 = time.perf_counter()
        generate(d, a.n)
        print(f"generated {a.n} events in {time.perf_counter() - t0:.1f}s under {d}")
    for f in ("events.jsonl", "events.jsonl.zst", "events.parquet"):
        size = (d / f).stat().st_size / 2**20
        modes = [True, False] if f.endswith(".parquet") else [True]
        for fast in modes:
            cmd = [sys.executable, __file__, "--read", str(d / f)] + ([] if fast else ["--slow"])
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            res["file_mib"] = round(size)
            print(json.dumps(res))


if __name__ == "__main__":
    main()
