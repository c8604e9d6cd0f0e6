"""Which replay / linking step holds the main process's memory peak?

Computes the features of EVENTS once (cached as a Parquet file next to them,
reused on later runs), then replays them in this process while a thread
samples the resident memory every 20 ms and attributes each sample to the
linking step running at that moment. Prints the peak RSS and the seconds
spent per step (a step's seconds include the steps it calls)::

    python bench/replay_memory.py EVENTS ACCOUNTS [--features CACHE.parquet] [--out DIR]

``--out`` keeps the verdict files (to check that a change leaves them
byte-identical: ``diff -r`` two runs).

Use it before and after a change to the linker or the replay; it found the
rebuild compaction peak that the node-partitioned merge removed.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import psutil

import distillwatch.linking.attach as attach_mod
import distillwatch.linking.linker as linker_mod
import distillwatch.linking.table as table_mod
from distillwatch.engine.detect import DetectSummary, feature_batches, finish, make_linker
from distillwatch.engine.replay import Replay
from distillwatch.engine.store import cut_windows
from distillwatch.ingest.readers import iter_event_sources, read_accounts
from distillwatch.ingest.rejects import RejectSink
from distillwatch.scoring.config import Settings

STEPS = {
    "compact": linker_mod,
    "merge": table_mod.EvidenceTable,
    "top_k_keep": table_mod,
    "sorted_key_graph": linker_mod,
    "communities": linker_mod,
    "build_index": attach_mod.CampaignAttacher,
    "_rescore": linker_mod.CampaignLinker,
    "_attach": linker_mod.CampaignLinker,
}


def features(events: Path, cache: Path) -> pl.DataFrame:
    if cache.exists():
        return pl.read_parquet(cache)
    with RejectSink(None) as sink:
        frames = list(feature_batches(iter_event_sources(events, sink), sink, workers=None))
    df = pl.concat(frames).sort("ts")
    df.write_parquet(cache)
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("events", type=Path)
    ap.add_argument("accounts", type=Path)
    ap.add_argument("--features", type=Path, default=None, help="feature cache (Parquet)")
    ap.add_argument("--settings", default="{}", help="settings overrides as JSON")
    ap.add_argument("--out", type=Path, default=None, help="keep the verdict files here")
    args = ap.parse_args()
    cache = args.features or args.events.with_name(args.events.name + ".features.parquet")
    feat = features(args.events, cache)
    current = ["replay"]
    peak: dict[str, float] = collections.defaultdict(float)
    spent: dict[str, float] = collections.defaultdict(float)
    proc = psutil.Process()

    def sample() -> None:
        while True:
            rss = proc.memory_info().rss / 2**30
            peak[current[0]] = max(peak[current[0]], rss)
            time.sleep(0.02)

    def wrap(owner: Any, name: str) -> None:
        fn: Callable[..., Any] = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            prev, current[0] = current[0], name.strip("_")
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                current[0] = prev
                spent[name.strip("_")] += time.perf_counter() - t

        setattr(owner, name, timed)

    for name, owner in STEPS.items():
        wrap(owner, name)
    threading.Thread(target=sample, daemon=True).start()
    acc = pl.DataFrame(pl.from_arrow(read_accounts(args.accounts, RejectSink(None))))
    settings = Settings.load(**json.loads(args.settings))
    link = make_linker(settings, acc)
    replay = Replay(settings, acc, link)
    t0 = time.perf_counter()
    wrap(Replay, "step")
    frames = (feat[i : i + 100_000] for i in range(0, feat.height, 100_000))
    for end_ms, window in cut_windows(frames, settings.window_ms):
        replay.step(window, end_ms)
    current[0] = "hindsight"
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        finish(replay, link, out, DetectSummary())
    time.sleep(0.1)
    print(f"{feat.height:,} feature rows, replay + hindsight {time.perf_counter() - t0:.1f} s")
    for step, gib in sorted(peak.items(), key=lambda kv: -kv[1]):
        print(f"{step:18s} peak RSS {gib:.2f} GiB  {spent.get(step, 0.0):7.1f} s")


if __name__ == "__main__":
    main()
